//go:build linux || darwin

package convert

import (
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// benchRequest returns the 1000x4 request of cmd/metricsbench (5 counters
// and 5 gauges of 100 series each, 4 labels). With only set, every item of
// the other type becomes this type under a name of its own, keeping 1,000
// items.
func benchRequest(b *testing.B, only pb.MetricType) *pb.RecordBatchMetricsRequest {
	b.Helper()
	p, err := payload.Build(payload.Shape1000x4, payload.Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := p.Ours
	if only != pb.MetricType_METRIC_TYPE_UNSPECIFIED {
		for _, m := range req.Metrics {
			if m.Type != only {
				m.Type = only
				m.Name += "_as_" + typeName(only)
			}
		}
	}
	return req
}

func nopConsume(pmetric.Metrics) error { return nil }

// BenchmarkPrepareApply is the ingest engine's cost per datapoint for a
// decoded 1,000-item request: validation, series keys, counter state and
// pdata building, with a consumer that does nothing. ns/dp is wall time,
// cpu-ns/dp the process CPU time (GC included) per datapoint.
func BenchmarkPrepareApply(b *testing.B) {
	for _, bc := range []struct {
		name string
		only pb.MetricType
	}{
		{"mixed", pb.MetricType_METRIC_TYPE_UNSPECIFIED},
		{"gauges", pb.MetricType_METRIC_TYPE_GAUGE},
		{"counters", pb.MetricType_METRIC_TYPE_COUNTER},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := benchRequest(b, bc.only)
			a := NewAccumulator(DefaultConfig(), Scope{Name: "bench"})
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				bt := a.Prepare(req.Metrics, req.Resource, false)
				if len(bt.Issues) > 0 {
					b.Fatal(bt.Issues[0])
				}
				if _, err := a.Apply(bt, true, nopConsume); err != nil {
					b.Fatal(err)
				}
			}
			reportPerDatapoint(b, len(req.Metrics), cpu)
		})
	}
}

// BenchmarkPrepare is the validation and keying part of BenchmarkPrepareApply.
func BenchmarkPrepare(b *testing.B) {
	req := benchRequest(b, pb.MetricType_METRIC_TYPE_UNSPECIFIED)
	a := NewAccumulator(DefaultConfig(), Scope{Name: "bench"})
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		if bt := a.Prepare(req.Metrics, req.Resource, false); len(bt.Issues) > 0 {
			b.Fatal(bt.Issues[0])
		}
	}
	reportPerDatapoint(b, len(req.Metrics), cpu)
}

// reportPerDatapoint reports wall and CPU nanoseconds per datapoint; cpu0 is
// processCPU before the loop.
func reportPerDatapoint(b *testing.B, points int, cpu0 time.Duration) {
	n := float64(b.N * points)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/dp")
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/n, "cpu-ns/dp")
}

// processCPU returns the CPU time of this process (all threads, GC included).
// On a shared machine it is a steadier cost measure than wall time: time
// other processes take from the benchmark's CPU does not count.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
