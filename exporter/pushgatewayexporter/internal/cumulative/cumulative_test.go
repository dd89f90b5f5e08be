package cumulative

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func ts(sec int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(t0.Add(time.Duration(sec) * time.Second))
}

// text renders every group of res in the exposition format, groups in order.
func text(t *testing.T, a *State, groups []*Group) string {
	t.Helper()
	var b bytes.Buffer
	for _, g := range groups {
		b.WriteString("# group:")
		for _, l := range g.Labels() {
			b.WriteString(" " + l.Name + "=" + l.Value)
		}
		b.WriteString("\n")
		enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range a.Families(g) {
			require.NoError(t, enc.Encode(mf))
		}
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test with -update to create %s", path)
	assert.Equal(t, string(want), got)
	// Each group's text is valid exposition format.
	for _, chunk := range strings.Split(got, "# group:")[1:] {
		p := expfmt.NewTextParser(model.LegacyValidation)
		_, err = p.TextToMetricFamilies(strings.NewReader("#" + chunk))
		require.NoError(t, err)
	}
}

func newMetrics(resAttrs map[string]any) (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(resAttrs)
	return md, rm.ScopeMetrics().AppendEmpty().Metrics()
}

func addSum(ms pmetric.MetricSlice, name, unit string, monotonic bool, temp pmetric.AggregationTemporality, sec int, v float64, attrs map[string]any) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription("the " + name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(monotonic)
	s.SetAggregationTemporality(temp)
	dp := s.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(sec))
	dp.SetDoubleValue(v)
	_ = dp.Attributes().FromRaw(attrs)
}

func addGauge(ms pmetric.MetricSlice, name, unit string, sec int, v int64, attrs map[string]any) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(sec))
	dp.SetIntValue(v)
	_ = dp.Attributes().FromRaw(attrs)
}

func addHistogram(ms pmetric.MetricSlice, name string, temp pmetric.AggregationTemporality, sec int, bounds []float64, counts []uint64, sum float64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(temp)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(sec))
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetCount(n)
	dp.SetSum(sum)
	dp.Attributes().PutStr("route", "/api")
}

func addExpo(ms pmetric.MetricSlice, name string, temp pmetric.AggregationTemporality, sec int, scale, offset int32, pos []uint64, zero uint64, sum float64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit("ms")
	h := m.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(temp)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(sec))
	dp.SetScale(scale)
	dp.SetZeroCount(zero)
	dp.Positive().SetOffset(offset)
	dp.Positive().BucketCounts().FromRaw(pos)
	n := zero
	for _, c := range pos {
		n += c
	}
	dp.SetCount(n)
	dp.SetSum(sum)
}

func newAcc(opts Options) *State {
	if opts.Expiration == 0 {
		opts.Expiration = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	return New(opts)
}

func TestAllTypesGolden(t *testing.T) {
	a := newAcc(Options{AddMetricSuffixes: true, GroupingFromResource: []string{"service.instance.id"}})
	md, ms := newMetrics(map[string]any{"service.name": "shop", "service.instance.id": "i-1"})
	addSum(ms, "http.requests", "1", true, pmetric.AggregationTemporalityCumulative, 1, 42, map[string]any{"method": "GET", "job": "dropped: set by the group"})
	addSum(ms, "queue.depth", "{item}", false, pmetric.AggregationTemporalityCumulative, 1, -3, nil)
	addGauge(ms, "memory.usage", "By", 1, 2048, map[string]any{"host.name": "a", "host_name": "b"})
	addHistogram(ms, "http.duration", pmetric.AggregationTemporalityCumulative, 1, []float64{0.1, 0.5, 1}, []uint64{2, 3, 0, 1}, 3.25)
	addExpo(ms, "db.latency", pmetric.AggregationTemporalityCumulative, 1, 0, 2, []uint64{1, 0, 2}, 1, 50)
	sm := ms.AppendEmpty()
	sm.SetName("rpc.latency")
	sm.SetUnit("s")
	sdp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(ts(1))
	sdp.SetCount(10)
	sdp.SetSum(2.5)
	q := sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(0.9)
	q = sdp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.2)

	res := a.Update(md)
	assert.Equal(t, 6, res.Points)
	assert.Empty(t, res.Dropped)
	require.Len(t, res.Groups, 1)
	assert.Equal(t, []Label{{"service_instance_id", "i-1"}}, res.Groups[0].Labels())
	golden(t, "all_types.prom", text(t, a, res.Groups))
}

func TestDeltaIsAccumulated(t *testing.T) {
	a := newAcc(Options{AddMetricSuffixes: true, Namespace: "app"})
	for i, v := range []float64{5, 3, 2} {
		md, ms := newMetrics(nil)
		addSum(ms, "jobs.done", "", true, pmetric.AggregationTemporalityDelta, i+1, v, map[string]any{"queue": "q1"})
		addHistogram(ms, "job.duration", pmetric.AggregationTemporalityDelta, i+1, []float64{1, 5}, []uint64{1, uint64(i), 1}, 10)
		addExpo(ms, "job.size", pmetric.AggregationTemporalityDelta, i+1, int32(1-i), 0, []uint64{1, 1}, 0, 3)
		a.Update(md)
	}
	// A retry of the last batch is not added again.
	md, ms := newMetrics(nil)
	addSum(ms, "jobs.done", "", true, pmetric.AggregationTemporalityDelta, 3, 2, map[string]any{"queue": "q1"})
	res := a.Update(md)
	assert.Equal(t, 1, res.Stale)
	assert.Equal(t, 0, res.Points)
	golden(t, "delta_accumulated.prom", text(t, a, res.Groups))
}

func TestCumulativeKeepsLatestAndSkipsOlder(t *testing.T) {
	a := newAcc(Options{AddMetricSuffixes: false})
	for _, p := range []struct {
		sec int
		v   float64
	}{{1, 10}, {3, 30}, {2, 20}, {3, 30}} {
		md, ms := newMetrics(nil)
		addSum(ms, "c", "", true, pmetric.AggregationTemporalityCumulative, p.sec, p.v, nil)
		a.Update(md)
	}
	md, ms := newMetrics(nil)
	addSum(ms, "c", "", true, pmetric.AggregationTemporalityCumulative, 4, 5, nil) // a reset is kept as is
	res := a.Update(md)
	fams := a.Families(res.Groups[0])
	require.Len(t, fams, 1)
	assert.Equal(t, "c", fams[0].GetName())
	assert.InDelta(t, 5.0, fams[0].Metric[0].GetCounter().GetValue(), 0)
}

func TestTypeConflictIsDropped(t *testing.T) {
	a := newAcc(Options{})
	md, ms := newMetrics(nil)
	addGauge(ms, "x", "", 1, 1, nil)
	addSum(ms, "x", "", false, pmetric.AggregationTemporalityCumulative, 1, 2, nil) // a gauge too: same family
	addHistogram(ms, "x", pmetric.AggregationTemporalityCumulative, 1, []float64{1}, []uint64{1, 1}, 1)
	res := a.Update(md)
	assert.Equal(t, map[string]int{ReasonTypeConflict: 1}, res.Dropped)
	assert.Equal(t, "type_conflict=1", res.String())
}

func TestNoRecordedValueAndBadNames(t *testing.T) {
	a := newAcc(Options{})
	md, ms := newMetrics(nil)
	addGauge(ms, "g", "", 1, 1, nil)
	ms.At(0).Gauge().DataPoints().At(0).SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	addGauge(ms, "", "", 1, 1, nil)
	res := a.Update(md)
	assert.Equal(t, map[string]int{ReasonNoValue: 1, ReasonBadName: 1}, res.Dropped)
	assert.Empty(t, a.Families(res.Groups[0]))
}

func TestGroupingAndResourceLabels(t *testing.T) {
	a := newAcc(Options{
		GroupingLabels:       map[string]string{"env": "prod"},
		GroupingFromResource: []string{"service.name"},
		ResourceLabels:       true,
	})
	md := pmetric.NewMetrics()
	for _, svc := range []string{"b", "a", "b"} {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", svc)
		rm.Resource().Attributes().PutStr("host.name", "h-"+svc)
		rm.Resource().Attributes().PutStr("env", "ignored: grouping label")
		addGauge(rm.ScopeMetrics().AppendEmpty().Metrics(), "g", "", 1, 1, map[string]any{"host.name": "from-point"})
	}
	rm := md.ResourceMetrics().AppendEmpty() // no service.name: a group without it
	addGauge(rm.ScopeMetrics().AppendEmpty().Metrics(), "g", "", 1, 1, nil)

	res := a.Update(md)
	require.Len(t, res.Groups, 3)
	assert.Equal(t, []Label{{"env", "prod"}, {"service_name", "b"}}, res.Groups[0].Labels())
	assert.Equal(t, []Label{{"env", "prod"}, {"service_name", "a"}}, res.Groups[1].Labels())
	assert.Equal(t, []Label{{"env", "prod"}}, res.Groups[2].Labels())
	golden(t, "grouping.prom", text(t, a, res.Groups))
}

func TestIdleSeriesExpire(t *testing.T) {
	now := t0
	a := newAcc(Options{Expiration: time.Minute, Now: func() time.Time { return now }})
	md, ms := newMetrics(nil)
	addGauge(ms, "old", "", 1, 1, nil)
	a.Update(md)
	now = now.Add(50 * time.Second)
	md, ms = newMetrics(nil)
	addGauge(ms, "new", "", 2, 1, nil)
	res := a.Update(md)
	assert.Len(t, a.Families(res.Groups[0]), 2)
	assert.Equal(t, 2, a.Series())

	now = now.Add(20 * time.Second) // old is 70s idle, new 20s
	md, ms = newMetrics(nil)
	addGauge(ms, "new", "", 3, 2, nil)
	res = a.Update(md)
	fams := a.Families(res.Groups[0])
	require.Len(t, fams, 1)
	assert.Equal(t, "new", fams[0].GetName())

	a.Sweep(now.Add(2 * time.Minute))
	assert.Equal(t, 0, a.Series())
	assert.Empty(t, a.groups)
}

func TestExpoMergeDownscalesAndFits(t *testing.T) {
	h := &expoHistogram{scale: 2, pos: map[int32]uint64{0: 1, 4: 1}, neg: map[int32]uint64{}}
	h.merge(&expoHistogram{scale: 1, pos: map[int32]uint64{1: 2}, neg: map[int32]uint64{}, count: 2})
	assert.Equal(t, int32(1), h.scale)
	assert.Equal(t, map[int32]uint64{0: 1, 1: 2, 2: 1}, h.pos)

	wide := &expoHistogram{scale: 4, pos: map[int32]uint64{-1000: 1, 1000: 1}, neg: map[int32]uint64{}}
	wide.fit()
	assert.LessOrEqual(t, span(wide.pos), maxExpoBuckets)
	assert.Equal(t, int32(0), wide.scale)

	assert.InDelta(t, 4.0, lowerBound(2, 0), 0)
	assert.InDelta(t, 16.0, lowerBound(1, -2), 0)
	assert.InDelta(t, math.Sqrt2, lowerBound(1, 1), 1e-15)
}
