//go:build linux || darwin

package metricsservicereceiver

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
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
				cfg := createDefaultConfig().(*Config)
				cfg.NetAddr.Endpoint = "127.0.0.1:0"
				r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), nopMetrics{})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if err := r.Start(ctx, componenttest.NewNopHost()); err != nil {
					b.Fatal(err)
				}
				svc := &metricsService{r: r}
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before := ms.HeapAlloc
				for range 2 {
					for _, data := range reqs {
						var req pb.RecordBatchMetricsRequest
						rctx, release, err := grpccodec.DecodeBatch(ctx, data, &req)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := svc.RecordBatchMetrics(rctx, &req); err != nil {
							b.Fatal(err)
						}
						release()
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
				if err := r.Shutdown(context.Background()); err != nil {
					b.Error(err)
				}
			}
		})
	}
}
