package convert

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	t0    = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	scope = Scope{Name: "test", Version: "v1"}
)

func newTestAccumulator(t *testing.T, mutate func(*Config)) *Accumulator {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	a := NewAccumulator(cfg, scope)
	a.SetClock(func() time.Time { return t0 })
	return a
}

func at(sec int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
}

// recordBatch runs one batch through the accumulator and returns what the consumer got.
func recordBatch(t *testing.T, a *Accumulator, res *pb.Resource, ms ...*pb.MetricData) pmetric.Metrics {
	t.Helper()
	b := a.Prepare(ms, res, false)
	require.Empty(t, b.Issues)
	var got pmetric.Metrics
	_, err := a.Apply(b, true, func(md pmetric.Metrics) error { got = md; return nil })
	require.NoError(t, err)
	return got
}

func checkGolden(t *testing.T, name string, got pmetric.Metrics) {
	t.Helper()
	path := filepath.Join("testdata", name+".yaml")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		require.NoError(t, golden.WriteMetricsToFile(path, got, golden.SkipMetricTimestampNormalization()))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, got,
		pmetrictest.IgnoreMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder(), pmetrictest.IgnoreResourceMetricsOrder()))
}

var svc = &pb.Resource{Attributes: map[string]string{"service.name": "checkout"}}

func TestConvertGolden(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		batches [][]*pb.MetricData
	}{
		{
			name: "counter_cumulative",
			batches: [][]*pb.MetricData{
				{
					{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"method": "GET", "path": "/api/v1/users"}, Timestamp: at(1)},
					{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Labels: map[string]string{"method": "GET", "path": "/api/v1/users"}, Timestamp: at(2)},
					{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"method": "POST", "path": "/api/v1/users"}, Timestamp: at(2)},
				},
				{
					{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 4, Labels: map[string]string{"method": "GET", "path": "/api/v1/users"}, Timestamp: at(10)},
				},
			},
		},
		{
			name:   "counter_delta",
			mutate: func(c *Config) { c.CounterTemporality = TemporalityDelta },
			batches: [][]*pb.MetricData{
				{{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 3, Timestamp: at(1)}},
				{{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Timestamp: at(5)}},
			},
		},
		{
			name: "counter_cumulative_input_with_reset",
			batches: [][]*pb.MetricData{
				{{Name: "bytes_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: 100, StartTime: at(-60), Timestamp: at(1)}},
				{{Name: "bytes_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Cumulative: true, Value: 20, Timestamp: at(5)}},
			},
		},
		{
			name: "counter_sampled",
			batches: [][]*pb.MetricData{
				{{Name: "sampled_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, SampleRate: 0.1, Timestamp: at(1)}},
			},
		},
		{
			name: "gauge",
			batches: [][]*pb.MetricData{
				{
					{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 7, Unit: "{item}", Description: "items waiting", Labels: map[string]string{"queue": "a"}, Timestamp: at(1)},
					{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: -3.5, Labels: map[string]string{"queue": "b"}, Timestamp: at(1)},
				},
			},
		},
		{
			name: "histogram_observations",
			batches: [][]*pb.MetricData{
				{
					{Name: "request_duration_seconds", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: 0.003, Timestamp: at(1)},
					{Name: "request_duration_seconds", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: []float64{0.2, 0.7, 30}, Timestamp: at(2)},
				},
			},
		},
		{
			name:   "histogram_exponential",
			mutate: func(c *Config) { c.Histogram.Kind = HistogramExponential },
			batches: [][]*pb.MetricData{
				{{Name: "payload_bytes", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: []float64{1, 2, 4, 1024}, Timestamp: at(1)}},
			},
		},
		{
			name: "histogram_preaggregated",
			batches: [][]*pb.MetricData{
				{{Name: "latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, StartTime: at(-10), Timestamp: at(1), Histogram: &pb.HistogramValue{
					Count: 6, Sum: 12.5, ExplicitBounds: []float64{1, 5}, BucketCounts: []uint64{1, 3, 2},
				}}},
			},
		},
		{
			name: "timer",
			batches: [][]*pb.MetricData{
				{{Name: "db_query", Type: pb.MetricType_METRIC_TYPE_TIMER, Value: 0.042, Labels: map[string]string{"db": "users"}, Timestamp: at(1)}},
				{{Name: "db_query", Type: pb.MetricType_METRIC_TYPE_TIMER, Value: 1.5, Labels: map[string]string{"db": "users"}, Timestamp: at(2)}},
			},
		},
		{
			name: "summary_observations",
			batches: [][]*pb.MetricData{
				{{Name: "response_size", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Observations: []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, Timestamp: at(1)}},
			},
		},
		{
			name: "summary_preaggregated",
			batches: [][]*pb.MetricData{
				{{Name: "rpc_latency", Type: pb.MetricType_METRIC_TYPE_SUMMARY, Timestamp: at(1), Summary: &pb.SummaryValue{
					Count: 4, Sum: 2, Quantiles: []*pb.Quantile{{Quantile: 0.5, Value: 0.4}, {Quantile: 0.99, Value: 0.9}},
				}}},
			},
		},
		{
			name: "resource_override",
			batches: [][]*pb.MetricData{
				{
					{Name: "up", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Timestamp: at(1)},
					{Name: "up", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Timestamp: at(1), Resource: &pb.Resource{Attributes: map[string]string{"service.name": "billing"}}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAccumulator(t, tt.mutate)
			all := pmetric.NewMetrics()
			for _, batch := range tt.batches {
				got := recordBatch(t, a, svc, batch...)
				got.ResourceMetrics().MoveAndAppendTo(all.ResourceMetrics())
			}
			checkGolden(t, tt.name, all)
		})
	}
}

func TestAtomicRollbackLeavesStateUnchanged(t *testing.T) {
	a := newTestAccumulator(t, nil)
	inc := func(v float64) *pb.MetricData {
		return &pb.MetricData{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Labels: map[string]string{"shop": "eu"}}
	}
	ok := a.Prepare([]*pb.MetricData{inc(5)}, svc, false)
	_, err := a.Apply(ok, true, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	key := ok.SeriesKey(0)
	total, found := a.CounterTotal(key)
	require.True(t, found)
	require.InDelta(t, 5.0, total, 0)

	refused := errors.New("downstream is full")
	b := a.Prepare([]*pb.MetricData{inc(3), {Name: "new_series_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}}, svc, false)
	_, err = a.Apply(b, true, func(pmetric.Metrics) error { return refused })
	require.ErrorIs(t, err, refused)
	total, _ = a.CounterTotal(key)
	assert.InDelta(t, 5.0, total, 0, "a refused batch must not change the running total")
	_, found = a.CounterTotal(b.SeriesKey(1))
	assert.False(t, found, "a refused batch must not create series")
	assert.Equal(t, 1, a.SeriesCount())

	// the retry after the refusal counts once
	var got pmetric.Metrics
	_, err = a.Apply(a.Prepare([]*pb.MetricData{inc(3)}, svc, false), true, func(md pmetric.Metrics) error { got = md; return nil })
	require.NoError(t, err)
	assert.InDelta(t, 8.0, got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).DoubleValue(), 0)
}

func TestHistogramRollback(t *testing.T) {
	a := newTestAccumulator(t, nil)
	obs := func(v float64) []*pb.MetricData {
		return []*pb.MetricData{{Name: "lat", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: v}}
	}
	_, err := a.Apply(a.Prepare(obs(0.1), nil, false), true, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	_, err = a.Apply(a.Prepare(obs(0.2), nil, false), true, func(pmetric.Metrics) error { return errors.New("no") })
	require.Error(t, err)
	var got pmetric.Metrics
	_, err = a.Apply(a.Prepare(obs(0.3), nil, false), true, func(md pmetric.Metrics) error { got = md; return nil })
	require.NoError(t, err)
	dp := got.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
	assert.Equal(t, uint64(2), dp.Count(), "the refused observation must not be counted")
	assert.InDelta(t, 0.4, dp.Sum(), 1e-9)
}

func TestConcurrentIncrementsAreExactAndMonotonic(t *testing.T) {
	a := newTestAccumulator(t, nil)
	a.SetClock(time.Now)
	const workers, perWorker = 8, 200
	var mu sync.Mutex
	var emitted []float64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				ms := []*pb.MetricData{{Name: "hits_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}}
				b := a.Prepare(ms, nil, false)
				fail := (w+i)%7 == 0
				_, err := a.Apply(b, true, func(md pmetric.Metrics) error {
					if fail {
						return errors.New("refused")
					}
					mu.Lock()
					emitted = append(emitted, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).DoubleValue())
					mu.Unlock()
					return nil
				})
				assert.Equal(t, fail, err != nil)
			}
		})
	}
	wg.Wait()
	for i := 1; i < len(emitted); i++ {
		require.Greater(t, emitted[i], emitted[i-1], "accepted totals must strictly increase in acceptance order")
	}
	assert.InDelta(t, float64(len(emitted)), emitted[len(emitted)-1], 0, "final total must equal the accepted increments")
}

func TestSeriesLimit(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.Limits.MaxSeriesPerMetric = 2 })
	mk := func(user string) *pb.MetricData {
		return &pb.MetricData{Name: "logins_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Labels: map[string]string{"user": user}}
	}
	_, err := a.Apply(a.Prepare([]*pb.MetricData{mk("a"), mk("b")}, nil, false), true, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)

	// atomic: the third series refuses the batch
	_, err = a.Apply(a.Prepare([]*pb.MetricData{mk("a"), mk("c")}, nil, false), true, func(pmetric.Metrics) error { return nil })
	var iss *Issue
	require.ErrorAs(t, err, &iss)
	assert.Equal(t, KindResourceExhausted, iss.Kind)
	assert.Equal(t, "metrics[1].labels", iss.Field)
	assert.Equal(t, 1, iss.Index)

	// best effort: the known series is applied, the new one reported
	b := a.Prepare([]*pb.MetricData{mk("a"), mk("c")}, nil, false)
	out, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 1, out.Accepted)
	require.Len(t, b.Issues, 1)
	assert.Equal(t, 1, b.Issues[0].Index)

	// expiry frees room
	a.SetClock(func() time.Time { return t0.Add(2 * time.Hour) })
	assert.Equal(t, 2, a.Sweep())
	_, err = a.Apply(a.Prepare([]*pb.MetricData{mk("c")}, nil, false), true, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
}

func TestTypeConflict(t *testing.T) {
	a := newTestAccumulator(t, nil)
	recordBatch(t, a, nil, &pb.MetricData{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1})
	b := a.Prepare([]*pb.MetricData{{Name: "temp", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}}, nil, true)
	require.Len(t, b.Issues, 1)
	assert.Equal(t, "type_conflict", b.Issues[0].Code)
	assert.Equal(t, "metric.type", b.Issues[0].Field)
}

func TestParallelPrepareMatchesSequential(t *testing.T) {
	a := newTestAccumulator(t, nil)
	ms := make([]*pb.MetricData, 3000)
	for i := range ms {
		ms[i] = &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: float64(i), Labels: map[string]string{"i": string(rune('a' + i%26))}}
	}
	ms[2500].Name = "bad name"
	b := a.Prepare(ms, svc, false)
	require.Len(t, b.Issues, 1)
	assert.Equal(t, 2500, b.Issues[0].Index)
	assert.Equal(t, "metrics[2500].name", b.Issues[0].Field)
	h := hasherPool.Get().(*hasher)
	defer hasherPool.Put(h)
	rk := h.resourceKey(svc.Attributes)
	for i := range ms {
		if i == 2500 {
			continue
		}
		require.Equal(t, h.seriesKey(rk, ms[i]), b.SeriesKey(i))
	}
}

func TestOneSamplePerSeriesPerMillisecond(t *testing.T) {
	a := newTestAccumulator(t, nil)
	ts := func(md pmetric.Metrics) int64 {
		return int64(md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Timestamp())
	}
	inc := &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1, Timestamp: at(0)}
	first := recordBatch(t, a, nil, inc)
	second := recordBatch(t, a, nil, inc)
	assert.Equal(t, ts(first)+int64(time.Millisecond), ts(second), "a second update in the same millisecond moves to the next one")

	// never more than a second ahead of the receive time
	for range 1100 {
		recordBatch(t, a, nil, inc)
	}
	last := ts(recordBatch(t, a, nil, inc))
	assert.LessOrEqual(t, last, t0.UnixNano()+int64(time.Second))
}
