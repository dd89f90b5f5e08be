package statsdexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

// The real StatsD daemon (npm package statsd 0.9.0, run with node) is the
// peer of these tests, with its Graphite backend pointed at a TCP socket the
// test reads: what comes out of the daemon's flush is what the daemon
// computed from our lines. Install it with
//
//	npm install statsd@0.9.0 --prefix .cache/statsd
//
// at the repository root (.ci/run does), or point STATSD_DAEMON at its
// stats.js (testpeer.StartStatsd). Missing node or daemon: the test is skipped (failed with
// REQUIRE_INTEGRATION=1).

// daemonWorkload is one batch: a delta counter (5), a gauge (17) and a
// histogram of the observations 0.12, 0.4 and 1.3 in the buckets
// (0.1, 0.5] (2) and (1, +Inf) (1), each with the tag queue=mail.
func daemonWorkload() pmetric.Metrics {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	now := pcommon.NewTimestampFromTime(time.Now())
	c := ms.AppendEmpty()
	c.SetName("jobs_total")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetIntValue(5)
	dp.SetTimestamp(now)
	dp.Attributes().PutStr("queue", "mail")
	g := ms.AppendEmpty()
	g.SetName("queue_depth")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetDoubleValue(17)
	gp.SetTimestamp(now)
	gp.Attributes().PutStr("queue", "mail")
	h := ms.AppendEmpty()
	h.SetName("job_duration")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(now)
	hp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
	hp.BucketCounts().FromRaw([]uint64{0, 2, 0, 1})
	hp.SetCount(3)
	hp.SetSum(1.82)
	hp.SetMin(0.12)
	hp.SetMax(1.3)
	hp.Attributes().PutStr("queue", "mail")
	return md
}

// Counters, gauges and timers come out of the real daemon's flush with the
// values it computes, for each tag style it accepts: none, dogstatsd
// (|#k:v, turned into Graphite tags by the daemon) and graphite (name;k=v).
// InfluxDB-style tags (name,k=v) are not a StatsD daemon dialect: the
// daemon folds them into the name.
func TestRealStatsdDaemonFlushes(t *testing.T) {
	d := testpeer.StartStatsd(t)
	udp, g := d.Addr, d.Graphite

	styles := []struct{ format, tags string }{
		{"none", ""},
		{"dogstatsd", ";queue=mail"},
		{"graphite", ";queue=mail"},
	}
	for _, st := range styles {
		cfg := syncConfig(udp, TransportUDP)
		cfg.Prefix = st.format
		cfg.TagFormat = st.format
		cfg.Histogram.Mode = "observations"
		exp := startExporter(t, cfg)
		require.NoError(t, exp.ConsumeMetrics(context.Background(), daemonWorkload()))
	}
	for _, st := range styles {
		// The daemon's own computations over one flush interval (1s):
		// counter count and rate; the gauge; the timer's count from the
		// sample rates (2 + 1), and its lower/upper/sum/mean over the values
		// it got: the midpoints of the buckets clamped to min and max,
		// (0.12+0.5)/2 = 0.31 and (1+1.3)/2 = 1.15.
		want := map[string]float64{
			"stats.counters." + st.format + ".jobs_total.count" + st.tags: 5,
			"stats.counters." + st.format + ".jobs_total.rate" + st.tags:  5,
			"stats.gauges." + st.format + ".queue_depth" + st.tags:        17,
			"stats.timers." + st.format + ".job_duration.count" + st.tags: 3,
			"stats.timers." + st.format + ".job_duration.lower" + st.tags: 0.31,
			"stats.timers." + st.format + ".job_duration.upper" + st.tags: 1.15,
			"stats.timers." + st.format + ".job_duration.sum" + st.tags:   1.46,
			"stats.timers." + st.format + ".job_duration.mean" + st.tags:  0.73,
		}
		for path, v := range want {
			assert.Eventually(t, func() bool { return g.Seen(path, v) }, 15*time.Second, 20*time.Millisecond,
				"%s: %s %v not flushed; got:\n%s", st.format, path, v, g.Dump())
		}
	}
}
