package main

import (
	"testing"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzImportParsers reads any file as Prometheus text, OpenMetrics and OTLP
// JSON without panic; every record a parser accepts has a type (a nameless
// OTLP metric is passed on: the server refuses it naming .name, and the
// import's summary lists it).
func FuzzImportParsers(f *testing.F) {
	f.Add([]byte("# TYPE http_requests_total counter\nhttp_requests_total{method=\"GET\"} 3\n"))
	f.Add([]byte("# TYPE d histogram\nd_bucket{le=\"1\"} 2\nd_bucket{le=\"+Inf\"} 3\nd_sum 4\nd_count 3\n# EOF\n"))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}`))
	f.Add([]byte("x{"))
	untyped := func(string) pb.MetricType { return pb.MetricType_METRIC_TYPE_GAUGE }
	f.Fuzz(func(t *testing.T, raw []byte) {
		var all []*pb.MetricData
		for _, om := range []bool{false, true} {
			ms, err := parseExposition(raw, om, true, untyped)
			if err == nil {
				all = append(all, ms...)
			}
		}
		if ms, err := parseOTLPJSON(raw); err == nil {
			all = append(all, ms...)
		}
		for _, m := range all {
			if m.GetType() == pb.MetricType_METRIC_TYPE_UNSPECIFIED {
				t.Fatalf("accepted a record without a type: %v", m)
			}
		}
	})
}
