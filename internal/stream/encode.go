package stream

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Field numbers of the messages encoded here (types.proto,
// metrics_service.proto). The encoding is checked against the generated
// decoder in encode_test.go.
const (
	mdName        = 1
	mdType        = 2
	mdValue       = 3
	mdLabels      = 4
	mdTimestamp   = 5
	mdUnit        = 6
	mdDescription = 7
	mdCumulative  = 8
	mdStartTime   = 9
	mdHistogram   = 11
	mdSummary     = 12
	mdResource    = 13

	hvCount          = 1
	hvSum            = 2
	hvExplicitBounds = 3
	hvBucketCounts   = 4
	hvMin            = 5
	hvMax            = 6
	hvExponential    = 7

	ebScale          = 1
	ebZeroCount      = 2
	ebPositiveOffset = 3
	ebPositiveCounts = 4
	ebNegativeOffset = 5
	ebNegativeCounts = 6
	ebZeroThreshold  = 7

	svCount     = 1
	svSum       = 2
	svQuantiles = 3

	batchSequence  = 1
	batchMetrics   = 2
	batchCreatedAt = 3

	respBatch = 1
)

// encoder writes pipeline data points as MetricData messages, straight from
// pdata (no intermediate structs). What all points of a resource or a metric
// repeat is encoded once (setResource, setMetric), and a timestamp equal to
// the previous one is copied. One per Stage call; pooled.
type encoder struct {
	buf    []byte // the points being written, back to back
	ends   []int  // where each point in buf ends
	nested []byte // a nested message being written
	inner  []byte // a message nested in nested
	res    []byte // field 13: the resource of the current points
	prefix []byte // fields 1, 2 of the current metric
	mid    []byte // fields 6, 7, 8 of the current metric
	ts     tsCache
	start  tsCache
}

// tsCache holds the last encoded timestamp field.
type tsCache struct {
	ns  int64
	b   []byte
	set bool
}

func (c *tsCache) append(b []byte, num protowire.Number, ts pcommon.Timestamp) []byte {
	if ts == 0 {
		return b
	}
	if !c.set || c.ns != int64(ts) {
		c.b = appendUnixNanos(c.b[:0], num, int64(ts))
		c.ns, c.set = int64(ts), true
	}
	return append(b, c.b...)
}

var encoders = sync.Pool{New: func() any { return &encoder{} }}

// setResource encodes the resource that the next data points carry.
func (e *encoder) setResource(attrs pcommon.Map) {
	e.res = e.res[:0]
	if attrs.Len() == 0 {
		return
	}
	e.inner = appendLabels(e.inner[:0], 1, attrs)
	e.res = appendMessage(e.res, mdResource, e.inner)
}

// metric holds what every data point of one metric repeats.
type metric struct {
	m          pmetric.Metric
	typ        pb.MetricType
	cumulative bool
}

// setMetric encodes the fields every point of mt repeats.
func (e *encoder) setMetric(mt *metric) {
	b := appendString(e.prefix[:0], mdName, mt.m.Name())
	b = protowire.AppendTag(b, mdType, protowire.VarintType)
	e.prefix = protowire.AppendVarint(b, uint64(mt.typ))
	b = appendString(e.mid[:0], mdUnit, mt.m.Unit())
	b = appendString(b, mdDescription, mt.m.Description())
	if mt.cumulative {
		b = protowire.AppendTag(b, mdCumulative, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	e.mid = b
}

// reset empties the output.
func (e *encoder) reset() {
	e.buf, e.ends = e.buf[:0], e.ends[:0]
}

// end closes the point written last.
func (e *encoder) end() { e.ends = append(e.ends, len(e.buf)) }

// copyOut returns the points written since reset, in one allocation of
// exactly their size.
func (e *encoder) copyOut() [][]byte {
	out := append([]byte(nil), e.buf...) // no zeroing before the copy
	items := make([][]byte, len(e.ends))
	prev := 0
	for i, end := range e.ends {
		items[i] = out[prev:end:end]
		prev = end
	}
	return items
}

// head starts a MetricData: name and type.
func (e *encoder) head() { e.buf = append(e.buf, e.prefix...) }

// tail ends a MetricData: timestamp, unit, description, cumulative, start
// time, the nested value (from e.nested when nestedField is set) and the
// resource. Fields are in field-number order, as a protobuf encoder writes
// them.
func (e *encoder) tail(ts, start pcommon.Timestamp, nestedField protowire.Number) {
	b := e.ts.append(e.buf, mdTimestamp, ts)
	b = append(b, e.mid...)
	b = e.start.append(b, mdStartTime, start)
	if nestedField != 0 {
		b = appendMessage(b, nestedField, e.nested)
	}
	e.buf = append(b, e.res...)
	e.end()
}

func (e *encoder) number(dp pmetric.NumberDataPoint) {
	e.head()
	v := dp.DoubleValue()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		v = float64(dp.IntValue())
	}
	e.buf = appendDouble(e.buf, mdValue, v)
	e.buf = appendLabels(e.buf, mdLabels, dp.Attributes())
	e.tail(dp.Timestamp(), dp.StartTimestamp(), 0)
}

func (e *encoder) histogram(dp pmetric.HistogramDataPoint) {
	e.head()
	e.buf = appendLabels(e.buf, mdLabels, dp.Attributes())
	n := e.nested[:0]
	n = appendUvarint(n, hvCount, dp.Count())
	if dp.HasSum() {
		n = appendDouble(n, hvSum, dp.Sum())
	}
	if bounds := dp.ExplicitBounds(); bounds.Len() > 0 {
		n = protowire.AppendTag(n, hvExplicitBounds, protowire.BytesType)
		n = protowire.AppendVarint(n, uint64(8*bounds.Len()))
		for i := 0; i < bounds.Len(); i++ {
			n = protowire.AppendFixed64(n, math.Float64bits(bounds.At(i)))
		}
	}
	n = appendPackedUint64(n, hvBucketCounts, dp.BucketCounts())
	if dp.HasMin() {
		n = appendPresentDouble(n, hvMin, dp.Min())
	}
	if dp.HasMax() {
		n = appendPresentDouble(n, hvMax, dp.Max())
	}
	e.nested = n
	e.tail(dp.Timestamp(), dp.StartTimestamp(), mdHistogram)
}

func (e *encoder) exponential(dp pmetric.ExponentialHistogramDataPoint) {
	e.head()
	e.buf = appendLabels(e.buf, mdLabels, dp.Attributes())
	in := e.inner[:0]
	in = appendSvarint(in, ebScale, dp.Scale())
	in = appendUvarint(in, ebZeroCount, dp.ZeroCount())
	in = appendSvarint(in, ebPositiveOffset, dp.Positive().Offset())
	in = appendPackedUint64(in, ebPositiveCounts, dp.Positive().BucketCounts())
	in = appendSvarint(in, ebNegativeOffset, dp.Negative().Offset())
	in = appendPackedUint64(in, ebNegativeCounts, dp.Negative().BucketCounts())
	in = appendDouble(in, ebZeroThreshold, dp.ZeroThreshold())
	e.inner = in
	n := e.nested[:0]
	n = appendUvarint(n, hvCount, dp.Count())
	if dp.HasSum() {
		n = appendDouble(n, hvSum, dp.Sum())
	}
	if dp.HasMin() {
		n = appendPresentDouble(n, hvMin, dp.Min())
	}
	if dp.HasMax() {
		n = appendPresentDouble(n, hvMax, dp.Max())
	}
	n = appendMessage(n, hvExponential, in)
	e.nested = n
	e.tail(dp.Timestamp(), dp.StartTimestamp(), mdHistogram)
}

func (e *encoder) summary(dp pmetric.SummaryDataPoint) {
	e.head()
	e.buf = appendLabels(e.buf, mdLabels, dp.Attributes())
	n := e.nested[:0]
	n = appendUvarint(n, svCount, dp.Count())
	n = appendDouble(n, svSum, dp.Sum())
	qs := dp.QuantileValues()
	for i := 0; i < qs.Len(); i++ {
		q := qs.At(i)
		size := 0
		if !isPositiveZero(q.Quantile()) {
			size += 9
		}
		if !isPositiveZero(q.Value()) {
			size += 9
		}
		n = protowire.AppendTag(n, svQuantiles, protowire.BytesType)
		n = protowire.AppendVarint(n, uint64(size))
		n = appendDouble(n, 1, q.Quantile())
		n = appendDouble(n, 2, q.Value())
	}
	e.nested = n
	e.tail(dp.Timestamp(), dp.StartTimestamp(), mdSummary)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func isPositiveZero(v float64) bool { return v == 0 && !math.Signbit(v) }

// appendDouble writes a double without presence: +0 is left out.
func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	if isPositiveZero(v) {
		return b
	}
	return appendPresentDouble(b, num, v)
}

func appendPresentDouble(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendUvarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendSvarint(b []byte, num protowire.Number, v int32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeZigZag(int64(v)))
}

func appendPackedUint64(b []byte, num protowire.Number, s pcommon.UInt64Slice) []byte {
	if s.Len() == 0 {
		return b
	}
	size := 0
	for i := 0; i < s.Len(); i++ {
		size += protowire.SizeVarint(s.At(i))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	for i := 0; i < s.Len(); i++ {
		b = protowire.AppendVarint(b, s.At(i))
	}
	return b
}

// appendLabels writes attrs as map<string, string> entries of field num
// (below 16: one-byte tags).
func appendLabels(b []byte, num protowire.Number, attrs pcommon.Map) []byte {
	tag := byte(num)<<3 | byte(protowire.BytesType)
	for k, v := range attrs.All() {
		var s string
		if v.Type() == pcommon.ValueTypeStr {
			s = v.Str()
		} else {
			s = v.AsString()
		}
		if len(k) < 0x80 && len(s) < 0x80 && len(k)+len(s) < 0x80-4 {
			// the common case: every length fits in one byte
			b = append(b, tag, byte(4+len(k)+len(s)), 1<<3|2, byte(len(k)))
			b = append(b, k...)
			b = append(b, 2<<3|2, byte(len(s)))
			b = append(b, s...)
			continue
		}
		size := 1 + protowire.SizeBytes(len(k)) + 1 + protowire.SizeBytes(len(s))
		b = append(b, tag)
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// appendTimestamp writes a google.protobuf.Timestamp; zero is left out.
func appendTimestamp(b []byte, num protowire.Number, ts pcommon.Timestamp) []byte {
	if ts == 0 {
		return b
	}
	return appendUnixNanos(b, num, int64(ts))
}

func appendUnixNanos(b []byte, num protowire.Number, ns int64) []byte {
	secs, nanos := ns/1e9, ns%1e9
	if nanos < 0 {
		secs--
		nanos += 1e9
	}
	size := 0
	if secs != 0 {
		size += 1 + protowire.SizeVarint(uint64(secs))
	}
	if nanos != 0 {
		size += 1 + protowire.SizeVarint(uint64(nanos))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if secs != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(secs))
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(nanos))
	}
	return b
}

func sizeUnixNanos(ns int64) int {
	return len(appendUnixNanos(make([]byte, 0, 32), batchCreatedAt, ns))
}

// batch is a closed batch of one subscription. It never changes: a resumed
// stream receives the same sequence with the same content.
type batch struct {
	seq     uint64
	created int64 // unix nanos
	items   [][]byte
	points  int
	size    int // encoded MetricBatch size
}

func newBatch(seq uint64, created time.Time, items [][]byte) *batch {
	b := &batch{seq: seq, created: created.UnixNano(), items: items, points: len(items)}
	b.size = 1 + protowire.SizeVarint(seq) + sizeUnixNanos(b.created)
	for _, it := range items {
		b.size += 1 + protowire.SizeBytes(len(it))
	}
	return b
}

// appendBody appends the MetricBatch message of b.
func (b *batch) appendBody(dst []byte) []byte {
	dst = protowire.AppendTag(dst, batchSequence, protowire.VarintType)
	dst = protowire.AppendVarint(dst, b.seq)
	for _, it := range b.items {
		dst = appendMessage(dst, batchMetrics, it)
	}
	return appendUnixNanos(dst, batchCreatedAt, b.created)
}

// Message is one StreamMetricsResponse ready to send. It has the methods of
// a vtprotobuf message, which the receiver's gRPC codec (internal/grpccodec)
// uses, so a batch is written from its encoded items into the transport
// buffer without another copy. *pb.StreamMetricsResponse is a Message too.
type Message interface {
	SizeVT() int
	MarshalToSizedBufferVT(dst []byte) (int, error)
	UnmarshalVT(data []byte) error
}

// errWriteOnly is the UnmarshalVT of the messages that are only sent.
var errWriteOnly = errors.New("stream: a batch message is only encoded")

// batchMessage is StreamMetricsResponse{batch: b}.
type batchMessage struct{ b *batch }

func (m batchMessage) SizeVT() int {
	return 1 + protowire.SizeBytes(m.b.size)
}

func (m batchMessage) MarshalToSizedBufferVT(dst []byte) (int, error) {
	out := protowire.AppendTag(dst[:0], respBatch, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(m.b.size))
	out = m.b.appendBody(out)
	if len(out) != len(dst) || (len(dst) > 0 && &out[0] != &dst[0]) {
		return 0, fmt.Errorf("stream: batch %d encoded to %d bytes, expected %d", m.b.seq, len(out), len(dst))
	}
	return len(out), nil
}

// UnmarshalVT fails: the message is only sent.
func (batchMessage) UnmarshalVT([]byte) error { return errWriteOnly }

// MarshalVT returns the encoding (tests, disk).
func (m batchMessage) MarshalVT() ([]byte, error) {
	buf := make([]byte, m.SizeVT())
	_, err := m.MarshalToSizedBufferVT(buf)
	return buf, err
}

// encodedMessage is StreamMetricsResponse{batch: body}, body an encoded
// MetricBatch (read back from a disk log).
type encodedMessage struct{ body []byte }

func (m encodedMessage) SizeVT() int { return 1 + protowire.SizeBytes(len(m.body)) }

func (m encodedMessage) MarshalToSizedBufferVT(dst []byte) (int, error) {
	out := protowire.AppendTag(dst[:0], respBatch, protowire.BytesType)
	out = protowire.AppendBytes(out, m.body)
	if len(out) != len(dst) {
		return 0, fmt.Errorf("stream: stored batch encoded to %d bytes, expected %d", len(out), len(dst))
	}
	return len(out), nil
}

// UnmarshalVT fails: the message is only sent.
func (encodedMessage) UnmarshalVT([]byte) error { return errWriteOnly }

// MarshalVT returns the encoding.
func (m encodedMessage) MarshalVT() ([]byte, error) {
	buf := make([]byte, m.SizeVT())
	_, err := m.MarshalToSizedBufferVT(buf)
	return buf, err
}

var (
	_ Message = batchMessage{}
	_ Message = encodedMessage{}
	_ Message = (*pb.StreamMetricsResponse)(nil)
)
