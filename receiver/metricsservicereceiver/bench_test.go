//go:build linux || darwin

package metricsservicereceiver

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// The benchmarks below decode (and convert) the request shapes of
// cmd/metricsbench: "testbed" (100 gauges x 7 points, 2 labels) and
// "1000x4" (1,000 points, 4 labels, counters and gauges). They report ns/dp
// (wall time) and cpu-ns/dp (process CPU time, GC included) per datapoint.
// Compare BenchmarkDecodeConvert, the receiver's work after gRPC read the
// message, with BenchmarkOTLPExportRequestUnmarshal, all the stock
// otlpreceiver does before its consumer.

type benchPayload struct {
	shape  payload.Shape
	points int
	ours   []byte
	otlp   []byte
}

// benchPayloads returns the shapes of cmd/metricsbench, encoded.
func benchPayloads(b *testing.B) []benchPayload {
	b.Helper()
	var out []benchPayload
	for _, sh := range payload.Shapes {
		p, err := payload.Build(sh, payload.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ours, err := p.Ours.MarshalVT()
		if err != nil {
			b.Fatal(err)
		}
		otlp, err := p.OTLP.MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchPayload{shape: sh, points: p.DataPoints, ours: ours, otlp: otlp})
	}
	return out
}

// forEachShape runs one sub-benchmark per shape; run gets the payload and
// returns the encoded bytes it reads per operation.
func forEachShape(b *testing.B, run func(b *testing.B, p benchPayload) []byte) {
	for _, p := range benchPayloads(b) {
		b.Run(string(p.shape), func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU(b)
			data := run(b, p)
			b.SetBytes(int64(len(data)))
			n := float64(b.N * p.points)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/dp")
			b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/n, "cpu-ns/dp")
		})
	}
}

// BenchmarkDecodeConvert is what the receiver does with a RecordBatchMetrics
// request after gRPC has read it: the server's codec (internal/grpccodec), then RecordBatchMetrics
// (validation, series keys, counter state, pdata, obsreport, response) into a
// consumer that does nothing.
func BenchmarkDecodeConvert(b *testing.B) {
	forEachShape(b, func(b *testing.B, p benchPayload) []byte {
		svc, stop := startBenchService(b)
		b.Cleanup(stop)
		ctx := context.Background()
		for b.Loop() {
			// decoded as the server does it (grpccodec: strings point
			// into one private copy of the bytes, labels stay raw)
			if n := recordRaw(b, ctx, svc, p.ours); n != p.points {
				b.Fatalf("accepted %d of %d", n, p.points)
			}
		}
		return p.ours
	})
}

// startBenchService starts a receiver as in a collector (default config, so
// the metric definitions' ingest checks are on) on a free port nobody calls,
// in front of a consumer that does nothing; stop shuts it down.
func startBenchService(b *testing.B) (svc *metricsService, stop func()) {
	b.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), nopMetrics{})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	return &metricsService{r: r}, func() {
		if err := r.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	}
}

// recordRaw decodes raw as the server does (grpccodec: strings point into
// one private copy of the bytes, labels stay raw), records it, and returns
// the accepted count.
func recordRaw(b *testing.B, ctx context.Context, svc *metricsService, raw []byte) int {
	var req pb.RecordBatchMetricsRequest
	rctx, release, err := grpccodec.DecodeBatch(ctx, raw, &req)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := svc.RecordBatchMetrics(rctx, &req)
	release()
	if err != nil {
		b.Fatal(err)
	}
	return int(resp.AcceptedCount)
}

// BenchmarkDecodeConvertShuffled is BenchmarkDecodeConvert with the labels
// of every record in another order in each request, as a client that
// encodes Go maps sends them (vtprotobuf and the protobuf runtime encode
// maps in map order): the series cache then finds its entries by series key
// after sorting the labels, not by their bytes.
func BenchmarkDecodeConvertShuffled(b *testing.B) {
	forEachShape(b, func(b *testing.B, p benchPayload) []byte {
		svc, stop := startBenchService(b)
		b.Cleanup(stop)
		ctx := context.Background()
		var orig pb.RecordBatchMetricsRequest
		var err error
		if err = orig.UnmarshalVT(p.ours); err != nil {
			b.Fatal(err)
		}
		encodings := make([][]byte, 16)
		for i := range encodings {
			if encodings[i], err = orig.MarshalVT(); err != nil { // map order: random
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			n := recordRaw(b, ctx, svc, encodings[i%len(encodings)])
			i++
			if n != p.points {
				b.Fatalf("accepted %d of %d", n, p.points)
			}
		}
		return p.ours
	})
}

// BenchmarkVTUnmarshal is the decode part of BenchmarkDecodeConvert.
func BenchmarkVTUnmarshal(b *testing.B) {
	forEachShape(b, func(b *testing.B, p benchPayload) []byte {
		for b.Loop() {
			var req pb.RecordBatchMetricsRequest
			if err := req.UnmarshalVT(p.ours); err != nil {
				b.Fatal(err)
			}
		}
		return p.ours
	})
}

// BenchmarkProtoUnmarshal decodes the same request with the
// google.golang.org/protobuf runtime (what gRPC's default codec does), to
// show what the vtprotobuf codec saves.
func BenchmarkProtoUnmarshal(b *testing.B) {
	forEachShape(b, func(b *testing.B, p benchPayload) []byte {
		for b.Loop() {
			var req pb.RecordBatchMetricsRequest
			if err := proto.Unmarshal(p.ours, &req); err != nil {
				b.Fatal(err)
			}
		}
		return p.ours
	})
}

// BenchmarkPdataUnmarshalProto decodes the equivalent OTLP request with
// pmetric.ProtoUnmarshaler.
func BenchmarkPdataUnmarshalProto(b *testing.B) {
	forEachShape(b, func(b *testing.B, p benchPayload) []byte {
		var u pmetric.ProtoUnmarshaler
		for b.Loop() {
			md, err := u.UnmarshalMetrics(p.otlp)
			if err != nil {
				b.Fatal(err)
			}
			if md.DataPointCount() != p.points {
				b.Fatalf("%d datapoints", md.DataPointCount())
			}
		}
		return p.otlp
	})
}

// BenchmarkOTLPExportRequestUnmarshal decodes the OTLP request the way the
// otlpreceiver's gRPC codec does (into an ExportRequest).
func BenchmarkOTLPExportRequestUnmarshal(b *testing.B) {
	forEachShape(b, func(b *testing.B, p benchPayload) []byte {
		for b.Loop() {
			req := pmetricotlp.NewExportRequest()
			if err := req.UnmarshalProto(p.otlp); err != nil {
				b.Fatal(err)
			}
		}
		return p.otlp
	})
}

// nopMetrics is a consumer that does nothing.
type nopMetrics struct{}

func (nopMetrics) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (nopMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) error { return nil }

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
