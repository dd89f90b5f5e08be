package convert

import (
	"math"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func summaryObs(s int, vs ...float64) *pb.MetricData {
	return &pb.MetricData{Name: "rt", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: vs, Labels: map[string]string{"k": "v"}, Timestamp: at(s)}
}

func expoObs(s int, vs ...float64) *pb.MetricData {
	return &pb.MetricData{Name: "lat", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: vs, Labels: map[string]string{"k": "v"}, Timestamp: at(s)}
}

func onlyMetric(t *testing.T, md pmetric.Metrics) pmetric.Metric {
	t.Helper()
	require.Equal(t, 1, md.ResourceMetrics().Len())
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	require.Equal(t, 1, ms.Len())
	return ms.At(0)
}

func TestSummaryResumesCountAndSumFromTheStore(t *testing.T) {
	st := newFakeStore()
	before := newTestAccumulator(t, nil)
	before.SetResumer(st)
	storeBatch(t, before, st, summaryObs(1, 1, 2, 3))

	after := newTestAccumulator(t, nil)
	after.SetResumer(st)
	dp := onlyMetric(t, storeBatch(t, after, st, summaryObs(10, 4))).Summary().DataPoints().At(0)
	assert.Equal(t, uint64(4), dp.Count(), "the stored 3 observations and the new one")
	assert.Equal(t, 10.0, dp.Sum())
	assert.Equal(t, t0.Add(time.Second-time.Millisecond).UnixNano(), int64(dp.StartTimestamp()), "the original start")
	require.Positive(t, dp.QuantileValues().Len(), "quantiles of the observations since")
	for _, q := range dp.QuantileValues().All() {
		assert.InDelta(t, 4, q.Value(), 0.1)
	}
	dp = onlyMetric(t, storeBatch(t, after, st, summaryObs(11, 5), summaryObs(12, 6))).Summary().DataPoints().At(1)
	assert.Equal(t, uint64(6), dp.Count())
	assert.Equal(t, 21.0, dp.Sum())
	assert.Equal(t, 2, st.asked, "asked once per series creation, not per point")
	assert.Equal(t, 1, st.hits)
}

func TestSummaryResumeRefusals(t *testing.T) {
	stored := &storedSum{first: t0.UnixNano(), last: t0.Add(time.Second).UnixNano(), v: 6, n: 3}
	tests := []struct {
		name      string
		stored    *storedSum
		rec       *pb.MetricData
		asked     int
		wantCount uint64
		wantSum   float64
	}{
		{"resumes", stored, summaryObs(10, 4), 1, 4, 10},
		{"a sum that is not finite", &storedSum{first: stored.first, last: stored.last, v: math.Inf(1), n: 3}, summaryObs(10, 4), 1, 1, 4},
		{"a pre-aggregated summary carries its own totals", stored,
			&pb.MetricData{Name: "rt", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Labels: map[string]string{"k": "v"}, Timestamp: at(10),
				Summary: &pb.SummaryValue{Count: 2, Sum: 5}}, 0, 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			st.series["s:rt|k=v|r.service.name=checkout"] = tt.stored
			a := newTestAccumulator(t, nil)
			a.SetResumer(st)
			dp := onlyMetric(t, storeBatch(t, a, st, tt.rec)).Summary().DataPoints().At(0)
			assert.Equal(t, tt.wantCount, dp.Count())
			assert.Equal(t, tt.wantSum, dp.Sum())
			assert.Equal(t, tt.asked, st.asked)
		})
	}
}

// TestExponentialHistogramResumesAsIfNeverRestarted: after a restart, a
// resumed exponential histogram's points are exactly those of an
// accumulator that never restarted (scale, buckets, zero count, count and
// sum), without min and max (not stored).
func TestExponentialHistogramResumesAsIfNeverRestarted(t *testing.T) {
	expo := func(c *Config) { c.Histogram.Kind = HistogramExponential; c.Histogram.MaxSize = 20 }
	tests := []struct {
		name          string
		before, after [][]float64
	}{
		{"the same range", [][]float64{{1, 2, 3}}, [][]float64{{2.5}, {1.5, 3}}},
		{"a wider range after: downscaled", [][]float64{{1, 1.1}, {1.05}}, [][]float64{{100, 0.001}, {1e6}}},
		{"a narrower range after", [][]float64{{0.001, 1000}}, [][]float64{{5, 5.01}, {5.02}}},
		{"negative values and zeros", [][]float64{{-3, 0, 2}}, [][]float64{{0}, {-100, 7}, {-0.5}}},
		{"only zeros stored", [][]float64{{0, 0}}, [][]float64{{3, 4}, {0}}},
		{"only zeros after", [][]float64{{1, 8}}, [][]float64{{0}, {0, 0}}},
		{"a sum that loses precision", [][]float64{{1e16, 1}}, [][]float64{{1, 1}, {3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			never, neverStore := newTestAccumulator(t, expo), newFakeStore()
			never.SetResumer(neverStore)
			st := newFakeStore()
			before := newTestAccumulator(t, expo)
			before.SetResumer(st)
			s := 1
			for _, vs := range tt.before {
				storeBatch(t, never, neverStore, expoObs(s, vs...))
				storeBatch(t, before, st, expoObs(s, vs...))
				s++
			}
			after := newTestAccumulator(t, expo)
			after.SetResumer(st)
			for _, vs := range tt.after {
				want := storeBatch(t, never, neverStore, expoObs(s, vs...))
				got := storeBatch(t, after, st, expoObs(s, vs...))
				wdp := onlyMetric(t, want).ExponentialHistogram().DataPoints().At(0)
				gdp := onlyMetric(t, got).ExponentialHistogram().DataPoints().At(0)
				assert.False(t, gdp.HasMin(), "min and max are not stored: unknown")
				assert.False(t, gdp.HasMax())
				wdp.RemoveMin()
				wdp.RemoveMax()
				require.NoError(t, pmetrictest.CompareMetrics(want, got), "observations %v", vs)
				s++
			}
			assert.Equal(t, 1, st.hits)
			assert.Equal(t, 2, st.asked, "asked once per series creation, not per point")
		})
	}
}

func TestExponentialHistogramResumeRefusals(t *testing.T) {
	good := ExponentialState{Scale: 2, ZeroCount: 1, PositiveOffset: 3, PositiveCounts: []uint64{2, 0, 1}, NegativeOffset: -1, NegativeCounts: []uint64{1}, Count: 5, Sum: 7.5}
	mod := func(f func(*ExponentialState)) *ExponentialState { s := good; f(&s); return &s }
	expo := func(c *Config) { c.Histogram.Kind = HistogramExponential; c.Histogram.MaxSize = 4 }
	tests := []struct {
		name      string
		mutate    func(*Config)
		stored    *ExponentialState
		rec       *pb.MetricData
		asked     int
		wantCount uint64
	}{
		{"resumes", expo, &good, expoObs(10, 0), 1, 6},
		{"zero buckets at the ends are not kept", expo, mod(func(s *ExponentialState) { s.PositiveOffset, s.PositiveCounts = 2, []uint64{0, 2, 0, 1, 0, 0} }), expoObs(10, 0), 1, 6},
		{"counts that do not add up to the count", expo, mod(func(s *ExponentialState) { s.Count = 6 }), expoObs(10, 0), 1, 1},
		{"more buckets than histogram.max_size", expo, mod(func(s *ExponentialState) { s.PositiveCounts = []uint64{1, 0, 0, 0, 1}; s.Count = 4 }), expoObs(10, 0), 1, 1},
		{"a sum that is not finite", expo, mod(func(s *ExponentialState) { s.Sum = math.NaN() }), expoObs(10, 0), 1, 1},
		{"a scale go-expohisto has not", expo, mod(func(s *ExponentialState) { s.Scale = 21 }), expoObs(10, 0), 1, 1},
		{"delta temporality", func(c *Config) { expo(c); c.HistogramTemporality = TemporalityDelta }, &good, expoObs(10, 0), 0, 1},
		{"explicit buckets", nil, &good, expoObs(10, 0), 1, 1}, // (asked for its explicit buckets: none stored)
		{"a pre-aggregated histogram carries its own totals", expo, &good,
			&pb.MetricData{Name: "lat", Type: pb.MetricType_METRIC_TYPE_TIMER, Labels: map[string]string{"k": "v"}, Timestamp: at(10),
				Histogram: &pb.HistogramValue{Count: 1, Sum: 0, Exponential: &pb.ExponentialBuckets{ZeroCount: 1}}}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			st.series["e:lat|k=v|r.service.name=checkout"] = &storedSum{first: t0.UnixNano(), last: t0.Add(time.Second).UnixNano(), expo: tt.stored}
			a := newTestAccumulator(t, tt.mutate)
			a.SetResumer(st)
			m := onlyMetric(t, storeBatch(t, a, st, tt.rec))
			var count uint64
			if m.Type() == pmetric.MetricTypeHistogram {
				count = m.Histogram().DataPoints().At(0).Count()
			} else {
				count = m.ExponentialHistogram().DataPoints().At(0).Count()
			}
			assert.Equal(t, tt.wantCount, count)
			assert.Equal(t, tt.asked, st.asked)
		})
	}
}

// TestResumedSummaryAndExponentialPointsComeAfterTheStoredOne: a record
// older than the stored point counts at the next millisecond, and a
// series whose idle state was dropped resumes too.
func TestResumedSummaryAndExponentialPointsComeAfterTheStoredOne(t *testing.T) {
	expo := func(c *Config) { c.Histogram.Kind = HistogramExponential }
	st := newFakeStore()
	before := newTestAccumulator(t, expo)
	before.SetResumer(st)
	storeBatch(t, before, st, summaryObs(5, 1), expoObs(5, 1))

	after := newTestAccumulator(t, expo)
	after.SetClock(func() time.Time { return t0.Add(10 * time.Second) })
	after.SetResumer(st)
	md := storeBatch(t, after, st, summaryObs(3, 2), expoObs(3, 2))
	for _, m := range md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
		switch m.Type() {
		case pmetric.MetricTypeSummary:
			dp := m.Summary().DataPoints().At(0)
			assert.Equal(t, t0.UnixNano()+5*sec+msNanos, int64(dp.Timestamp()), "after the stored point")
			assert.Equal(t, t0.UnixNano()+5*sec-msNanos, int64(dp.StartTimestamp()))
			assert.Equal(t, uint64(2), dp.Count())
		case pmetric.MetricTypeExponentialHistogram:
			dp := m.ExponentialHistogram().DataPoints().At(0)
			assert.Equal(t, t0.UnixNano()+5*sec+msNanos, int64(dp.Timestamp()), "after the stored point")
			assert.Equal(t, t0.UnixNano()+5*sec-msNanos, int64(dp.StartTimestamp()))
			assert.Equal(t, uint64(2), dp.Count())
		default:
			t.Fatalf("unexpected metric %s", m.Name())
		}
	}

	// the idle state is dropped: the next record resumes from the store
	now := t0.Add(10 * time.Second)
	after.SetClock(func() time.Time { return now })
	now = now.Add(DefaultConfig().SeriesTTL + time.Minute)
	require.Equal(t, 2, after.Sweep())
	ts := int(DefaultConfig().SeriesTTL/time.Second) + 80
	md = storeBatch(t, after, st, summaryObs(ts, 3), expoObs(ts, 3))
	for _, m := range md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
		if m.Type() == pmetric.MetricTypeSummary {
			assert.Equal(t, uint64(3), m.Summary().DataPoints().At(0).Count())
			assert.Equal(t, 6.0, m.Summary().DataPoints().At(0).Sum())
		} else {
			assert.Equal(t, uint64(3), m.ExponentialHistogram().DataPoints().At(0).Count())
			assert.Equal(t, 6.0, m.ExponentialHistogram().DataPoints().At(0).Sum())
		}
	}
	assert.Equal(t, 6, st.asked, "once per series creation: before, after, after the sweep")
}
