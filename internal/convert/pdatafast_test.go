package convert

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestPdataLayoutChecked fails when the pdata in use is laid out otherwise
// than pdatafast.go expects: build then falls back to the public API, which
// is correct but several times slower.
func TestPdataLayoutChecked(t *testing.T) {
	require.True(t, fastPdata.ok, "pdata's internal layout differs from the mirrors in pdatafast.go: the arena build is off")
}

// arenaBatches are requests that give number points of every kind: gauges
// (also several points of a series in one request), counters (increments
// and running totals, several points of a series), with 0 to 5 labels,
// next to histograms and summaries, which are built through the API.
func arenaBatches() [][]*pb.MetricData {
	var out [][]*pb.MetricData
	for req := range 3 {
		var ms []*pb.MetricData
		for i := range 40 {
			labels := map[string]string{}
			for l := range i % 6 {
				labels[fmt.Sprintf("l%d", l)] = fmt.Sprintf("v%d_%d", l, i%7)
			}
			ts := atNs(int64(req)*sec + int64(i%5)*msNanos*3)
			switch i % 5 {
			case 0, 1:
				ms = append(ms, &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: float64(i), Labels: labels, Timestamp: ts, Unit: "By"})
			case 2:
				ms = append(ms, &pb.MetricData{Name: "c", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: float64(i), Labels: labels, Timestamp: ts})
			case 3:
				ms = append(ms, &pb.MetricData{Name: "ct", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: float64(req*100 + i), Labels: labels, Timestamp: ts})
			default:
				ms = append(ms, &pb.MetricData{Name: "h", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: float64(i), Labels: labels, Timestamp: ts},
					&pb.MetricData{Name: "s", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Value: float64(i), Labels: labels, Timestamp: ts})
			}
		}
		out = append(out, ms)
	}
	return out
}

// TestArenaBuildMatchesPublicAPI: the pdata built in the arena equals, point
// for point, what the public API builds, under both counter temporalities.
func TestArenaBuildMatchesPublicAPI(t *testing.T) {
	for _, temp := range []Temporality{TemporalityCumulative, TemporalityDelta} {
		t.Run(string(temp), func(t *testing.T) {
			mutate := func(c *Config) { c.CounterTemporality = temp }
			fast, slow := newTestAccumulator(t, mutate), newTestAccumulator(t, mutate)
			slow.noArena = true
			for i, ms := range arenaBatches() {
				got := recordBatch(t, fast, svc, clone(ms)...)
				want := recordBatch(t, slow, svc, clone(ms)...)
				require.Positive(t, got.DataPointCount())
				// equal, in the same order, and encoded the same
				wantPB, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(want)
				require.NoError(t, err)
				gotPB, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(got)
				require.NoError(t, err)
				require.Equal(t, wantPB, gotPB, "request %d", i)
				wantJSON, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(want)
				require.NoError(t, err)
				gotJSON, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(got)
				require.NoError(t, err)
				require.JSONEq(t, string(wantJSON), string(gotJSON), "request %d", i)
			}
		})
	}
}

// TestArenaBuildAllocatesPerRequest: with the arena, the number points of
// a request cost a few allocations in all, not several per point.
func TestArenaBuildAllocatesPerRequest(t *testing.T) {
	var ms []*pb.MetricData
	for i := range 200 {
		ms = append(ms, &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1,
			Labels: map[string]string{"a": fmt.Sprint(i), "b": "x", "c": "y", "d": "z"}, Timestamp: at(1)})
	}
	allocs := func(a *Accumulator) float64 {
		return testing.AllocsPerRun(5, func() {
			b := a.Prepare(ms, svc, false)
			if _, err := a.Apply(b, true, func(pmetric.Metrics) error { return nil }); err != nil {
				t.Fatal(err)
			}
			b.Release()
		})
	}
	fast, slow := newTestAccumulator(t, nil), newTestAccumulator(t, nil)
	slow.noArena = true
	f, s := allocs(fast), allocs(slow)
	assert.Less(t, f, s-5*200, "arena %v allocations per request, public API %v", f, s)
}

func clone(ms []*pb.MetricData) []*pb.MetricData {
	out := make([]*pb.MetricData, len(ms))
	for i, m := range ms {
		out[i] = m.CloneVT()
	}
	return out
}

// TestArenaPointsAreOrdinaryPdata: downstream components may change, add,
// remove, copy and move the attributes and values of points built in the
// arena; each point's attributes are its own.
func TestArenaPointsAreOrdinaryPdata(t *testing.T) {
	a := newTestAccumulator(t, nil)
	ms := []*pb.MetricData{
		{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"a": "1", "b": "2"}, Timestamp: at(1)},
		{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 2, Labels: map[string]string{"a": "3", "b": "4"}, Timestamp: at(1)},
		{Name: "c", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"a": "1"}, Timestamp: at(1)},
	}
	md := recordBatch(t, a, svc, ms...)
	metrics := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	dps := metrics.At(0).Gauge().DataPoints()
	require.Equal(t, 2, dps.Len())
	p0, p1 := dps.At(0), dps.At(1)

	p0.Attributes().PutStr("a", "changed") // in place
	p0.Attributes().PutInt("b", 7)         // another type
	p0.Attributes().PutStr("new", "x")     // grows the array
	assert.Equal(t, map[string]any{"a": "changed", "b": int64(7), "new": "x"}, p0.Attributes().AsRaw())
	assert.Equal(t, map[string]any{"a": "3", "b": "4"}, p1.Attributes().AsRaw(), "the next point's attributes are its own")
	p1.Attributes().Remove("a")
	p1.SetDoubleValue(9)
	p1.SetIntValue(3)
	assert.Equal(t, map[string]any{"b": "4"}, p1.Attributes().AsRaw())
	assert.Equal(t, int64(3), p1.IntValue())
	assert.Equal(t, 1.0, p0.DoubleValue())

	copied := pmetric.NewNumberDataPointSlice()
	dps.CopyTo(copied)
	dps.At(0).Attributes().PutStr("a", "after copy")
	got, ok := copied.At(0).Attributes().Get("a")
	require.True(t, ok, "the copy keeps its attribute")
	assert.Equal(t, "changed", got.Str())

	moved := pmetric.NewNumberDataPointSlice()
	dps.MoveAndAppendTo(moved)
	assert.Equal(t, 2, moved.Len())
	dps.AppendEmpty().SetDoubleValue(4)

	sum := metrics.At(1).Sum().DataPoints()
	require.Equal(t, 1, sum.Len())
	assert.Equal(t, 5.0, sum.At(0).DoubleValue())
	attrs := pcommon.NewMap()
	sum.At(0).Attributes().CopyTo(attrs)
	assert.Equal(t, map[string]any{"a": "1"}, attrs.AsRaw())

	raw, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	require.NoError(t, err)
	back, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(raw)
	require.NoError(t, err)
	assert.Equal(t, md.DataPointCount(), back.DataPointCount())
}
