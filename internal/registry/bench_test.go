package registry

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// benchBatch is 1,000 records of 10 metrics x 100 label sets with 4 labels.
func benchBatch() []*pb.MetricData {
	ms := make([]*pb.MetricData, 0, 1000)
	for m := range 10 {
		for s := range 100 {
			typ := pb.MetricType_METRIC_TYPE_COUNTER
			if m%2 == 1 {
				typ = pb.MetricType_METRIC_TYPE_GAUGE
			}
			ms = append(ms, &pb.MetricData{
				Name: fmt.Sprintf("bench_metric_%d", m), Type: typ, Value: float64(s%7 + 1),
				Labels: map[string]string{
					"service": fmt.Sprintf("svc-%d", s%5), "method": []string{"GET", "POST"}[s%2],
					"status": []string{"200", "404", "500"}[s%3], "instance": fmt.Sprintf("i-%d", s),
				},
			})
		}
	}
	return ms
}

// registerAll declares every metric with its four labels: allowed values on
// two, a pattern on one, a cardinality limit on one, and value constraints.
func registerAll(b testing.TB, r *Registry) {
	for m := range 10 {
		typ := pb.MetricType_METRIC_TYPE_COUNTER
		if m%2 == 1 {
			typ = pb.MetricType_METRIC_TYPE_GAUGE
		}
		_, err := r.Register(context.Background(), &pb.MetricDefinition{
			Name: fmt.Sprintf("bench_metric_%d", m), Type: typ,
			Labels: []*pb.LabelDefinition{
				{Name: "service", Required: true, Pattern: "svc-[0-9]+"},
				{Name: "method", AllowedValues: []string{"GET", "POST", "PUT"}},
				{Name: "status", AllowedValues: []string{"200", "404", "500"}},
				{Name: "instance", MaxCardinality: 1000},
			},
			Constraints: &pb.ValueConstraints{Min: ptr(0), Max: ptr(1e9)},
		}, RegisterOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngestValidation measures the ingest cost (Prepare + Apply of a
// 1,000-record batch) with no definitions and with every metric registered.
func BenchmarkIngestValidation(b *testing.B) {
	for _, registered := range []bool{false, true} {
		name := "none_registered"
		if registered {
			name = "all_registered"
		}
		b.Run(name, func(b *testing.B) {
			acc := convert.NewAccumulator(convert.DefaultConfig(), convert.Scope{Name: "bench"})
			if registered {
				kv := &memKV{}
				r, err := Open(context.Background(), kv, ModeOpen)
				if err != nil {
					b.Fatal(err)
				}
				registerAll(b, r)
				acc.SetValidator(r)
			}
			batch := benchBatch()
			nop := func(pmetric.Metrics) error { return nil }
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				pb := acc.Prepare(batch, nil, false)
				if len(pb.Issues) > 0 {
					b.Fatal(pb.Issues[0])
				}
				if _, err := acc.Apply(pb, true, nop); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
		})
	}
}

type memKV struct{ m map[string][]byte }

func (k *memKV) Get(_ context.Context, key string) ([]byte, error) { return k.m[key], nil }
func (k *memKV) Set(_ context.Context, key string, v []byte) error {
	if k.m == nil {
		k.m = map[string][]byte{}
	}
	k.m[key] = v
	return nil
}
func (*memKV) Close(context.Context) error { return nil }
