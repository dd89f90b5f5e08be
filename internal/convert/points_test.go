package convert

import (
	"errors"
	"iter"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// atNs is t0 plus ns nanoseconds.
func atNs(ns int64) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(ns)))
}

// applyOne runs one atomic batch and returns the outcome and what the
// consumer got.
func applyOne(t *testing.T, a *Accumulator, ms ...*pb.MetricData) (Outcome, pmetric.Metrics) {
	t.Helper()
	b := a.Prepare(ms, svc, false)
	require.Empty(t, b.Issues)
	var got pmetric.Metrics
	out, err := a.Apply(b, true, func(md pmetric.Metrics) error { got = md; return nil })
	require.NoError(t, err)
	return out, got
}

type tsValue struct {
	ts    int64 // ns after t0
	start int64 // ns after t0
	v     float64
}

// sumPoints returns the points of the only metric of md, a sum, relative to t0.
func sumPoints(t *testing.T, md pmetric.Metrics) []tsValue {
	t.Helper()
	require.Equal(t, 1, md.MetricCount())
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
	var out []tsValue
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		out = append(out, tsValue{ts: int64(dp.Timestamp()) - t0.UnixNano(), start: int64(dp.StartTimestamp()) - t0.UnixNano(), v: dp.DoubleValue()})
	}
	return out
}

func gaugeValues(t *testing.T, md pmetric.Metrics) []tsValue {
	t.Helper()
	require.Equal(t, 1, md.MetricCount())
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	var out []tsValue
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		out = append(out, tsValue{ts: int64(dp.Timestamp()) - t0.UnixNano(), v: dp.DoubleValue()})
	}
	return out
}

const sec = int64(time.Second)

// TestManyPointsPerSeriesGolden: N records of one series at distinct
// timestamps, out of order in the request, give N points at their own
// timestamps, each holding the state up to it.
func TestManyPointsPerSeriesGolden(t *testing.T) {
	hist := func(sec int, obs ...float64) *pb.MetricData {
		return &pb.MetricData{Name: "req_seconds", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: obs, Labels: map[string]string{"route": "/a"}, Timestamp: at(sec)}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		batch  []*pb.MetricData
	}{
		{
			name: "points_counter",
			batch: []*pb.MetricData{
				{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 4, Timestamp: at(4)},
				{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Timestamp: at(1)},
				{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Timestamp: at(2)},
			},
		},
		{
			name:   "points_counter_delta",
			mutate: func(c *Config) { c.CounterTemporality = TemporalityDelta },
			batch: []*pb.MetricData{
				{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 4, Timestamp: at(4)},
				{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Timestamp: at(1)},
				{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Timestamp: at(2)},
			},
		},
		{
			name: "points_counter_sampled",
			batch: []*pb.MetricData{
				{Name: "hits_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, SampleRate: 0.5, Timestamp: at(2)},
				{Name: "hits_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, SampleRate: 0.1, Timestamp: at(1)},
			},
		},
		{
			// 10 at 1s, a reset to 5 at 2s (new start: the point at 1s), 30 at 3s
			name: "points_counter_cumulative_input",
			batch: []*pb.MetricData{
				{Name: "bytes_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: 30, Timestamp: at(3)},
				{Name: "bytes_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: 10, StartTime: at(-60), Timestamp: at(1)},
				{Name: "bytes_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: 5, Timestamp: at(2)},
			},
		},
		{
			name: "points_gauge",
			batch: []*pb.MetricData{
				{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 3, Timestamp: at(3)},
				{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Timestamp: at(1)},
				{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 2, Timestamp: at(2)},
			},
		},
		{
			name:  "points_histogram",
			batch: []*pb.MetricData{hist(3, 7), hist(1, 0.003, 0.2), hist(2, 0.7)},
		},
		{
			name:   "points_histogram_delta",
			mutate: func(c *Config) { c.HistogramTemporality = TemporalityDelta },
			batch:  []*pb.MetricData{hist(3, 7), hist(1, 0.003, 0.2), hist(2, 0.7)},
		},
		{
			name:   "points_histogram_exponential",
			mutate: func(c *Config) { c.Histogram.Kind = HistogramExponential },
			batch:  []*pb.MetricData{hist(3, 1024), hist(1, 1, 2), hist(2, 4)},
		},
		{
			name: "points_timer",
			batch: []*pb.MetricData{
				{Name: "db_query", Type: pb.MetricType_METRIC_TYPE_TIMER, Value: 1.5, Timestamp: at(2)},
				{Name: "db_query", Type: pb.MetricType_METRIC_TYPE_TIMER, Value: 0.042, Timestamp: at(1)},
			},
		},
		{
			name: "points_summary",
			batch: []*pb.MetricData{
				{Name: "response_size", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: []float64{60, 70, 80, 90, 100}, Timestamp: at(2)},
				{Name: "response_size", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: []float64{10, 20, 30, 40, 50}, Timestamp: at(1)},
			},
		},
		{
			name: "points_histogram_preaggregated",
			batch: []*pb.MetricData{
				{Name: "latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, StartTime: at(-10), Timestamp: at(2), Histogram: &pb.HistogramValue{
					Count: 9, Sum: 20, ExplicitBounds: []float64{1, 5}, BucketCounts: []uint64{2, 4, 3},
				}},
				{Name: "latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, StartTime: at(-10), Timestamp: at(1), Histogram: &pb.HistogramValue{
					Count: 6, Sum: 12.5, ExplicitBounds: []float64{1, 5}, BucketCounts: []uint64{1, 3, 2},
				}},
			},
		},
		{
			name: "points_summary_preaggregated",
			batch: []*pb.MetricData{
				{Name: "rpc_latency", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Timestamp: at(2), Summary: &pb.SummaryValue{
					Count: 8, Sum: 5, Quantiles: []*pb.Quantile{{Quantile: 0.5, Value: 0.5}, {Quantile: 0.99, Value: 1.2}},
				}},
				{Name: "rpc_latency", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Timestamp: at(1), Summary: &pb.SummaryValue{
					Count: 4, Sum: 2, Quantiles: []*pb.Quantile{{Quantile: 0.5, Value: 0.4}, {Quantile: 0.99, Value: 0.9}},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAccumulator(t, tt.mutate)
			a.SetClock(func() time.Time { return t0.Add(10 * time.Second) })
			out, got := applyOne(t, a, tt.batch...)
			assert.Equal(t, len(tt.batch), out.Accepted)
			assert.Equal(t, len(tt.batch), out.DataPoints, "one point per distinct timestamp")
			assert.Equal(t, len(tt.batch), got.DataPointCount())
			checkGolden(t, tt.name, got)
			assertPointsInTimeOrder(t, got)
		})
	}
}

// assertPointsInTimeOrder checks that the points of each series come in
// strictly increasing milliseconds.
func assertPointsInTimeOrder(t *testing.T, md pmetric.Metrics) {
	t.Helper()
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		var ts []int64
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			for j := 0; j < m.Gauge().DataPoints().Len(); j++ {
				ts = append(ts, int64(m.Gauge().DataPoints().At(j).Timestamp()))
			}
		case pmetric.MetricTypeSum:
			for j := 0; j < m.Sum().DataPoints().Len(); j++ {
				ts = append(ts, int64(m.Sum().DataPoints().At(j).Timestamp()))
			}
		case pmetric.MetricTypeHistogram:
			for j := 0; j < m.Histogram().DataPoints().Len(); j++ {
				ts = append(ts, int64(m.Histogram().DataPoints().At(j).Timestamp()))
			}
		case pmetric.MetricTypeExponentialHistogram:
			for j := 0; j < m.ExponentialHistogram().DataPoints().Len(); j++ {
				ts = append(ts, int64(m.ExponentialHistogram().DataPoints().At(j).Timestamp()))
			}
		case pmetric.MetricTypeSummary:
			for j := 0; j < m.Summary().DataPoints().Len(); j++ {
				ts = append(ts, int64(m.Summary().DataPoints().At(j).Timestamp()))
			}
		}
		for j := 1; j < len(ts); j++ {
			assert.Greater(t, ts[j]/msNanos, ts[j-1]/msNanos, "points of %s in time order", m.Name())
		}
	}
}

// TestCounterPointsAreRunningTotals is the issue's example: three increments
// of one series at 1s, 2s and 4s are three points, 1, 3 and 7.
func TestCounterPointsAreRunningTotals(t *testing.T) {
	a := newTestAccumulator(t, nil)
	inc := func(v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Timestamp: at(s)}
	}
	out, got := applyOne(t, a, inc(1, 1), inc(2, 2), inc(4, 4))
	assert.Equal(t, Outcome{Accepted: 3, DataPoints: 3, SeriesCreated: 1}, out)
	start := 1*sec - msNanos
	assert.Equal(t, []tsValue{{1 * sec, start, 1}, {2 * sec, start, 3}, {4 * sec, start, 7}}, sumPoints(t, got))

	// the next request goes on from the committed state
	out, got = applyOne(t, a, inc(1, 5))
	assert.Equal(t, 1, out.DataPoints)
	assert.Equal(t, []tsValue{{5 * sec, start, 8}}, sumPoints(t, got))
}

func TestDeltaCounterPointsChainStartTimes(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.CounterTemporality = TemporalityDelta })
	inc := func(v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Timestamp: at(s)}
	}
	_, got := applyOne(t, a, inc(2, 2), inc(1, 1), inc(4, 4), inc(3, 2))
	assert.Equal(t, []tsValue{{1 * sec, 1*sec - msNanos, 1}, {2 * sec, 1 * sec, 5}, {4 * sec, 2 * sec, 4}}, sumPoints(t, got))
	_, got = applyOne(t, a, inc(1, 6))
	assert.Equal(t, []tsValue{{6 * sec, 4 * sec, 1}}, sumPoints(t, got))
}

func TestSameTimestamp(t *testing.T) {
	gauge := func(v float64, ns int64) *pb.MetricData {
		return &pb.MetricData{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: v, Timestamp: atNs(ns)}
	}
	inc := func(v float64, ns int64) *pb.MetricData {
		return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Timestamp: atNs(ns)}
	}
	tests := []struct {
		name  string
		batch []*pb.MetricData
		want  []tsValue
		sum   bool
	}{
		{"gauge same timestamp: the later item wins", []*pb.MetricData{gauge(1, sec), gauge(2, sec), gauge(3, sec)}, []tsValue{{ts: sec, v: 3}}, false},
		{"gauge same millisecond: the later timestamp wins", []*pb.MetricData{gauge(5, sec+900_000), gauge(6, sec+100)}, []tsValue{{ts: sec + 900_000, v: 5}}, false},
		{"gauge points in time order, duplicates dropped", []*pb.MetricData{gauge(3, 3*sec), gauge(1, sec), gauge(4, 3*sec), gauge(2, 2*sec)},
			[]tsValue{{ts: sec, v: 1}, {ts: 2 * sec, v: 2}, {ts: 3 * sec, v: 4}}, false},
		{"counter same timestamp: one point with both", []*pb.MetricData{inc(1, sec), inc(2, sec)}, []tsValue{{sec, sec - msNanos, 3}}, true},
		{"counter same millisecond: one point at the later timestamp", []*pb.MetricData{inc(1, sec+500_000), inc(2, sec+100_000), inc(4, 2*sec)},
			[]tsValue{{sec + 500_000, sec + 100_000 - msNanos, 3}, {2 * sec, sec + 100_000 - msNanos, 7}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAccumulator(t, nil)
			a.SetClock(func() time.Time { return t0.Add(10 * time.Second) })
			out, got := applyOne(t, a, tt.batch...)
			assert.Equal(t, len(tt.batch), out.Accepted)
			assert.Equal(t, len(tt.want), out.DataPoints)
			if tt.sum {
				assert.Equal(t, tt.want, sumPoints(t, got))
			} else {
				assert.Equal(t, tt.want, gaugeValues(t, got))
			}
		})
	}
}

// TestOldRecordsMoveAfterTheLastPoint: records older than the series' last
// committed point count just after it; later ones keep their time.
func TestOldRecordsMoveAfterTheLastPoint(t *testing.T) {
	a := newTestAccumulator(t, nil)
	a.SetClock(func() time.Time { return t0.Add(20 * time.Second) })
	inc := func(v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Timestamp: at(s)}
	}
	applyOne(t, a, inc(1, 10))
	out, got := applyOne(t, a, inc(2, 12), inc(4, 5), inc(8, 6), inc(16, 10))
	assert.Equal(t, 2, out.DataPoints)
	start := 10*sec - msNanos
	assert.Equal(t, []tsValue{{10*sec + msNanos, start, 29}, {12 * sec, start, 31}}, sumPoints(t, got))

	// records moved to the last point's time and records at that time make
	// one point, in the next millisecond
	out, got = applyOne(t, a, inc(1, 1), inc(1, 12), inc(1, 12))
	assert.Equal(t, 1, out.DataPoints)
	assert.Equal(t, []tsValue{{12*sec + msNanos, start, 34}}, sumPoints(t, got))
}

// TestBumpedPointsStayInOrder: points of one request whose milliseconds the
// bump rule moves onto each other take the next free millisecond.
func TestBumpedPointsStayInOrder(t *testing.T) {
	a := newTestAccumulator(t, nil)
	inc := func(v float64, ns int64) *pb.MetricData {
		return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Timestamp: atNs(ns)}
	}
	applyOne(t, a, inc(1, 0))
	// 0 repeats the last millisecond (moves to 1ms); 1ms then takes 2ms
	_, got := applyOne(t, a, inc(1, 0), inc(1, msNanos))
	start := -msNanos
	assert.Equal(t, []tsValue{{msNanos, start, 2}, {2 * msNanos, start, 3}}, sumPoints(t, got))

	// at most maxStep ahead of the receive time (t0): the 997 next updates
	// reach 999ms, then 999ms moves to 1s and 1s has no room of its own: it
	// merges into the point at 1s
	for range 997 {
		applyOne(t, a, inc(1, 0))
	}
	out, got := applyOne(t, a, inc(1, 999*msNanos), inc(1, sec))
	assert.Equal(t, 1, out.DataPoints)
	assert.Equal(t, []tsValue{{sec, start, 1002}}, sumPoints(t, got))
	// across requests the point stays in the last millisecond (the store
	// keeps the earlier value until the next update)
	_, got = applyOne(t, a, inc(1, 0))
	assert.Equal(t, []tsValue{{sec, start, 1003}}, sumPoints(t, got))
}

func TestManyPointsRollback(t *testing.T) {
	a := newTestAccumulator(t, nil)
	obs := func(v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "lat", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: v, Timestamp: at(s)}
	}
	inc := func(s int) *pb.MetricData {
		return &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Timestamp: at(s)}
	}
	applyOne(t, a, obs(0.1, 1), inc(1))
	b := a.Prepare([]*pb.MetricData{obs(0.2, 2), obs(0.3, 3), inc(2), inc(3)}, svc, false)
	_, err := a.Apply(b, true, func(pmetric.Metrics) error { return errors.New("no") })
	require.Error(t, err)
	out, got := applyOne(t, a, obs(0.4, 4), obs(0.5, 5), inc(4))
	assert.Equal(t, 3, out.DataPoints)
	var h pmetric.HistogramDataPointSlice
	ms := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		if ms.At(i).Name() == "lat" {
			h = ms.At(i).Histogram().DataPoints()
		} else {
			assert.InDelta(t, 2.0, ms.At(i).Sum().DataPoints().At(0).DoubleValue(), 0)
		}
	}
	require.Equal(t, 2, h.Len())
	assert.Equal(t, uint64(2), h.At(0).Count())
	assert.InDelta(t, 0.5, h.At(0).Sum(), 1e-9)
	assert.Equal(t, uint64(3), h.At(1).Count())
	assert.InDelta(t, 1.0, h.At(1).Sum(), 1e-9)
}

// TestManyPointsCountOneSeries: the records of one new series count once
// against the series limit.
func TestManyPointsCountOneSeries(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.Limits.MaxSeriesPerMetric = 1 })
	inc := func(user string, s int) *pb.MetricData {
		return &pb.MetricData{Name: "logins_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"user": user}, Timestamp: at(s)}
	}
	b := a.Prepare([]*pb.MetricData{inc("a", 1), inc("b", 1), inc("a", 2), inc("b", 2), inc("a", 3)}, svc, false)
	out, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, Outcome{Accepted: 3, DataPoints: 3, SeriesCreated: 1}, out)
	require.Len(t, b.Issues, 2)
	assert.Equal(t, []int{1, 3}, []int{b.Issues[0].Index, b.Issues[1].Index})
	assert.Equal(t, 1, a.SeriesCount())
}

func TestInvalidUTF8(t *testing.T) {
	const bad = "ok\xffno"
	base := func() *pb.MetricData {
		return &pb.MetricData{Name: "x", Type: pb.MetricType_METRIC_TYPE_GAUGE, Labels: map[string]string{"host": "a"}}
	}
	tests := []struct {
		name   string
		mutate func(m *pb.MetricData)
		res    *pb.Resource
		field  string
	}{
		{"metric name", func(m *pb.MetricData) { m.Name = bad }, nil, `metrics[1].name`},
		{"unit", func(m *pb.MetricData) { m.Unit = bad }, nil, `metrics[1].unit`},
		{"description", func(m *pb.MetricData) { m.Description = bad }, nil, `metrics[1].description`},
		{"label value", func(m *pb.MetricData) { m.Labels["host"] = bad }, nil, `metrics[1].labels["host"]`},
		{"label name", func(m *pb.MetricData) { m.Labels[bad] = "a" }, nil, `metrics[1].labels["ok\xffno"]`},
		{"resource attribute value", func(m *pb.MetricData) {
			m.Resource = &pb.Resource{Attributes: map[string]string{"service.name": bad, "zone": "eu"}}
		}, nil, `metrics[1].resource.attributes["service.name"]`},
		{"resource attribute name", func(m *pb.MetricData) {
			m.Resource = &pb.Resource{Attributes: map[string]string{"zone": bad, bad: "eu"}}
		}, nil, `metrics[1].resource.attributes["ok\xffno"]`},
		{"request resource attribute value", nil, &pb.Resource{Attributes: map[string]string{"k": bad}}, `resource.attributes["k"]`},
		{"request resource attribute name", nil, &pb.Resource{Attributes: map[string]string{bad: "v"}}, `resource.attributes["ok\xffno"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAccumulator(t, nil)
			ms := []*pb.MetricData{base(), base()}
			if tt.mutate != nil {
				tt.mutate(ms[1])
			}
			b := a.Prepare(ms, tt.res, false)
			refused := 1
			if tt.res != nil {
				refused = 2 // the request's resource labels every item
			}
			require.Len(t, b.Issues, refused)
			iss := b.Issues[refused-1]
			assert.Equal(t, 1, iss.Index)
			assert.Equal(t, tt.field, iss.Field)
			assert.Equal(t, "invalid_utf8", iss.Code)
			assert.Equal(t, KindInvalid, iss.Kind)
			assert.Contains(t, iss.Suggestion, "send valid UTF-8")
			if refused == 2 {
				assert.Equal(t, 0, b.Issues[0].Index)
				assert.Equal(t, tt.field, b.Issues[0].Field)
			}
			for _, s := range []string{iss.Field, iss.Message, iss.Suggestion} {
				assert.True(t, utf8.ValidString(s), "the refusal itself must be valid UTF-8: %q", s)
			}
			// best effort applies nothing the bad string would reach the store with
			out, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
			require.NoError(t, err)
			assert.Equal(t, 2-refused, out.Accepted)
		})
	}
	t.Run("single", func(t *testing.T) {
		a := newTestAccumulator(t, nil)
		m := base()
		m.Description = bad
		b := a.Prepare([]*pb.MetricData{m}, nil, true)
		require.Len(t, b.Issues, 1)
		assert.Equal(t, "metric.description", b.Issues[0].Field)
		b = a.Prepare([]*pb.MetricData{base()}, &pb.Resource{Attributes: map[string]string{"k": bad}}, true)
		require.Len(t, b.Issues, 1)
		assert.Equal(t, `resource.attributes["k"]`, b.Issues[0].Field)
	})
}

// fakeAdmitter refuses records older than cutoff and the name "taken".
type fakeAdmitter struct {
	cutoff int64
	seen   map[string]int64
}

func (f *fakeAdmitter) Admit(m *pb.MetricData, _ iter.Seq[string], ts int64) *Issue {
	f.seen[m.Name] = ts
	if m.Name == "taken" {
		return &Issue{Field: ".name", Code: "name_collision", Kind: KindInvalid, Message: "taken", Suggestion: "rename"}
	}
	if ts < f.cutoff {
		return &Issue{Field: ".timestamp", Code: "too_old", Kind: KindInvalid, Message: "old", Suggestion: "newer"}
	}
	return nil
}

func TestAdmitter(t *testing.T) {
	a := newTestAccumulator(t, nil)
	ad := &fakeAdmitter{cutoff: t0.Add(-time.Hour).UnixNano(), seen: map[string]int64{}}
	a.SetAdmitter(ad)
	ms := []*pb.MetricData{
		{Name: "fresh", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1},
		{Name: "old", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Timestamp: at(-7200)},
		{Name: "taken", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Timestamp: at(0)},
		{Name: "bad name", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1},
	}
	b := a.Prepare(ms, svc, false)
	require.Len(t, b.Issues, 3)
	assert.Equal(t, "metrics[1].timestamp", b.Issues[0].Field)
	assert.Equal(t, "too_old", b.Issues[0].Code)
	assert.Equal(t, "metrics[2].name", b.Issues[1].Field)
	assert.Equal(t, "name_collision", b.Issues[1].Code)
	assert.Equal(t, "invalid_metric_name", b.Issues[2].Code)
	assert.Equal(t, map[string]int64{"fresh": t0.UnixNano(), "old": t0.Add(-2 * time.Hour).UnixNano(), "taken": t0.UnixNano()}, ad.seen,
		"called once per valid record with the resolved timestamp (the receive time when unset)")

	// best effort: the admitted item goes through
	out, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 1, out.Accepted)
	_, known := a.Names()["taken"]
	assert.False(t, known, "a refused record does not take a metric name")

	// single: the path starts with "metric"
	b = a.Prepare([]*pb.MetricData{ms[1]}, nil, true)
	require.Len(t, b.Issues, 1)
	assert.Equal(t, "metric.timestamp", b.Issues[0].Field)
}

func TestPdataKind(t *testing.T) {
	a := newTestAccumulator(t, nil)
	d := newTestAccumulator(t, func(c *Config) {
		c.CounterTemporality, c.HistogramTemporality, c.Histogram.Kind = TemporalityDelta, TemporalityDelta, HistogramExponential
	})
	cum, delta, none := pmetric.AggregationTemporalityCumulative, pmetric.AggregationTemporalityDelta, pmetric.AggregationTemporalityUnspecified
	tests := []struct {
		acc  *Accumulator
		in   pb.MetricType
		typ  pmetric.MetricType
		temp pmetric.AggregationTemporality
		mono bool
	}{
		{a, pb.MetricType_METRIC_TYPE_COUNTER, pmetric.MetricTypeSum, cum, true},
		{a, pb.MetricType_METRIC_TYPE_GAUGE, pmetric.MetricTypeGauge, none, false},
		{a, pb.MetricType_METRIC_TYPE_HISTOGRAM, pmetric.MetricTypeHistogram, cum, false},
		{a, pb.MetricType_METRIC_TYPE_TIMER, pmetric.MetricTypeHistogram, cum, false},
		{a, pb.MetricType_METRIC_TYPE_SUMMARY, pmetric.MetricTypeSummary, none, false},
		{a, pb.MetricType_METRIC_TYPE_UNSPECIFIED, pmetric.MetricTypeEmpty, none, false},
		{d, pb.MetricType_METRIC_TYPE_COUNTER, pmetric.MetricTypeSum, delta, true},
		{d, pb.MetricType_METRIC_TYPE_HISTOGRAM, pmetric.MetricTypeExponentialHistogram, delta, false},
		{d, pb.MetricType_METRIC_TYPE_TIMER, pmetric.MetricTypeExponentialHistogram, delta, false},
	}
	for _, tt := range tests {
		typ, temp, mono := tt.acc.PdataKind(tt.in)
		assert.Equal(t, tt.typ, typ, tt.in.String())
		assert.Equal(t, tt.temp, temp, tt.in.String())
		assert.Equal(t, tt.mono, mono, tt.in.String())
		// it agrees with what the accumulator emits
		if tt.in == pb.MetricType_METRIC_TYPE_UNSPECIFIED {
			continue
		}
		_, got := applyOne(t, tt.acc, &pb.MetricData{Name: "k_" + typeName(tt.in), Type: tt.in, Value: 1})
		m := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
		assert.Equal(t, tt.typ, m.Type(), tt.in.String())
		switch m.Type() {
		case pmetric.MetricTypeSum:
			assert.Equal(t, tt.temp, m.Sum().AggregationTemporality())
			assert.Equal(t, tt.mono, m.Sum().IsMonotonic())
		case pmetric.MetricTypeHistogram:
			assert.Equal(t, tt.temp, m.Histogram().AggregationTemporality())
		case pmetric.MetricTypeExponentialHistogram:
			assert.Equal(t, tt.temp, m.ExponentialHistogram().AggregationTemporality())
		}
	}
}

// TestExponentialHistogramSecondRequest: the cumulative state of an
// exponential histogram is copied on its next update (this used to never
// return: the copy had a size of 0).
func TestExponentialHistogramSecondRequest(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.Histogram.Kind = HistogramExponential })
	obs := func(v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: v, Timestamp: at(s)}
	}
	applyOne(t, a, obs(1, 1))
	_, got := applyOne(t, a, obs(8, 2))
	dp := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).ExponentialHistogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), dp.Count())
	assert.InDelta(t, 9.0, dp.Sum(), 0)
}

// TestIssuesStayInIndexOrder: a refusal of Apply (series limit) before a
// refusal of Prepare (validation) in the batch keeps Issues in index order.
func TestIssuesStayInIndexOrder(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.Limits.MaxSeriesPerMetric = 1 })
	mk := func(user string) *pb.MetricData {
		return &pb.MetricData{Name: "logins_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"user": user}}
	}
	bad := mk("c")
	bad.Value = -1
	b := a.Prepare([]*pb.MetricData{mk("a"), mk("b"), bad}, nil, false)
	require.Len(t, b.Issues, 1)
	_, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	require.Len(t, b.Issues, 2)
	assert.Equal(t, []int{1, 2}, []int{b.Issues[0].Index, b.Issues[1].Index})
}

// TestGaugeSeriesAmongOthers: a gauge series with several records among
// other series and a refused item.
func TestGaugeSeriesAmongOthers(t *testing.T) {
	a := newTestAccumulator(t, nil)
	g := func(host string, v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "load", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: v, Labels: map[string]string{"host": host}, Timestamp: at(s)}
	}
	bad := g("c", 1, 1)
	bad.Name = "bad name"
	b := a.Prepare([]*pb.MetricData{g("a", 1, 2), g("b", 2, 1), g("a", 3, 1), bad, g("a", 4, 1), g("b", 5, 3)}, svc, false)
	require.Len(t, b.Issues, 1)
	var got pmetric.Metrics
	out, err := a.Apply(b, false, func(md pmetric.Metrics) error { got = md; return nil })
	require.NoError(t, err)
	assert.Equal(t, Outcome{Accepted: 5, DataPoints: 4}, out)
	dps := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	type pt struct {
		host string
		ts   int64
		v    float64
	}
	var pts []pt
	for i := 0; i < dps.Len(); i++ {
		h, _ := dps.At(i).Attributes().Get("host")
		pts = append(pts, pt{h.Str(), int64(dps.At(i).Timestamp()) - t0.UnixNano(), dps.At(i).DoubleValue()})
	}
	assert.Equal(t, []pt{{"a", sec, 4}, {"a", 2 * sec, 1}, {"b", sec, 2}, {"b", 3 * sec, 5}}, pts)
}
