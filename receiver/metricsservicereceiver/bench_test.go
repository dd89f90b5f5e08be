package metricsservicereceiver

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/protobuf/proto"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// benchPayloads returns the request shapes of cmd/metricsbench, encoded.
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

type benchPayload struct {
	shape  payload.Shape
	points int
	ours   []byte
	otlp   []byte
}

func reportPerDatapoint(b *testing.B, points int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/dp")
}

// BenchmarkDecodeConvert is what the receiver does with a RecordBatchMetrics
// request after gRPC has read it: vtprotobuf decode, then RecordBatchMetrics
// (validation, series keys, counter state, pdata, obsreport, response) into a
// consumer that does nothing.
func BenchmarkDecodeConvert(b *testing.B) {
	for _, p := range benchPayloads(b) {
		b.Run(string(p.shape), func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), consumer.Metrics(nopMetrics{}))
			if err != nil {
				b.Fatal(err)
			}
			svc := &metricsService{r: r}
			ctx := context.Background()
			b.SetBytes(int64(len(p.ours)))
			b.ReportAllocs()
			for b.Loop() {
				var req pb.RecordBatchMetricsRequest
				if err := req.UnmarshalVT(p.ours); err != nil {
					b.Fatal(err)
				}
				resp, err := svc.RecordBatchMetrics(ctx, &req)
				if err != nil {
					b.Fatal(err)
				}
				if int(resp.AcceptedCount) != p.points {
					b.Fatalf("accepted %d of %d", resp.AcceptedCount, p.points)
				}
			}
			reportPerDatapoint(b, p.points)
		})
	}
}

// BenchmarkVTUnmarshal is the decode part of BenchmarkDecodeConvert.
func BenchmarkVTUnmarshal(b *testing.B) {
	for _, p := range benchPayloads(b) {
		b.Run(string(p.shape), func(b *testing.B) {
			b.SetBytes(int64(len(p.ours)))
			b.ReportAllocs()
			for b.Loop() {
				var req pb.RecordBatchMetricsRequest
				if err := req.UnmarshalVT(p.ours); err != nil {
					b.Fatal(err)
				}
			}
			reportPerDatapoint(b, p.points)
		})
	}
}

// BenchmarkProtoUnmarshal decodes the same request with the
// google.golang.org/protobuf runtime (what the default gRPC codec does),
// to show what the vtprotobuf codec saves.
func BenchmarkProtoUnmarshal(b *testing.B) {
	for _, p := range benchPayloads(b) {
		b.Run(string(p.shape), func(b *testing.B) {
			b.SetBytes(int64(len(p.ours)))
			b.ReportAllocs()
			for b.Loop() {
				var req pb.RecordBatchMetricsRequest
				if err := proto.Unmarshal(p.ours, &req); err != nil {
					b.Fatal(err)
				}
			}
			reportPerDatapoint(b, p.points)
		})
	}
}

// BenchmarkPdataUnmarshalProto decodes the equivalent OTLP request into
// pdata, which is all the stock otlpreceiver does before its consumer.
func BenchmarkPdataUnmarshalProto(b *testing.B) {
	for _, p := range benchPayloads(b) {
		b.Run(string(p.shape), func(b *testing.B) {
			var u pmetric.ProtoUnmarshaler
			b.SetBytes(int64(len(p.otlp)))
			b.ReportAllocs()
			for b.Loop() {
				md, err := u.UnmarshalMetrics(p.otlp)
				if err != nil {
					b.Fatal(err)
				}
				if md.DataPointCount() != p.points {
					b.Fatalf("%d datapoints", md.DataPointCount())
				}
			}
			reportPerDatapoint(b, p.points)
		})
	}
}

// BenchmarkOTLPExportRequestUnmarshal decodes the OTLP request the way the
// otlpreceiver's gRPC handler receives it (ExportRequest).
func BenchmarkOTLPExportRequestUnmarshal(b *testing.B) {
	for _, p := range benchPayloads(b) {
		b.Run(string(p.shape), func(b *testing.B) {
			b.SetBytes(int64(len(p.otlp)))
			b.ReportAllocs()
			for b.Loop() {
				req := pmetricotlp.NewExportRequest()
				if err := req.UnmarshalProto(p.otlp); err != nil {
					b.Fatal(err)
				}
			}
			reportPerDatapoint(b, p.points)
		})
	}
}

// nopMetrics is a consumer that does nothing.
type nopMetrics struct{}

func (nopMetrics) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (nopMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) error { return nil }
