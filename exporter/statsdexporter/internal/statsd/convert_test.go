package statsd

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var (
	exporterStart = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	before        = exporterStart.Add(-time.Hour)
	after         = exporterStart.Add(time.Second)
)

func at(base time.Time, sec int) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(base.Add(time.Duration(sec) * time.Second))
}

func newConv(opts Options) *Converter {
	if opts.TagFormat == "" {
		opts.TagFormat = TagFormatDogStatsD
	}
	if opts.HistogramMode == "" {
		opts.HistogramMode = HistogramAggregates
	}
	if opts.ObservationType == "" {
		opts.ObservationType = Timer
	}
	if opts.Expiration == 0 {
		opts.Expiration = 5 * time.Minute
	}
	opts.Start = exporterStart
	if opts.Now == nil {
		opts.Now = func() time.Time { return exporterStart.Add(time.Minute) }
	}
	return NewConverter(opts)
}

func metrics() (pmetric.Metrics, pmetric.MetricSlice) {
	md := pmetric.NewMetrics()
	return md, md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
}

func sum(ms pmetric.MetricSlice, name string, monotonic bool, temp pmetric.AggregationTemporality, start, ts pcommon.Timestamp, v float64, attrs map[string]any) {
	m := ms.AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(monotonic)
	s.SetAggregationTemporality(temp)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(v)
	_ = dp.Attributes().FromRaw(attrs)
}

func cumulative(ms pmetric.MetricSlice, name string, start time.Time, sec int, v float64) {
	sum(ms, name, true, pmetric.AggregationTemporalityCumulative, at(start, 0), at(start, sec), v, map[string]any{"k": "v"})
}

// convert converts and commits, returning the entries.
func convert(c *Converter, md pmetric.Metrics) []string {
	b := c.Convert(md)
	b.Commit()
	return b.Entries
}

func TestCumulativeCounterBecomesIncrements(t *testing.T) {
	c := newConv(Options{})
	steps := []struct {
		sec  int
		v    float64
		want []string
	}{
		{1, 10, []string{"req:10|c|#k:v"}}, // started after the exporter: sent in full
		{2, 15, []string{"req:5|c|#k:v"}},
		{3, 15, []string{"req:0|c|#k:v"}},
		{4, 4, []string{"req:4|c|#k:v"}}, // lower: a reset, the new value is the increment
		{4, 4, nil},                      // not newer: a duplicate
		{5, 7, []string{"req:3|c|#k:v"}},
	}
	for _, s := range steps {
		md, ms := metrics()
		cumulative(ms, "req", after, s.sec, s.v)
		assert.Equal(t, s.want, convert(c, md), "at %d", s.sec)
	}
	assert.Equal(t, 1, c.Series())
}

func TestCumulativeCounterStartedBeforeExporterIsBaseline(t *testing.T) {
	c := newConv(Options{})
	md, ms := metrics()
	cumulative(ms, "req", before, 1, 1000)
	assert.Empty(t, convert(c, md))
	md, ms = metrics()
	cumulative(ms, "req", before, 2, 1003)
	assert.Equal(t, []string{"req:3|c|#k:v"}, convert(c, md))

	// A new start time is a reset even when the value grew.
	md, ms = metrics()
	cumulative(ms, "req", after, 3, 2000)
	assert.Equal(t, []string{"req:2000|c|#k:v"}, convert(c, md))
}

func TestUncommittedBatchLeavesStateAlone(t *testing.T) {
	c := newConv(Options{})
	md, ms := metrics()
	cumulative(ms, "req", after, 1, 10)
	convert(c, md)

	md, ms = metrics()
	cumulative(ms, "req", after, 2, 25)
	failed := c.Convert(md) // the send failed: no Commit
	assert.Equal(t, []string{"req:15|c|#k:v"}, failed.Entries)
	retried := c.Convert(md)
	assert.Equal(t, []string{"req:15|c|#k:v"}, retried.Entries, "a retry sends the same increment")
	retried.Commit()
	assert.Empty(t, c.Convert(md).Entries, "once sent, the point is a duplicate")
}

func TestSameSeriesTwiceInOneBatch(t *testing.T) {
	c := newConv(Options{})
	md, ms := metrics()
	cumulative(ms, "req", after, 1, 10)
	cumulative(ms, "req", after, 2, 12)
	assert.Equal(t, []string{"req:10|c|#k:v", "req:2|c|#k:v"}, convert(c, md))
}

func TestDeltaAndGauges(t *testing.T) {
	c := newConv(Options{Prefix: "app", TagFormat: TagFormatInfluxDB})
	md, ms := metrics()
	sum(ms, "jobs", true, pmetric.AggregationTemporalityDelta, at(after, 0), at(after, 1), 4, nil)
	sum(ms, "queue.depth", false, pmetric.AggregationTemporalityCumulative, at(after, 0), at(after, 1), -3, map[string]any{"q": "a"})
	sum(ms, "inflight", false, pmetric.AggregationTemporalityDelta, at(after, 0), at(after, 1), 2, nil)
	g := ms.AppendEmpty()
	g.SetName("temp")
	gdp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gdp.SetIntValue(21)
	nan := ms.AppendEmpty()
	nan.SetName("nan")
	nan.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(math.NaN())
	b := c.Convert(md)
	assert.Equal(t, []string{
		"app.jobs:4|c",
		"app.queue.depth,q=a:0|g\napp.queue.depth,q=a:-3|g",
		"app.inflight:+2|g",
		"app.temp:21|g",
	}, b.Entries)
	assert.Equal(t, map[string]int{ReasonNotFinite: 1}, b.Dropped)
	assert.Equal(t, 4, b.Points)
}

func histogram(ms pmetric.MetricSlice, name string, temp pmetric.AggregationTemporality, start, ts pcommon.Timestamp, bounds []float64, counts []uint64, s float64) pmetric.HistogramDataPoint {
	m := ms.AppendEmpty()
	m.SetName(name)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(temp)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetCount(n)
	dp.SetSum(s)
	return dp
}

func TestHistogramAggregates(t *testing.T) {
	c := newConv(Options{Quantiles: []float64{0.5, 0.9}, TagFormat: TagFormatNone})
	md, ms := metrics()
	dp := histogram(ms, "lat", pmetric.AggregationTemporalityDelta, at(after, 0), at(after, 1),
		[]float64{10, 20, 40}, []uint64{2, 4, 4, 0}, 220)
	dp.SetMin(5)
	dp.SetMax(38)
	assert.Equal(t, []string{
		"lat.count:10|c",
		"lat.sum:220|c",
		"lat.min:5|g",
		"lat.max:38|g",
		"lat.p50:17.5|g", // rank 5: 3rd of 4 in (10, 20]
		"lat.p90:33.5|g", // rank 9: 3rd of 4 in (20, 38], clamped to max
	}, convert(c, md))
}

func TestCumulativeHistogramBecomesIntervals(t *testing.T) {
	c := newConv(Options{Quantiles: []float64{0.5}, TagFormat: TagFormatNone})
	bounds := []float64{1, 2}
	step := func(sec int, counts []uint64, s float64) []string {
		md, ms := metrics()
		histogram(ms, "lat", pmetric.AggregationTemporalityCumulative, at(after, 0), at(after, sec), bounds, counts, s)
		return convert(c, md)
	}
	assert.Equal(t, []string{"lat.count:2|c", "lat.sum:1|c", "lat.p50:0.5|g"}, step(1, []uint64{2, 0, 0}, 1))
	assert.Equal(t, []string{"lat.count:4|c", "lat.sum:6|c", "lat.p50:1.5|g"}, step(2, []uint64{2, 4, 0}, 7))
	assert.Empty(t, step(3, []uint64{2, 4, 0}, 7), "nothing happened")
	// A bucket went down: a reset, the whole point is the interval.
	assert.Equal(t, []string{"lat.count:1|c", "lat.sum:3|c", "lat.p50:2|g"}, step(4, []uint64{0, 0, 1}, 3))
}

func TestHistogramObservations(t *testing.T) {
	c := newConv(Options{HistogramMode: HistogramObservations, ObservationType: Distribution, TagFormat: TagFormatGraphite})
	md, ms := metrics()
	dp := histogram(ms, "lat", pmetric.AggregationTemporalityDelta, at(after, 0), at(after, 1),
		[]float64{10, 20}, []uint64{1, 4, 2}, 100)
	dp.Attributes().PutStr("route", "/a")
	dp.SetMax(30)
	assert.Equal(t, []string{
		"lat;route=/a:5|d",        // (-inf, 10] without min: (0, 10]
		"lat;route=/a:15|d|@0.25", // 4 observations
		"lat;route=/a:25|d|@0.5",  // (20, max 30]
	}, convert(c, md))
}

func TestExponentialHistogramCumulative(t *testing.T) {
	c := newConv(Options{HistogramMode: HistogramObservations, TagFormat: TagFormatNone})
	step := func(sec int, scale int32, offset int32, counts []uint64, zero uint64) []string {
		md, ms := metrics()
		m := ms.AppendEmpty()
		m.SetName("size")
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(at(after, 0))
		dp.SetTimestamp(at(after, sec))
		dp.SetScale(scale)
		dp.SetZeroCount(zero)
		dp.Positive().SetOffset(offset)
		dp.Positive().BucketCounts().FromRaw(counts)
		n := zero
		for _, x := range counts {
			n += x
		}
		dp.SetCount(n)
		return convert(c, md)
	}
	// scale 1: bucket 2 is (2, 2.83], bucket 3 (2.83, 4]
	assert.Equal(t, []string{"size:0|ms", "size:2.414213562373095|ms|@0.5"}, step(1, 1, 2, []uint64{2}, 1))
	// scale 0 now: old bucket 2 (scale 1) is bucket 1 (2, 4]; 2 more there, 1 in (4, 8]
	assert.Equal(t, []string{"size:3|ms|@0.5", "size:6|ms"}, step(2, 0, 1, []uint64{4, 1}, 1))
}

func TestSummary(t *testing.T) {
	c := newConv(Options{TagFormat: TagFormatNone})
	step := func(sec int, count uint64, s float64) []string {
		md, ms := metrics()
		m := ms.AppendEmpty()
		m.SetName("rpc")
		dp := m.SetEmptySummary().DataPoints().AppendEmpty()
		dp.SetStartTimestamp(at(after, 0))
		dp.SetTimestamp(at(after, sec))
		dp.SetCount(count)
		dp.SetSum(s)
		q := dp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.99)
		q.SetValue(0.75)
		return convert(c, md)
	}
	assert.Equal(t, []string{"rpc.count:10|c", "rpc.sum:2.5|c", "rpc.p99:0.75|g"}, step(1, 10, 2.5))
	assert.Equal(t, []string{"rpc.count:5|c", "rpc.sum:1.5|c", "rpc.p99:0.75|g"}, step(2, 15, 4))
}

func TestSampling(t *testing.T) {
	draws := []float64{0.1, 0.9, 0.2, 0.3, 0.95}
	c := newConv(Options{SampleRate: 0.5, TagFormat: TagFormatNone, Rand: func() float64 {
		v := draws[0]
		draws = draws[1:]
		return v
	}})
	md, ms := metrics()
	for i := 0; i < 3; i++ {
		sum(ms, "hits", true, pmetric.AggregationTemporalityDelta, 0, at(after, i), 1, nil)
	}
	g := ms.AppendEmpty()
	g.SetName("temp")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	histogram(ms, "lat", pmetric.AggregationTemporalityDelta, 0, at(after, 1), []float64{1}, []uint64{4, 0}, 2)
	histogram(ms, "lat2", pmetric.AggregationTemporalityDelta, 0, at(after, 1), []float64{1}, []uint64{4, 0}, 2)
	b := c.Convert(md)
	assert.Equal(t, []string{
		"hits:1|c|@0.5", // 0.1 < 0.5: sent
		// 0.9: left out
		"hits:1|c|@0.5",                          // 0.2
		"temp:1|g",                               // gauges are not sampled
		"lat.count:4|c|@0.5", "lat.sum:2|c|@0.5", // 0.3: one draw for count and sum
		// 0.95: lat2 count and sum left out
	}, b.Entries)
	assert.Equal(t, 2, b.Sampled)
}

func TestResourceTagsAndSanitizing(t *testing.T) {
	c := newConv(Options{ResourceTags: true})
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "shop")
	rm.Resource().Attributes().PutStr("env", "from-resource")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	sum(ms, "http requests", true, pmetric.AggregationTemporalityDelta, 0, at(after, 1), 1,
		map[string]any{"env": "prod", "path": "/a,b", "empty": ""})
	assert.Equal(t, []string{"http_requests:1|c|#env:prod,path:/a_b,service.name:shop"}, convert(c, md))
}

func TestIdleSeriesExpire(t *testing.T) {
	now := exporterStart
	c := newConv(Options{Expiration: time.Minute, Now: func() time.Time { return now }})
	md, ms := metrics()
	cumulative(ms, "a", after, 1, 1)
	convert(c, md)
	require.Equal(t, 1, c.Series())
	now = now.Add(2 * time.Minute)
	md, ms = metrics()
	cumulative(ms, "b", after, 1, 1)
	convert(c, md)
	assert.Equal(t, 1, c.Series(), "a expired, b kept")
}

func TestDistMinusRejectsChangedLayout(t *testing.T) {
	a := &dist{bounds: []float64{1}, counts: []uint64{1, 1}, count: 2}
	b := &dist{bounds: []float64{2}, counts: []uint64{1, 1}, count: 2}
	_, ok := a.minus(b)
	assert.False(t, ok)
	e1 := &dist{expo: true, scale: 1, pos: map[int32]uint64{}, neg: map[int32]uint64{}}
	e2 := &dist{expo: true, scale: 0, pos: map[int32]uint64{}, neg: map[int32]uint64{}}
	_, ok = e1.minus(e2)
	assert.False(t, ok, "a higher scale than before is a reset")
}
