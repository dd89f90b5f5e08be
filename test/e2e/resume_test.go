package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestCounterTotalSurvivesARestart: counter increments before a restart
// (SIGKILL, or a clean SIGTERM) and after it make one running total, and a
// timer's observations one histogram. The
// first total after the restart is above the last stored one, the case
// PromQL cannot tell from a continuation: without resuming, the total would
// forget everything before the restart and increase() would undercount.
func TestCounterTotalSurvivesARestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			p := newCollectorProc(t, t.TempDir())
			p.start()
			ctx := context.Background()
			res := &pb.Resource{Attributes: map[string]string{"service.name": "resume"}}
			send := func(c pb.MetricsServiceClient, incs ...float64) {
				t.Helper()
				for _, v := range incs {
					// one request per increment: one stored sample each;
					// a timer observes the increment as seconds
					_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Resource: res, Metrics: []*pb.MetricData{
						{Name: "resume_jobs", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Labels: map[string]string{"queue": "q1"}},
						{Name: "resume_wait", Type: pb.MetricType_METRIC_TYPE_TIMER, Value: v, Labels: map[string]string{"queue": "q1"}},
					}})
					require.NoError(t, err)
				}
			}
			before := []float64{2, 3, 5}
			send(p.client(), before...)
			const sel = `resume_jobs_total{queue="q1"}`
			settle(t, p.client(), sel)
			require.Equal(t, 10.0, queryOne(t, p.client(), sel))

			p.stop(sig)
			p.start()
			c := p.client()
			after := []float64{40, 1, 7} // 40 alone is above the stored 10
			send(c, after...)

			want := 0.0
			for _, v := range append(append([]float64(nil), before...), after...) {
				want += v
			}
			settle(t, c, sel)
			assert.Equal(t, want, queryOne(t, c, sel), "the latest total holds every increment")
			assert.Equal(t, map[string]float64{"map[]": want}, promQuery(t, p.e.promAPI, `sum(`+sel+`)`), "the same through /api/v1/query")
			latest, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"resume_jobs_total"}}, LatestOnly: true})
			require.NoError(t, err)
			require.Len(t, latest.Series, 1)
			require.Len(t, latest.Series[0].Samples, 1)
			assert.Equal(t, want, latest.Series[0].Samples[0].Value, "GetMetrics latest_only")

			// the stored samples are the running totals, without a reset
			got := samples(t, c, sel)
			require.Len(t, got, 1)
			var values []float64
			for _, s := range got[0].Samples {
				values = append(values, s.Value)
			}
			assert.Equal(t, []float64{2, 5, 10, 50, 51, 58}, values)
			assert.Equal(t, 0.0, queryOne(t, c, `resets(`+sel+`[1h])`), "PromQL sees no counter reset")
			// increase() over the whole range, at the last sample: the
			// increase between the first and the last sample (56), which
			// PromQL extrapolates toward the range's start, never below a
			// zero total (so by at most the first sample, 2)
			last := got[0].Samples[len(got[0].Samples)-1].Timestamp
			resp, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `increase(` + sel + `[1h])`, Time: last})
			require.NoError(t, err)
			require.Len(t, resp.Series, 1)
			require.Len(t, resp.Series[0].Samples, 1)
			inc := resp.Series[0].Samples[0].Value
			assert.GreaterOrEqual(t, inc, want-before[0])
			assert.LessOrEqual(t, inc, want+1e-9)

			// the timer's histogram goes on too: 6 observations, their sum,
			// and the buckets (default bounds: 2, 3, 5 and 7 are at most 10)
			assert.Equal(t, 6.0, queryOne(t, c, `resume_wait_seconds_count{queue="q1"}`))
			assert.Equal(t, want, queryOne(t, c, `resume_wait_seconds_sum{queue="q1"}`))
			assert.Equal(t, 5.0, queryOne(t, c, `resume_wait_seconds_bucket{queue="q1",le="10"}`))
			assert.Equal(t, 6.0, queryOne(t, c, `resume_wait_seconds_bucket{queue="q1",le="+Inf"}`))
			assert.Equal(t, 0.0, queryOne(t, c, `resets(resume_wait_seconds_count{queue="q1"}[1h])`))
		})
	}
}

// settle waits until the clock has passed the newest sample of sel: points
// of one series in one millisecond move to the next one (up to a second
// ahead of the receive time), and an instant query at "now" reads only
// samples up to now.
func settle(t *testing.T, c pb.MetricsServiceClient, sel string) {
	t.Helper()
	stored := samples(t, c, sel)
	require.Len(t, stored, 1)
	newest := stored[0].Samples[len(stored[0].Samples)-1].Timestamp.AsTime()
	require.Eventually(t, func() bool { return time.Now().After(newest.Add(10 * time.Millisecond)) }, 5*time.Second, time.Millisecond)
}
