package grpccodec

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/cmd/metricsbench/payload"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func f64(v float64) *float64 { return &v }

// sampleRequests are requests with every field of a batch set somewhere.
func sampleRequests(t testing.TB) []*pb.RecordBatchMetricsRequest {
	t.Helper()
	var out []*pb.RecordBatchMetricsRequest
	for _, s := range payload.Shapes {
		for _, cumulative := range []bool{false, true} { // (totals: with start times)
			p, err := payload.Build(s, payload.Options{CumulativeCounters: cumulative})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Ours)
		}
	}
	ts := timestamppb.New(timestamppb.Now().AsTime())
	out = append(out, &pb.RecordBatchMetricsRequest{
		RequestId: "r-1",
		Options:   &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT, ReturnAllResults: true},
		Resource:  &pb.Resource{Attributes: map[string]string{"service.name": "svc", "": "empty key"}},
		Metrics: []*pb.MetricData{
			{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Cumulative: true, Timestamp: ts, StartTime: ts,
				Labels: map[string]string{"a": "", "": "v", "path": "\xff"}, Unit: "1", Description: "d", SampleRate: 0.5,
				Resource: &pb.Resource{Attributes: map[string]string{"x": "y"}}},
			{Name: "h", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Histogram: &pb.HistogramValue{Count: 3, Sum: 1, ExplicitBounds: []float64{1}, BucketCounts: []uint64{1, 2}, Min: f64(0)}},
			{Name: "s", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Summary: &pb.SummaryValue{Count: 1, Sum: 2, Quantiles: []*pb.Quantile{{Quantile: 0.5, Value: 1}}}},
			{Name: "t", Type: pb.MetricType_METRIC_TYPE_TIMER, Observations: []float64{0.1, 0.2}},
			{Type: pb.MetricType(-3)},
			{},
		},
	})
	return out
}

func decodeBoth(t *testing.T, b []byte) {
	t.Helper()
	want := &pb.RecordBatchMetricsRequest{}
	wantErr := want.UnmarshalVT(b)
	got := &pb.RecordBatchMetricsRequest{}
	gotErr := Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("UnmarshalVT error %v, codec error %v (input %x)", wantErr, gotErr, b)
	}
	if wantErr != nil {
		var de *DecodeError
		if !errors.As(gotErr, &de) || de.Message != "metricsmodule.v1.RecordBatchMetricsRequest" {
			t.Fatalf("codec error %v is not a DecodeError naming the message", gotErr)
		}
		if wantErr.Error() != de.Err.Error() {
			t.Fatalf("UnmarshalVT error %q, codec error %q (input %x)", wantErr, gotErr, b)
		}
		return
	}
	if !proto.Equal(want, got) {
		t.Fatalf("decoded requests differ:\n%v\n%v", want, got)
	}
}

// TestBatchMatchesUnmarshalVT checks that the codec decodes a batch exactly
// like the generated code, for valid and for corrupted input.
func TestBatchMatchesUnmarshalVT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, req := range sampleRequests(t) {
		b, err := req.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		decodeBoth(t, b)
		for range 300 {
			c := append([]byte(nil), b...)
			switch rng.IntN(3) {
			case 0:
				c = c[:rng.IntN(len(c))]
			case 1:
				c[rng.IntN(len(c))] = byte(rng.Uint32())
			default:
				for range 4 {
					c[rng.IntN(len(c))] = byte(rng.Uint32())
				}
			}
			decodeBoth(t, c)
		}
	}
}

// TestBatchOwnsItsBytes checks that the decoded strings survive the reuse of
// the gRPC buffer.
func TestBatchOwnsItsBytes(t *testing.T) {
	req := sampleRequests(t)[2]
	b, err := req.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	got := &pb.RecordBatchMetricsRequest{}
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if !proto.Equal(req, got) {
		t.Fatalf("decoded request changed with the buffer:\n%v", got)
	}
}

func BenchmarkCodecUnmarshalBatch(b *testing.B) {
	for _, s := range payload.Shapes {
		p, err := payload.Build(s, payload.Options{})
		if err != nil {
			b.Fatal(err)
		}
		raw, err := p.Ours.MarshalVT()
		if err != nil {
			b.Fatal(err)
		}
		n := len(p.Ours.Metrics)
		b.Run(string(s)+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req pb.RecordBatchMetricsRequest
				if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, &req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/dp")
		})
		b.Run(string(s)+"/UnmarshalVT", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req pb.RecordBatchMetricsRequest
				if err := req.UnmarshalVT(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/dp")
		})
	}
}

// decodeFlat checks that DecodeBatch (labels left raw) decodes b like the
// generated code once the raw labels are put back into the records' maps.
func decodeFlat(t *testing.T, b []byte) {
	t.Helper()
	want := &pb.RecordBatchMetricsRequest{}
	wantErr := want.UnmarshalVT(b)
	got := &pb.RecordBatchMetricsRequest{}
	ctx, release, gotErr := DecodeBatch(context.Background(), b, got)
	defer release()
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("UnmarshalVT error %v, flat decode error %v (input %x)", wantErr, gotErr, b)
	}
	if wantErr != nil {
		return
	}
	raw := BatchLabels(ctx, got) // nil when no record decoded the fast way
	for i, r := range raw {
		if r == nil {
			continue
		}
		if len(got.Metrics[i].Labels) > 0 {
			t.Fatalf("record %d: raw labels and a label map", i)
		}
		labelsToMap(r, got.Metrics[i])
	}
	if !proto.Equal(want, got) {
		t.Fatalf("flat-decoded request differs:\n%v\n%v", want, got)
	}
}

// TestBatchLabelsRaw checks the raw labels of DecodeBatch: the records'
// label bytes as sent, or the map when they are not in one run.
func TestBatchLabelsRaw(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, req := range sampleRequests(t) {
		b, err := req.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		decodeFlat(t, b)
		for range 300 {
			c := append([]byte(nil), b...)
			c[rng.IntN(len(c))] = byte(rng.Uint32())
			decodeFlat(t, c)
		}
	}
	// labels split by another field: decoded into the map
	entry := func(k, v string) []byte {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, v)
		var f []byte
		f = protowire.AppendTag(f, 4, protowire.BytesType)
		return protowire.AppendBytes(f, e)
	}
	var m []byte
	m = append(m, entry("a", "1")...)
	m = protowire.AppendTag(m, 1, protowire.BytesType)
	m = protowire.AppendString(m, "x")
	m = append(m, entry("b", "2")...)
	split := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), m)
	m = append(append(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "y"), entry("b", "2")...), entry("a", "1")...)
	run := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), m)
	got := &pb.RecordBatchMetricsRequest{}
	ctx, release, err := DecodeBatch(context.Background(), append(split, run...), got)
	defer release()
	if err != nil {
		t.Fatal(err)
	}
	raw := BatchLabels(ctx, got)
	if raw[0] != nil || len(got.Metrics[0].Labels) != 2 {
		t.Fatalf("split labels: raw %x, map %v; want the map", raw[0], got.Metrics[0].Labels)
	}
	if want := append(entry("b", "2"), entry("a", "1")...); string(raw[1]) != string(want) || len(got.Metrics[1].Labels) != 0 {
		t.Fatalf("labels in one run: raw %x, map %v; want raw %x", raw[1], got.Metrics[1].Labels, want)
	}
	if BatchLabels(context.Background(), got) != nil || BatchLabels(ctx, &pb.RecordBatchMetricsRequest{}) != nil {
		t.Fatal("BatchLabels: raw labels for another request")
	}
}

// The arrays of a batch above maxPooledRecords are not kept for reuse.
func TestLargeBatchArraysAreNotPooled(t *testing.T) {
	putArrays(getArrays(maxPooledRecords + 1))
	for range 4 {
		a := getArrays(10)
		if cap(a.mds) > maxPooledRecords {
			t.Fatalf("a pooled batch has room for %d records, above %d", cap(a.mds), maxPooledRecords)
		}
		putArrays(a)
	}
}

// TestReleasedArraysHoldNothing: once the handler returned, the pooled
// arrays hold nothing of the request, whether its records were decoded the
// fast way or not, and whatever the handler set on them (convert adds a
// label map for the Validator).
func TestReleasedArraysHoldNothing(t *testing.T) {
	reqs := sampleRequests(t)
	// labels not in one run, and an unknown field
	odd := []byte{0x0a, 0x0f, 0x0a, 0x01, 'n', 0x22, 0x04, 0x0a, 0x00, 0x12, 0x00, 0x10, 0x01, 0x22, 0x02, 0x0a, 0x00,
		0x0a, 0x05, 0x0a, 0x01, 'm', 0x78, 0x01}
	var inputs [][]byte
	for _, r := range reqs {
		b, err := r.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	inputs = append(inputs, odd)
	for i, b := range inputs {
		req := &pb.RecordBatchMetricsRequest{}
		ctx, release, err := DecodeBatch(context.Background(), b, req)
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		a := ctx.Value(flatKey{}).(*FlatLabels).arrays
		if a == nil {
			t.Fatalf("input %d: no pooled arrays", i)
		}
		for j, m := range req.Metrics {
			if j%2 == 0 {
				m.Labels = map[string]string{"added": "by the handler"}
			}
		}
		release()
		a.mds, a.tss, a.sts, a.raw, a.fast = a.mds[:cap(a.mds)], a.tss[:cap(a.tss)], a.sts[:cap(a.sts)], a.raw[:cap(a.raw)], a.fast[:cap(a.fast)]
		for j := range a.mds {
			if !proto.Equal(&a.mds[j], &pb.MetricData{}) || !proto.Equal(&a.tss[j], &timestamppb.Timestamp{}) ||
				!proto.Equal(&a.sts[j], &timestamppb.Timestamp{}) || a.raw[j] != nil || a.fast[j] {
				t.Fatalf("input %d record %d kept %v (timestamp %v, start %v, raw %x, fast %v)", i, j, &a.mds[j], &a.tss[j], &a.sts[j], a.raw[j], a.fast[j])
			}
		}
	}
}

// TestUsualRecordsTakeTheFastPath: the records of the load test's shapes
// (counters as increments and as totals with start times) are decoded by
// fastMetric.
func TestUsualRecordsTakeTheFastPath(t *testing.T) {
	for _, s := range payload.Shapes {
		for _, cumulative := range []bool{false, true} {
			p, err := payload.Build(s, payload.Options{CumulativeCounters: cumulative})
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.Ours.MarshalVT()
			if err != nil {
				t.Fatal(err)
			}
			req := &pb.RecordBatchMetricsRequest{}
			ctx, release, err := DecodeBatch(context.Background(), b, req)
			if err != nil {
				t.Fatal(err)
			}
			a := ctx.Value(flatKey{}).(*FlatLabels).arrays
			for i, fast := range a.fast {
				if !fast {
					t.Errorf("%s (totals %v): record %d not decoded by fastMetric: %v", s, cumulative, i, req.Metrics[i])
					break
				}
			}
			release()
		}
	}
}
