package convert

import (
	"errors"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// fakeStore keeps the cumulative sum points an accumulator emitted, per
// series, and answers ResumeCounter from them, as the store does.
type fakeStore struct {
	mu     sync.Mutex
	series map[string]*storedSum
	asked  int
	hits   int
}

type storedSum struct {
	first, last int64
	v           float64
	counts      []uint64          // histograms
	n           uint64            // summaries: the count
	expo        *ExponentialState // exponential histograms
}

func newFakeStore() *fakeStore { return &fakeStore{series: map[string]*storedSum{}} }

func seriesID(name string, labels iter.Seq2[string, string], res map[string]string) string {
	var sb strings.Builder
	sb.WriteString(name)
	for k, v := range labels {
		sb.WriteString("|" + k + "=" + v)
	}
	for _, k := range slices.Sorted(maps.Keys(res)) {
		sb.WriteString("|r." + k + "=" + res[k])
	}
	return sb.String()
}

func (f *fakeStore) ResumeCounter(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (float64, int64, int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	s := f.series[seriesID(m.Name, labels, res)]
	if s == nil {
		return 0, 0, 0, false
	}
	f.hits++
	return s.v, s.last, s.first, true
}

func (f *fakeStore) ResumeHistogram(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, bounds []float64) ([]uint64, float64, int64, int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	s := f.series["h:"+seriesID(m.Name, labels, res)]
	if s == nil || len(s.counts) != len(bounds)+1 {
		return nil, 0, 0, 0, false
	}
	f.hits++
	return slices.Clone(s.counts), s.v, s.last, s.first, true
}

func (f *fakeStore) ResumeSummary(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (uint64, float64, int64, int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	s := f.series["s:"+seriesID(m.Name, labels, res)]
	if s == nil {
		return 0, 0, 0, 0, false
	}
	f.hits++
	return s.n, s.v, s.last, s.first, true
}

func (f *fakeStore) ResumeExponential(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, maxSize int32) (ExponentialState, int64, int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	s := f.series["e:"+seriesID(m.Name, labels, res)]
	if s == nil || s.expo == nil {
		return ExponentialState{}, 0, 0, false
	}
	f.hits++
	h := *s.expo
	h.PositiveCounts, h.NegativeCounts = slices.Clone(h.PositiveCounts), slices.Clone(h.NegativeCounts)
	return h, s.last, s.first, true
}

func (f *fakeStore) put(id string, ts int64, v float64, counts []uint64) *storedSum {
	s := f.series[id]
	if s == nil {
		s = &storedSum{first: ts}
		f.series[id] = s
	}
	if ts >= s.last {
		s.last, s.v, s.counts = ts, v, counts
		return s
	}
	return &storedSum{} // (an older point: not kept)
}

// consume stores the cumulative sums and histograms of md.
func (f *fakeStore) consume(md pmetric.Metrics) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rm := range md.ResourceMetrics().All() {
		res := map[string]string{}
		for k, v := range rm.Resource().Attributes().All() {
			res[k] = v.Str()
		}
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch {
				case m.Type() == pmetric.MetricTypeSum && m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative:
					for _, dp := range m.Sum().DataPoints().All() {
						f.put(seriesID(m.Name(), sortedAttrs(dp.Attributes()), res), int64(dp.Timestamp()), dp.DoubleValue(), nil)
					}
				case m.Type() == pmetric.MetricTypeHistogram && m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative:
					for _, dp := range m.Histogram().DataPoints().All() {
						f.put("h:"+seriesID(m.Name(), sortedAttrs(dp.Attributes()), res), int64(dp.Timestamp()), dp.Sum(), dp.BucketCounts().AsRaw())
					}
				case m.Type() == pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						f.put("s:"+seriesID(m.Name(), sortedAttrs(dp.Attributes()), res), int64(dp.Timestamp()), dp.Sum(), nil).n = dp.Count()
					}
				case m.Type() == pmetric.MetricTypeExponentialHistogram && m.ExponentialHistogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative:
					// (what the store keeps: no min and max)
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						f.put("e:"+seriesID(m.Name(), sortedAttrs(dp.Attributes()), res), int64(dp.Timestamp()), dp.Sum(), nil).expo = &ExponentialState{
							Scale: dp.Scale(), ZeroCount: dp.ZeroCount(), Count: dp.Count(), Sum: dp.Sum(),
							PositiveOffset: dp.Positive().Offset(), PositiveCounts: dp.Positive().BucketCounts().AsRaw(),
							NegativeOffset: dp.Negative().Offset(), NegativeCounts: dp.Negative().BucketCounts().AsRaw(),
						}
					}
				}
			}
		}
	}
	return nil
}

func sortedAttrs(attrs pcommon.Map) iter.Seq2[string, string] {
	m := map[string]string{}
	for k, v := range attrs.All() {
		m[k] = v.Str()
	}
	return func(yield func(string, string) bool) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

func incAt(v float64, s int) *pb.MetricData {
	return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Labels: map[string]string{"k": "v"}, Timestamp: at(s)}
}

// applyTo runs one atomic batch into st and returns its sum points.
func applyTo(t *testing.T, a *Accumulator, st *fakeStore, ms ...*pb.MetricData) []tsValue {
	t.Helper()
	return sumPoints(t, storeBatch(t, a, st, ms...))
}

// storeBatch runs one atomic batch into st and returns what st got.
func storeBatch(t *testing.T, a *Accumulator, st *fakeStore, ms ...*pb.MetricData) pmetric.Metrics {
	t.Helper()
	b := a.Prepare(ms, svc, false)
	require.Empty(t, b.Issues)
	var got pmetric.Metrics
	_, err := a.Apply(b, true, func(md pmetric.Metrics) error { got = md; return st.consume(md) })
	require.NoError(t, err)
	return got
}

func TestCounterResumesFromTheStoredTotalAfterARestart(t *testing.T) {
	st := newFakeStore()
	before := newTestAccumulator(t, nil)
	before.SetResumer(st)
	start := 1*sec - msNanos
	assert.Equal(t, []tsValue{{1 * sec, start, 2}, {2 * sec, start, 5}}, applyTo(t, before, st, incAt(2, 1), incAt(3, 2)))

	// a new process: no state, the same store
	after := newTestAccumulator(t, nil)
	after.SetResumer(st)
	assert.Equal(t, []tsValue{{10 * sec, start, 12}}, applyTo(t, after, st, incAt(7, 10)),
		"the total goes on from the stored 5, with the original start time")
	assert.Equal(t, []tsValue{{11 * sec, start, 13}, {12 * sec, start, 15}}, applyTo(t, after, st, incAt(1, 11), incAt(2, 12)))
	assert.Equal(t, 2, st.asked, "asked once per series creation, not per point")
}

func TestCounterResumesAfterIdleStateWasDropped(t *testing.T) {
	st := newFakeStore()
	cfg := DefaultConfig()
	now := t0
	a := newTestAccumulator(t, nil)
	a.SetClock(func() time.Time { return now })
	a.SetResumer(st)
	applyTo(t, a, st, incAt(4, 1))
	now = now.Add(cfg.SeriesTTL + time.Minute)
	require.Equal(t, 1, a.Sweep())
	_, ok := a.CounterTotal(0)
	require.False(t, ok)
	ts := int(cfg.SeriesTTL/time.Second) + 61
	got := applyTo(t, a, st, incAt(1, ts))
	assert.Equal(t, []tsValue{{int64(ts) * sec, 1*sec - msNanos, 5}}, got)
}

func TestResumedCounterPointsComeAfterTheStoredOne(t *testing.T) {
	st := newFakeStore()
	before := newTestAccumulator(t, nil)
	before.SetResumer(st)
	applyTo(t, before, st, incAt(1, 5))
	after := newTestAccumulator(t, nil)
	after.SetClock(func() time.Time { return t0.Add(10 * time.Second) })
	after.SetResumer(st)
	// records older than the stored point count at the next millisecond
	assert.Equal(t, []tsValue{{5*sec + msNanos, 5*sec - msNanos, 3}}, applyTo(t, after, st, incAt(2, 3)))

	st2 := newFakeStore()
	before = newTestAccumulator(t, nil)
	before.SetResumer(st2)
	applyTo(t, before, st2, incAt(1, 5))
	after = newTestAccumulator(t, nil)
	after.SetClock(func() time.Time { return t0.Add(10 * time.Second) })
	after.SetResumer(st2)
	// several records in one request: one point each, from the stored total
	assert.Equal(t, []tsValue{{5*sec + msNanos, 5*sec - msNanos, 2}, {6 * sec, 5*sec - msNanos, 4}, {7 * sec, 5*sec - msNanos, 7}},
		applyTo(t, after, st2, incAt(3, 7), incAt(1, 4), incAt(2, 6)))
}

func TestARefusedBatchDoesNotKeepTheResumedTotal(t *testing.T) {
	st := newFakeStore()
	before := newTestAccumulator(t, nil)
	before.SetResumer(st)
	applyTo(t, before, st, incAt(10, 1))
	after := newTestAccumulator(t, nil)
	after.SetResumer(st)
	b := after.Prepare([]*pb.MetricData{incAt(1, 2)}, svc, false)
	_, err := after.Apply(b, true, func(pmetric.Metrics) error { return errors.New("downstream refused") })
	require.Error(t, err)
	assert.Zero(t, after.SeriesCount(), "no state kept")
	assert.Equal(t, []tsValue{{3 * sec, 1*sec - msNanos, 12}}, applyTo(t, after, st, incAt(2, 3)))
}

func TestOnlyCumulativeCountersOfIncrementsResume(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		rec    *pb.MetricData
		want   float64
	}{
		{"cumulative record keeps the client's total", nil,
			&pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: 3, Labels: map[string]string{"k": "v"}, Timestamp: at(10)}, 3},
		{"delta counter temporality", func(c *Config) { c.CounterTemporality = TemporalityDelta }, incAt(3, 10), 3},
		{"increment resumes", nil, incAt(3, 10), 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			st.series["c_total|k=v|r.service.name=checkout"] = &storedSum{first: t0.UnixNano(), last: t0.Add(time.Second).UnixNano(), v: 5}
			a := newTestAccumulator(t, tt.mutate)
			a.SetResumer(st)
			b := a.Prepare([]*pb.MetricData{tt.rec}, svc, false)
			require.Empty(t, b.Issues)
			var got pmetric.Metrics
			_, err := a.Apply(b, true, func(md pmetric.Metrics) error { got = md; return nil })
			require.NoError(t, err)
			pts := sumPoints(t, got)
			require.Len(t, pts, 1)
			assert.Equal(t, tt.want, pts[0].v)
		})
	}
}

func TestHistogramResumesFromTheStoredBuckets(t *testing.T) {
	for _, typ := range []pb.MetricType{pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER} {
		t.Run(typ.String(), func(t *testing.T) {
			obs := func(s int, vs ...float64) *pb.MetricData {
				return &pb.MetricData{Name: "lat", Type: typ, Observations: vs, Labels: map[string]string{"k": "v"}, Timestamp: at(s)}
			}
			st := newFakeStore()
			mutate := func(c *Config) { c.Histogram.Buckets = []float64{1, 10} }
			before := newTestAccumulator(t, mutate)
			before.SetResumer(st)
			storeBatch(t, before, st, obs(1, 0.5, 5, 50))

			after := newTestAccumulator(t, mutate)
			after.SetResumer(st)
			md := storeBatch(t, after, st, obs(10, 2, 20))
			dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
			assert.Equal(t, []uint64{1, 2, 2}, dp.BucketCounts().AsRaw())
			assert.Equal(t, uint64(5), dp.Count())
			assert.InDelta(t, 77.5, dp.Sum(), 1e-9)
			assert.Equal(t, t0.Add(time.Second-time.Millisecond).UnixNano(), int64(dp.StartTimestamp()), "the original start")
			assert.False(t, dp.HasMin(), "min and max are not stored: unknown")
			assert.False(t, dp.HasMax())

			// pre-aggregated histograms carry their own state
			st2 := newFakeStore()
			a := newTestAccumulator(t, mutate)
			a.SetResumer(st2)
			st2.series["h:lat|k=v|r.service.name=checkout"] = &storedSum{first: t0.UnixNano(), last: t0.UnixNano(), v: 1, counts: []uint64{1, 0, 0}}
			pre := &pb.MetricData{Name: "lat", Type: typ, Labels: map[string]string{"k": "v"}, Timestamp: at(10),
				Histogram: &pb.HistogramValue{Count: 1, Sum: 3, ExplicitBounds: []float64{1, 10}, BucketCounts: []uint64{0, 1, 0}}}
			md = storeBatch(t, a, st2, pre)
			dp = md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
			assert.Equal(t, []uint64{0, 1, 0}, dp.BucketCounts().AsRaw())
			assert.Zero(t, st2.asked)
		})
	}
}
