package metricsmanagementextension_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// StatsD providers against the real StatsD daemon: a counter, a gauge and a
// timer recorded through MetricsService come out of the daemon's flush
// (Graphite) with the values the daemon computes, for each tag style the
// daemon accepts (none, DogStatsD, Graphite).
func TestStatsdProviderToRealDaemon(t *testing.T) {
	t.Parallel()
	d := testpeer.StartStatsd(t)
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()
	styles := []struct {
		format pb.StatsdTagFormat
		prefix string
		tags   string
	}{
		{pb.StatsdTagFormat_STATSD_TAG_FORMAT_NONE, "plain", ""},
		{pb.StatsdTagFormat_STATSD_TAG_FORMAT_DOGSTATSD, "dog", ";queue=mail"},
		{pb.StatsdTagFormat_STATSD_TAG_FORMAT_GRAPHITE, "graphite", ";queue=mail"},
	}
	for _, st := range styles {
		_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: &pb.ProviderConfig{
			ProviderId: "statsd-" + st.prefix, Type: pb.ProviderType_PROVIDER_TYPE_STATSD,
			Settings: &pb.ProviderSettings{Statsd: &pb.StatsdSettings{Address: d.Addr, Prefix: st.prefix, TagFormat: st.format}},
		}, ValidateConfig: true, AutoStart: true})
		require.NoError(t, err)
	}
	resp, err := c.ingest.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "worker"}},
		Metrics: []*pb.MetricData{
			{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Labels: map[string]string{"queue": "mail"}},
			{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 17, Labels: map[string]string{"queue": "mail"}},
			{Name: "job_duration_seconds", Type: pb.MetricType_METRIC_TYPE_TIMER, Observations: []float64{0.12, 0.4, 1.3}},
		},
	})
	require.NoError(t, err)
	require.Zero(t, resp.GetRejectedCount(), "%v", resp)

	for _, st := range styles {
		// The daemon's computations over its 1s flush: the counter's count
		// and per-second rate, the gauge, and the timer's count and sum
		// (counters <name>.count and <name>.sum in the statsd exporter's
		// aggregates mode, so the daemon's key ends in .count.count) with its
		// min and max (gauges).
		want := map[string]float64{
			"stats.counters." + st.prefix + ".jobs_total.count" + st.tags:       2,
			"stats.counters." + st.prefix + ".jobs_total.rate" + st.tags:        2,
			"stats.gauges." + st.prefix + ".queue_depth" + st.tags:              17,
			"stats.counters." + st.prefix + ".job_duration_seconds.count.count": 3,
			"stats.counters." + st.prefix + ".job_duration_seconds.sum.count":   1.82,
			"stats.gauges." + st.prefix + ".job_duration_seconds.min":           0.12,
			"stats.gauges." + st.prefix + ".job_duration_seconds.max":           1.3,
		}
		for path, v := range want {
			assert.Eventually(t, func() bool { return d.Graphite.Seen(path, v) }, 15*time.Second, 20*time.Millisecond,
				"%s %v not flushed by the daemon; flushed:\n%s", path, v, strings.TrimSpace(d.Graphite.Dump()))
		}
	}
}
