package grpccodec

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzBatchDecode checks the zero-copy batch decoder against the generated
// decoder on any input (same result, same error), and that what it decodes
// encodes and decodes back to the same request.
func FuzzBatchDecode(f *testing.F) {
	for _, req := range sampleRequests(f) {
		b, err := req.MarshalVT()
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 1<<10 {
			// keep the corpus small: the fuzzer mutates (and re-runs) each seed
			b = b[:1<<10]
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeBoth(t, b)
		decodeFlat(t, b)
		got := &pb.RecordBatchMetricsRequest{}
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b...))}, got); err != nil {
			return
		}
		_ = CheckRequest(got) // must not panic on anything that decodes
		enc, err := (Codec{}).Marshal(got)
		if err != nil {
			t.Fatalf("re-encode a decoded request: %v", err)
		}
		back := &pb.RecordBatchMetricsRequest{}
		if err := (Codec{}).Unmarshal(enc, back); err != nil {
			t.Fatalf("decode a re-encoded request: %v", err)
		}
		if !proto.Equal(got, back) {
			t.Fatalf("round trip changed the request:\n%v\n%v", got, back)
		}
	})
}

// FuzzStrictCheck runs CheckRequest over any decodable request of every
// MetricsService method: no panic, and a refusal is a *FieldError naming a
// request field.
func FuzzStrictCheck(f *testing.F) {
	seeds := []proto.Message{
		&pb.GetMetricsRequest{PageSize: -1, Aggregation: &pb.Aggregation{Function: 99}},
		&pb.QueryMetricsRequest{Limits: &pb.QueryLimits{MaxSeries: -3}},
		&pb.GetMetricsSummaryRequest{TopN: 4},
		&pb.StreamMetricsRequest{Options: &pb.StreamOptions{Qos: 7}},
	}
	for i, m := range seeds {
		b, _ := proto.Marshal(m)
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		var m proto.Message
		switch kind % 8 {
		case 0:
			m = &pb.GetMetricsRequest{}
		case 1:
			m = &pb.QueryMetricsRequest{}
		case 2:
			m = &pb.GetMetricsSummaryRequest{}
		case 3:
			m = &pb.StreamMetricsRequest{}
		case 4:
			m = &pb.UnregisterMetricRequest{}
		case 5:
			m = &pb.RegisterMetricRequest{}
		case 6:
			m = &pb.GetMetricMetadataRequest{}
		default:
			m = &pb.RecordMetricRequest{}
		}
		if proto.Unmarshal(b, m) != nil {
			return
		}
		err := CheckRequest(m)
		if err == nil {
			return
		}
		fe, ok := err.(*FieldError)
		if !ok || len(fe.Field) < len("request.") || fe.Field[:8] != "request." {
			t.Fatalf("refusal %v does not name a request field", err)
		}
	})
}
