package provider

import (
	"testing"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// BenchmarkFilterApply is the cost of a provider filter on one batch of
// benchMetrics: names and types per metric, a label matcher per point.
func BenchmarkFilterApply(b *testing.B) {
	md := benchMetrics()
	for name, mf := range map[string]*pb.MetricFilter{
		"names":  {Names: []string{"bench_metric_[1-4]*", "bench_metric_9"}, Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_GAUGE}},
		"labels": {Names: []string{"bench_metric_*"}, LabelMatchers: []*pb.LabelMatcher{{Name: "method", Value: "GET"}, {Name: "path", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "/api/v1/item/1.*"}}},
	} {
		b.Run(name, func(b *testing.B) {
			f, err := compileFilter(mf)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := f.apply(md); !ok {
					b.Fatal("nothing kept")
				}
			}
		})
	}
}
