package statsdexporter

import (
	"context"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/metadata"
)

func startExporter(t *testing.T, cfg *Config) exporter.Metrics {
	t.Helper()
	require.NoError(t, cfg.Validate())
	exp, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp
}

// syncConfig has no queue and no retry: ConsumeMetrics returns the send result.
func syncConfig(endpoint, transport string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.Transport = transport
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.Enabled = false
	return cfg
}

// workload is a batch of every kind of metric, at step n (1, 2, ...), with
// points that started after the exporter.
type workload struct {
	start pcommon.Timestamp
}

func (w workload) metrics(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := w.start + pcommon.Timestamp(n)*pcommon.Timestamp(time.Second)

	// delta counter: 3 per step, on two routes
	m := ms.AppendEmpty()
	m.SetName("http.requests")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for _, route := range []string{"/a", "/b"} {
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetIntValue(3)
		dp.Attributes().PutStr("route", route)
	}
	// cumulative counter: 10, 30, 60, ...: increments 10, 20, 30
	m = ms.AppendEmpty()
	m.SetName("bytes.sent")
	s = m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(w.start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(int64(5*n*n + 5*n))
	// gauge going negative
	m = ms.AppendEmpty()
	m.SetName("balance")
	gdp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.SetTimestamp(ts)
	gdp.SetDoubleValue(2.5 - float64(n)*2)
	// up-down counter as deltas: +4 per step
	m = ms.AppendEmpty()
	m.SetName("queue.length")
	s = m.SetEmptySum()
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp = s.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetIntValue(4)
	// delta histogram: observations 0.05, 0.3, 0.3, 2 per step
	m = ms.AppendEmpty()
	m.SetName("latency")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hdp := h.DataPoints().AppendEmpty()
	hdp.SetTimestamp(ts)
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
	hdp.BucketCounts().FromRaw([]uint64{1, 2, 0, 1})
	hdp.SetCount(4)
	hdp.SetSum(2.65)
	hdp.SetMin(0.05)
	hdp.SetMax(2)
	return md
}

func tagged(format, name string, tags ...string) string {
	if format == "none" {
		return name
	}
	m := map[string]string{}
	for i := 0; i+1 < len(tags); i += 2 {
		m[tags[i]] = tags[i+1]
	}
	return key(name, m)
}

func TestEveryLineArrivesOverUDP(t *testing.T) {
	for _, format := range []string{"none", "dogstatsd", "influxdb", "graphite"} {
		t.Run(format, func(t *testing.T) {
			p := startUDP(t, format)
			cfg := createDefaultConfig().(*Config) // with the sending queue
			cfg.Endpoint = p.addr
			cfg.TagFormat = format
			cfg.Prefix = "app"
			cfg.Histogram.Quantiles = []float64{0.5}
			exp := startExporter(t, cfg)

			w := workload{start: pcommon.NewTimestampFromTime(time.Now())}
			const steps = 3
			for n := 1; n <= steps; n++ {
				require.NoError(t, exp.ConsumeMetrics(context.Background(), w.metrics(n)))
			}
			// lines per step: 2 counters, 1 cumulative, 2 (negative gauge) or 1,
			// 1 up-down, 5 histogram (count, sum, min, max, p50)
			wantLines := 0
			for n := 1; n <= steps; n++ {
				wantLines += 2 + 1 + 1 + 1 + 5
				if 2.5-float64(n)*2 < 0 {
					wantLines++
				}
			}
			require.Eventually(t, func() bool {
				lines, _, _, _ := p.snapshot()
				return lines >= wantLines
			}, 10*time.Second, 10*time.Millisecond)
			lines, counters, gauges, timers := p.snapshot()
			assert.Equal(t, wantLines, lines)
			assert.Empty(t, timers)

			wantCounters := map[string]float64{
				tagged(format, "app.bytes.sent"):    60, // 10 + 20 + 30
				tagged(format, "app.latency.count"): 12,
				tagged(format, "app.latency.sum"):   3 * 2.65,
			}
			// Without tags both routes land on one name and add up.
			wantCounters[tagged(format, "app.http.requests", "route", "/a")] += 9
			wantCounters[tagged(format, "app.http.requests", "route", "/b")] += 9
			assert.Equal(t, wantCounters, roundAll(counters))
			assert.Equal(t, map[string]float64{
				tagged(format, "app.balance"):      2.5 - 3*2,
				tagged(format, "app.queue.length"): 12,
				tagged(format, "app.latency.min"):  0.05,
				tagged(format, "app.latency.max"):  2,
				tagged(format, "app.latency.p50"):  0.3, // rank 2 of 4: 1st of 2 in (0.1, 0.5]
			}, roundAll(gauges))
		})
	}
}

func roundAll(m map[string]float64) map[string]float64 {
	for k, v := range m {
		m[k] = math.Round(v*1e9) / 1e9
	}
	return m
}

func TestPacketsStayUnderMaxPacketSize(t *testing.T) {
	p := startUDP(t, "dogstatsd")
	cfg := syncConfig(p.addr, TransportUDP)
	cfg.MaxPacketSize = 512
	exp := startExporter(t, cfg)

	md := pmetric.NewMetrics()
	s := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	s.SetName("series.with.a.long.name")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	const n = 300
	for i := 0; i < n; i++ {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetIntValue(int64(i))
		dp.Attributes().PutStr("id", fmt.Sprintf("series-%04d", i))
	}
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
	require.Eventually(t, func() bool { l, _, _, _ := p.snapshot(); return l == n }, 10*time.Second, 10*time.Millisecond)
	sizes := p.packetSizes()
	assert.Greater(t, len(sizes), 10)
	assert.Less(t, len(sizes), n/5, "lines are packed")
	for _, size := range sizes {
		assert.LessOrEqual(t, size, 512)
	}
	_, counters, _, _ := p.snapshot()
	assert.InDelta(t, 299.0, counters[key("series.with.a.long.name", map[string]string{"id": "series-0299"})], 0)
}

func TestSamplingScalesBack(t *testing.T) {
	p := startUDP(t, "none")
	cfg := syncConfig(p.addr, TransportUDP)
	cfg.SampleRate = 0.5
	exp := startExporter(t, cfg)
	const n = 2000
	md := pmetric.NewMetrics()
	sum := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	sum.SetName("hits")
	s := sum.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := 0; i < n; i++ {
		s.DataPoints().AppendEmpty().SetIntValue(1)
	}
	g := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
	g.SetName("level")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(7)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	// About half of the lines arrive, each with |@0.5; the server's
	// estimate is near n (9 standard deviations of slack).
	// The gauge is the last line sent: once it is in, so is the rest.
	require.Eventually(t, func() bool { _, _, g, _ := p.snapshot(); return g["level"] == 7 }, 10*time.Second, 10*time.Millisecond)
	lines, counters, gauges, _ := p.snapshot()
	assert.InDelta(t, n/2+1, lines, 200)
	assert.InDelta(t, float64(n), counters["hits"], 400)
	assert.InDelta(t, 7.0, gauges["level"], 0, "gauges are never sampled")
	p.mu.Lock()
	assert.Equal(t, 1, p.rates[1], "only the gauge has no rate")
	p.mu.Unlock()
}

func TestObservationsCarryWeights(t *testing.T) {
	p := startUDP(t, "dogstatsd")
	cfg := syncConfig(p.addr, TransportUDP)
	cfg.Histogram.Mode = "observations"
	cfg.Histogram.ObservationType = "h"
	exp := startExporter(t, cfg)
	w := workload{start: pcommon.NewTimestampFromTime(time.Now())}
	md := w.metrics(1)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))
	require.Eventually(t, func() bool {
		_, _, _, timers := p.snapshot()
		return len(timers["latency"]) == 3
	}, 10*time.Second, 10*time.Millisecond)
	_, _, _, timers := p.snapshot()
	got := timers["latency"]
	for i := range got {
		got[i].value = math.Round(got[i].value*1e9) / 1e9
	}
	assert.Equal(t, []weighted{{0.075, 1}, {0.3, 2}, {1.5, 1}}, got,
		"(0.05, 0.1] with min, (0.1, 0.5] twice, (1, 2] with max")
}

func TestTCPDeliversAndReconnects(t *testing.T) {
	// No server yet: the send fails and is retryable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	cfg := syncConfig(addr, TransportTCP)
	cfg.TagFormat = "influxdb"
	exp := startExporter(t, cfg)
	w := workload{start: pcommon.NewTimestampFromTime(time.Now())}
	err = exp.ConsumeMetrics(context.Background(), w.metrics(1))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Contains(t, err.Error(), "connect to "+addr+" over tcp")

	// The server comes up: the same batch goes through, with the same
	// increments as the failed attempt would have sent.
	p := startTCP(t, "influxdb", addr)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), w.metrics(1)))
	require.NoError(t, exp.ConsumeMetrics(context.Background(), w.metrics(2)))
	require.Eventually(t, func() bool {
		_, counters, _, _ := p.snapshot()
		return counters["bytes.sent"] == 30
	}, 10*time.Second, 10*time.Millisecond)
	_, counters, gauges, _ := p.snapshot()
	assert.InDelta(t, 6.0, counters[key("http.requests", map[string]string{"route": "/a"})], 0)
	assert.InDelta(t, 8.0, gauges["queue.length"], 0)
	assert.InDelta(t, -1.5, gauges["balance"], 0)
}

func TestUDPWithoutListenerIsRetryable(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := conn.LocalAddr().String()
	require.NoError(t, conn.Close())
	exp := startExporter(t, syncConfig(addr, TransportUDP))
	w := workload{start: pcommon.NewTimestampFromTime(time.Now())}
	// The first datagram may be accepted by the kernel; the ICMP refusal
	// makes a later write fail.
	require.Eventually(t, func() bool {
		err := exp.ConsumeMetrics(context.Background(), w.metrics(1))
		return err != nil && !consumererror.IsPermanent(err)
	}, 5*time.Second, 10*time.Millisecond)
}

func TestPushBeforeStartAndShutdownWithoutStart(t *testing.T) {
	e := newExporter(syncConfig("127.0.0.1:1", TransportUDP), exportertest.NewNopSettings(metadata.Type))
	require.ErrorContains(t, e.pushMetrics(context.Background(), pmetric.NewMetrics()), "not started")
	require.NoError(t, e.shutdown(context.Background()))
	require.NoError(t, e.shutdown(context.Background()))
}

func TestFactory(t *testing.T) {
	f := NewFactory()
	assert.Equal(t, metadata.Type, f.Type())
	assert.Equal(t, metadata.MetricsStability, f.MetricsStability())
	require.NoError(t, createDefaultConfig().(*Config).Validate())
}
