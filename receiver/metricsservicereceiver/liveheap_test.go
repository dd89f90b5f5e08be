//go:build linux || darwin

package metricsservicereceiver

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
)

// BenchmarkLiveHeapPerSeries reports the receiver's live heap per series
// (series cache, counter state, gauge marks) after the 8 clients of the
// load test sent their series twice, measured after a forced GC.
func BenchmarkLiveHeapPerSeries(b *testing.B) {
	for _, sh := range payload.Shapes {
		b.Run(string(sh), func(b *testing.B) {
			var reqs [][]byte
			series := 0
			for c := range 8 {
				p, err := payload.Build(sh, payload.Options{Client: c})
				if err != nil {
					b.Fatal(err)
				}
				data, err := p.Ours.MarshalVT()
				if err != nil {
					b.Fatal(err)
				}
				reqs = append(reqs, data)
				series += p.DataPoints
			}
			if sh == payload.Shapes[0] {
				series /= 7
			}
			for b.Loop() {
				svc, stop := startBenchService(b)
				ctx := context.Background()
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before := ms.HeapAlloc
				for range 2 {
					for _, data := range reqs {
						recordRaw(b, ctx, svc, data)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(before))/float64(series), "live-B/series")
				b.ReportMetric(float64(series), "series")
				if f := os.Getenv("LIVEHEAP_PROFILE"); f != "" {
					out, err := os.Create(f)
					if err != nil {
						b.Fatal(err)
					}
					if err := pprof.WriteHeapProfile(out); err != nil {
						b.Fatal(err)
					}
					out.Close()
				}
				runtime.KeepAlive(svc)
				stop()
			}
		})
	}
}
