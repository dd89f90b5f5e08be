package metricsservicereceiver

import (
	"context"
	"maps"
	"math"
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// storeApply runs records through acc into st (one commit) and returns the
// pdata stored.
func storeApply(t *testing.T, acc *convert.Accumulator, st *store.Store, res *pb.Resource, ms ...*pb.MetricData) pmetric.Metrics {
	t.Helper()
	b := acc.Prepare(ms, res, false)
	require.Empty(t, b.Issues)
	var got pmetric.Metrics
	_, err := acc.Apply(b, true, func(md pmetric.Metrics) error {
		got = md
		txn, err := st.Stage(context.Background(), md)
		if err != nil {
			return err
		}
		return txn.Commit()
	})
	require.NoError(t, err)
	return got
}

func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Path = t.TempDir()
	st, err := store.Open(cfg, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestStoreResumerFindsTheSummaryTheAccumulatorStored: the _count and _sum
// series of a stored summary (unit suffix, job from the resource) give back
// its count and sum, also when the metric's own name ends in _count or _sum.
func TestStoreResumerFindsTheSummaryTheAccumulatorStored(t *testing.T) {
	for _, name := range []string{"shop.latency", "jobs_count", "jobs_sum"} {
		t.Run(name, func(t *testing.T) {
			st := openTestStore(t)
			acc := convert.NewAccumulator(convert.DefaultConfig(), convert.Scope{Name: "test"})
			res := &pb.Resource{Attributes: map[string]string{"service.name": "shop", "host.name": "h1"}}
			labels := map[string]string{"http.route": "/a"}
			rec := func(obs ...float64) *pb.MetricData {
				return &pb.MetricData{Name: name, Unit: "s", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: obs, Labels: maps.Clone(labels)}
			}
			storeApply(t, acc, st, res, rec(0.5, 2))
			storeApply(t, acc, st, res, rec(4))

			r := storeResumer{st: st, logger: zap.NewNop(), warned: new(atomic.Bool), refused: newResumeRefusals()}
			count, sum, last, first, ok := r.ResumeSummary(rec(1), sortedPairs(labels), res.Attributes)
			require.True(t, ok)
			assert.Equal(t, uint64(3), count)
			assert.Equal(t, 6.5, sum)
			assert.Less(t, first, last, "the oldest stored sample is the first commit's")

			_, _, _, _, ok = r.ResumeSummary(rec(1), sortedPairs(map[string]string{"http.route": "/b"}), res.Attributes)
			assert.False(t, ok, "another series")
			_, _, _, _, ok = r.ResumeSummary(rec(1), sortedPairs(labels), map[string]string{"service.name": "other"})
			assert.False(t, ok, "another job")
			assert.Empty(t, r.refused.counts(), "nothing stored is no refusal")
		})
	}
}

// TestStoreResumerFindsTheExponentialHistogramTheAccumulatorStored: the
// native histogram the store made of an exponential histogram gives back
// exactly the accumulator's histogram (scale, zero count, both ranges,
// count, sum); one whose scale the store capped at 8 is not resumed, and
// the refusal is counted.
func TestStoreResumerFindsTheExponentialHistogramTheAccumulatorStored(t *testing.T) {
	st := openTestStore(t)
	ccfg := convert.DefaultConfig()
	ccfg.Histogram.Kind = convert.HistogramExponential
	acc := convert.NewAccumulator(ccfg, convert.Scope{Name: "test"})
	res := &pb.Resource{Attributes: map[string]string{"service.name": "shop"}}
	labels := map[string]string{"route": "/a"}
	rec := func(name string, obs ...float64) *pb.MetricData {
		return &pb.MetricData{Name: name, Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: obs, Labels: maps.Clone(labels)}
	}
	storeApply(t, acc, st, res, rec("shop.size", 0.001, 0.5, 2, 300, 0, -4))
	md := storeApply(t, acc, st, res, rec("shop.size", 7, -0.25), rec("shop.narrow", 1, 1.001))
	var want, narrow pmetric.ExponentialHistogramDataPoint
	for _, m := range md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
		switch m.Name() {
		case "shop.size":
			want = m.ExponentialHistogram().DataPoints().At(0)
		case "shop.narrow":
			narrow = m.ExponentialHistogram().DataPoints().At(0)
		}
	}
	require.Less(t, want.Scale(), histogram.ExponentialSchemaMax)
	require.Greater(t, narrow.Scale(), histogram.ExponentialSchemaMax, "a scale the store caps")

	r := storeResumer{st: st, logger: zap.NewNop(), warned: new(atomic.Bool), refused: newResumeRefusals()}
	got, last, first, ok := r.ResumeExponential(rec("shop.size", 1), sortedPairs(labels), res.Attributes, ccfg.Histogram.MaxSize)
	require.True(t, ok)
	assert.Equal(t, convert.ExponentialState{
		Scale: want.Scale(), ZeroCount: want.ZeroCount(), Count: want.Count(), Sum: want.Sum(),
		PositiveOffset: want.Positive().Offset(), PositiveCounts: want.Positive().BucketCounts().AsRaw(),
		NegativeOffset: want.Negative().Offset(), NegativeCounts: want.Negative().BucketCounts().AsRaw(),
	}, got)
	assert.Less(t, first, last)
	assert.Equal(t, int64(want.Timestamp())/msNanos, last/msNanos)

	_, _, _, ok = r.ResumeExponential(rec("shop.size", 1), sortedPairs(labels), res.Attributes, 4)
	assert.False(t, ok, "more buckets than this max_size: kept at another scale")
	_, _, _, ok = r.ResumeExponential(rec("shop.narrow", 1), sortedPairs(labels), res.Attributes, ccfg.Histogram.MaxSize)
	assert.False(t, ok, "stored at 8, the accumulator's scale was higher")
	_, _, _, ok = r.ResumeExponential(rec("shop.other", 1), sortedPairs(labels), res.Attributes, ccfg.Histogram.MaxSize)
	assert.False(t, ok, "not stored")
	assert.Equal(t, map[string]int64{
		"exponential histogram: positive buckets: more buckets than histogram.max_size (4)":                    1,
		"exponential histogram: schema 8 is the store's highest: the accumulator's scale may have been higher": 1,
	}, r.refused.counts())
}

func TestExponentialOfRefusesWhatItCannotTellExactly(t *testing.T) {
	good := func() *histogram.Histogram {
		return &histogram.Histogram{
			Schema: 3, ZeroThreshold: storedZeroThreshold, ZeroCount: 1, Count: 6, Sum: 10,
			PositiveSpans: []histogram.Span{{Offset: 5, Length: 2}, {Offset: 3, Length: 1}}, PositiveBuckets: []int64{1, 1, -1}, // 1, 2, _, _, _, 1
			NegativeSpans: []histogram.Span{{Offset: -2, Length: 1}}, NegativeBuckets: []int64{1},
		}
	}
	tests := []struct {
		name   string
		mutate func(*histogram.Histogram)
		max    int32
		want   string // the reason, or "" when it resumes
	}{
		{"resumes", nil, 160, ""},
		{"custom buckets (store.histograms: native)", func(h *histogram.Histogram) { h.Schema = histogram.CustomBucketsSchema }, 160, "schema -53 is not an exponential one"},
		{"another zero threshold", func(h *histogram.Histogram) { h.ZeroThreshold = 0.001 }, 160, "zero threshold 0.001 is not the translation's"},
		{"a staleness marker", func(h *histogram.Histogram) { h.Sum = math.Float64frombits(value.StaleNaN) }, 160, "the newest sample is a staleness marker"},
		{"an infinite sum", func(h *histogram.Histogram) { h.Sum = math.Inf(-1) }, 160, "sum is not finite"},
		{"a negative bucket", func(h *histogram.Histogram) { h.PositiveBuckets = []int64{1, -2, 2} }, 160, "positive buckets: a negative bucket count"},
		{"spans and buckets disagree", func(h *histogram.Histogram) { h.NegativeBuckets = nil }, 160, "negative buckets: spans and counts disagree"},
		{"counts that do not add up", func(h *histogram.Histogram) { h.Count = 7 }, 160, "bucket and zero counts do not add up to the count"},
		{"more buckets than max_size", nil, 5, "positive buckets: more buckets than histogram.max_size (5)"},
		{"schema 8 whose range fits at 9", func(h *histogram.Histogram) { h.Schema = 8 }, 160, "schema 8 is the store's highest: the accumulator's scale may have been higher"},
		{"schema 8 whose range cannot fit at 9", func(h *histogram.Histogram) { h.Schema = 8 }, 9, ""},
		{"schema 8 with zeros only", func(h *histogram.Histogram) {
			h.Schema, h.Count, h.PositiveSpans, h.PositiveBuckets, h.NegativeSpans, h.NegativeBuckets = 8, 1, nil, nil, nil, nil
		}, 160, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			if tt.mutate != nil {
				tt.mutate(h)
			}
			got, why := exponentialOf(h, tt.max)
			assert.Equal(t, tt.want, why)
			if tt.want != "" || tt.mutate != nil {
				return
			}
			assert.Equal(t, convert.ExponentialState{
				Scale: 3, ZeroCount: 1, Count: 6, Sum: 10,
				PositiveOffset: 4, PositiveCounts: []uint64{1, 2, 0, 0, 0, 1},
				NegativeOffset: -3, NegativeCounts: []uint64{1},
			}, got, "native bucket i is OpenTelemetry's i-1")
		})
	}
}

// TestSummaryAndExponentialHistogramContinueAcrossARestart: a receiver
// restarted on the same store goes on from the stored summary count and
// sum and the stored native histogram: no drop (PromQL sees no reset), and
// the stored histogram after the restart is exactly the one of an
// accumulator that never restarted.
func TestSummaryAndExponentialHistogramContinueAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	expo := func(cfg *Config) { cfg.Aggregation.Histogram.Kind = convert.HistogramExponential }
	res := &pb.Resource{Attributes: map[string]string{"service.name": "resume"}}
	batches := [][]float64{{0.002, 0.5, 3}, {0, 40}, {-1, 0.3}, {7, 2000, 0.01}}
	// the accumulator that never restarts, for the expected histogram
	ccfg := convert.DefaultConfig()
	ccfg.Histogram.Kind = convert.HistogramExponential
	never := convert.NewAccumulator(ccfg, convert.Scope{Name: "never"})
	var wantDP pmetric.ExponentialHistogramDataPoint
	send := func(c pb.MetricsServiceClient, obs []float64) {
		t.Helper()
		ms := []*pb.MetricData{
			{Name: "resume.size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: obs, Labels: map[string]string{"q": "a"}},
			{Name: "resume.rt", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: obs, Labels: map[string]string{"q": "a"}},
		}
		_, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{Resource: res, Metrics: ms})
		require.NoError(t, err)
		b := never.Prepare([]*pb.MetricData{{Name: "resume.size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: obs, Labels: map[string]string{"q": "a"}}}, res, false)
		_, err = never.Apply(b, true, func(md pmetric.Metrics) error {
			wantDP = md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).ExponentialHistogram().DataPoints().At(0)
			return nil
		})
		require.NoError(t, err)
	}

	c, _, stop := runReceiverWith(t, dir, expo)
	for _, obs := range batches[:2] {
		send(c, obs)
	}
	stop()
	c, r, _ := runReceiverWith(t, dir, expo)
	for _, obs := range batches[2:] {
		send(c, obs)
	}

	var n, sum float64
	for _, obs := range batches {
		for _, v := range obs {
			n++
			sum += v
		}
	}
	query := func(q string) []*pb.Series {
		t.Helper()
		resp, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: q})
		require.NoError(t, err)
		return resp.Series
	}
	one := func(q string) float64 {
		t.Helper()
		s := query(q)
		require.Len(t, s, 1, q)
		require.NotEmpty(t, s[0].Samples, q)
		return s[0].Samples[len(s[0].Samples)-1].Value
	}
	// summary: the stored _count and _sum go on
	counts := query(`resume_rt_count[1h]`)
	require.Len(t, counts, 1)
	var got []float64
	for _, s := range counts[0].Samples {
		got = append(got, s.Value)
	}
	assert.Equal(t, []float64{3, 5, 7, 10}, got, "the count after the restart goes on from the stored one")
	assert.Equal(t, 0.0, one(`resets(resume_rt_count[1h])`))
	assert.InDelta(t, sum, one(`resume_rt_sum`), 1e-9)

	// exponential histogram: the native histogram goes on
	hs := query(`resume_size[1h]`)
	require.Len(t, hs, 1)
	require.Len(t, hs[0].Samples, 4)
	var hcounts []uint64
	for _, s := range hs[0].Samples {
		require.NotNil(t, s.Histogram)
		hcounts = append(hcounts, s.Histogram.Count)
	}
	assert.Equal(t, []uint64{3, 5, 7, 10}, hcounts)
	assert.Equal(t, 0.0, one(`resets(resume_size[1h])`), "PromQL sees no reset")
	assert.Equal(t, n, one(`histogram_count(resume_size)`))
	assert.InDelta(t, sum, one(`histogram_sum(resume_size)`), 1e-9)

	// and the stored histogram is exactly the one that never restarted
	md, pm := lookupMetric(&pb.MetricData{Name: "resume.size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM}, res.Attributes)
	eh := pm.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	eh.DataPoints().AppendEmpty().Attributes().PutStr("q", "a")
	smp, ok, err := r.store.LastHistogram(context.Background(), md)
	require.NoError(t, err)
	require.True(t, ok)
	stored, why := exponentialOf(smp.Histogram, ccfg.Histogram.MaxSize)
	require.Empty(t, why)
	assert.Equal(t, convert.ExponentialState{
		Scale: wantDP.Scale(), ZeroCount: wantDP.ZeroCount(), Count: wantDP.Count(), Sum: wantDP.Sum(),
		PositiveOffset: wantDP.Positive().Offset(), PositiveCounts: wantDP.Positive().BucketCounts().AsRaw(),
		NegativeOffset: wantDP.Negative().Offset(), NegativeCounts: wantDP.Negative().BucketCounts().AsRaw(),
	}, stored)
}

// TestStoreResumerFindsAFleetNodesOwnSummaryAndExponentialHistogram: in a
// fleet (shared store) a node resumes its own stored summary and
// exponential histogram (found with its identity label), never another
// node's.
func TestStoreResumerFindsAFleetNodesOwnSummaryAndExponentialHistogram(t *testing.T) {
	st := openTestStore(t)
	ccfg := convert.DefaultConfig()
	ccfg.Histogram.Kind = convert.HistogramExponential
	acc := convert.NewAccumulator(ccfg, convert.Scope{Name: "test"})
	node := nodeIdentity{label: "collector_instance", value: "node-a"}
	res := &pb.Resource{Attributes: map[string]string{"service.name": "shop"}}
	labels := map[string]string{"route": "/a"}
	summary := &pb.MetricData{Name: "rt", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: []float64{0.5, 2}, Labels: maps.Clone(labels)}
	hist := &pb.MetricData{Name: "size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: []float64{0.5, 200}, Labels: maps.Clone(labels)}
	recordOnNode(t, st, acc, node, res, summary, hist)

	for _, tt := range []struct {
		name string
		node nodeIdentity
		ok   bool
	}{
		{"this node", node, true},
		{"another node", nodeIdentity{label: "collector_instance", value: "node-b"}, false},
		{"without the identity", nodeIdentity{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := storeResumer{st: st, logger: zap.NewNop(), warned: new(atomic.Bool), node: tt.node, refused: newResumeRefusals()}
			count, sum, _, _, ok := r.ResumeSummary(summary, sortedPairs(labels), res.Attributes)
			require.Equal(t, tt.ok, ok)
			h, _, _, hok := r.ResumeExponential(hist, sortedPairs(labels), res.Attributes, ccfg.Histogram.MaxSize)
			require.Equal(t, tt.ok, hok)
			if tt.ok {
				assert.Equal(t, uint64(2), count)
				assert.Equal(t, 2.5, sum)
				assert.Equal(t, uint64(2), h.Count)
				assert.Equal(t, 200.5, h.Sum)
			}
			assert.False(t, r.warned.Load())
			assert.Empty(t, r.refused.counts())
		})
	}
}
