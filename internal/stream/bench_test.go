package stream

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// benchMetrics is 1000 points with 4 labels: 10 metrics (5 cumulative
// counters, 5 gauges) of 100 series.
func benchMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "bench")
	rm.Resource().Attributes().PutStr("service.instance.id", "gen-0")
	sm := rm.ScopeMetrics().AppendEmpty()
	for i := 0; i < 10; i++ {
		m := sm.Metrics().AppendEmpty()
		var dps pmetric.NumberDataPointSlice
		if i < 5 {
			m.SetName(fmt.Sprintf("bench_metric_%d_total", i))
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = s.DataPoints()
		} else {
			m.SetName(fmt.Sprintf("bench_metric_%d", i))
			dps = m.SetEmptyGauge().DataPoints()
		}
		for j := 0; j < 100; j++ {
			dp := dps.AppendEmpty()
			dp.SetStartTimestamp(ts(t0))
			dp.SetTimestamp(ts(t1))
			dp.SetDoubleValue(float64(j))
			a := dp.Attributes()
			a.PutStr("host", fmt.Sprintf("host-%d", j%10))
			a.PutStr("path", fmt.Sprintf("/api/v1/resource/%d", j/10))
			a.PutStr("method", "GET")
			a.PutStr("status", "200")
		}
	}
	return md
}

// BenchmarkStageCommit is the ingest-side cost of streaming per batch of
// 1000 points (ns/op / 1000 = per point).
func BenchmarkStageCommit(b *testing.B) {
	all := &pb.MetricFilter{}
	tenth := func(i int) *pb.MetricFilter {
		return &pb.MetricFilter{Names: []string{fmt.Sprintf("bench_metric_%d*", i%10)}}
	}
	byLabel := func(i int) *pb.MetricFilter {
		return &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "host", Value: fmt.Sprintf("host-%d", i%10)}}}
	}
	none := func(int) *pb.MetricFilter { return &pb.MetricFilter{Names: []string{"other_*"}} }
	cases := []struct {
		name   string
		subs   int
		filter func(i int) *pb.MetricFilter
	}{
		{"no subscribers", 0, nil},
		{"100 subscribers matching nothing", 100, none},
		{"1 subscriber, everything", 1, func(int) *pb.MetricFilter { return all }},
		{"10 subscribers, everything", 10, func(int) *pb.MetricFilter { return all }},
		{"10 subscribers, a tenth each by name", 10, tenth},
		{"10 subscribers, a tenth each by label", 10, byLabel},
		{"100 subscribers, a hundredth each by two labels", 100, func(i int) *pb.MetricFilter {
			return &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{
				{Name: "host", Value: fmt.Sprintf("host-%d", i%10)},
				{Name: "path", Value: fmt.Sprintf("/api/v1/resource/%d", i/10)},
			}}
		}},
	}
	md := benchMetrics()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.MaxSubscribers = 1000
			h, err := NewHub(cfg, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			for i := 0; i < c.subs; i++ {
				// stalled subscribers (nothing reads): the buffers stay full,
				// each commit drops the oldest batch
				if _, err := h.Subscribe(&pb.StreamMetricsRequest{Filter: c.filter(i), Options: &pb.StreamOptions{BatchSize: 1000, BufferSize: 4}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := h.Stage(md).Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
		})
	}
}
