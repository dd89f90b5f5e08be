package convert

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func manyAttrs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["a"+strconv.Itoa(i)] = "v"
	}
	return m
}

func TestRecordLimitsNameTheLimitAndItsKey(t *testing.T) {
	gauge := func(mut func(m *pb.MetricData)) *pb.MetricData {
		m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}
		mut(m)
		return m
	}
	hist := func(bounds int) *pb.MetricData {
		h := &pb.HistogramValue{ExplicitBounds: make([]float64, bounds), BucketCounts: make([]uint64, bounds+1)}
		for i := range h.ExplicitBounds {
			h.ExplicitBounds[i] = float64(i)
		}
		return &pb.MetricData{Name: "h", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Histogram: h}
	}
	tests := []struct {
		name     string
		metric   *pb.MetricData
		resource *pb.Resource
		field    string
		want     string
		key      string
	}{
		{name: "200000 explicit bounds", metric: hist(200_000), field: "metric.histogram.explicit_bounds",
			want: "histogram has 200001 buckets, the limit is 160", key: "limits.max_buckets"},
		{name: "exponential buckets", metric: &pb.MetricData{Name: "h", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM,
			Histogram: &pb.HistogramValue{Exponential: &pb.ExponentialBuckets{PositiveBucketCounts: make([]uint64, 100), NegativeBucketCounts: make([]uint64, 100)}}},
			field: "metric.histogram.exponential", want: "histogram has 200 buckets, the limit is 160", key: "limits.max_buckets"},
		{name: "100 KB unit", metric: gauge(func(m *pb.MetricData) { m.Unit = strings.Repeat("u", 100_000) }), field: "metric.unit",
			want: "unit is 100000 bytes, the limit is 64", key: "limits.max_unit_bytes"},
		{name: "unit suffix makes the name too long", metric: gauge(func(m *pb.MetricData) {
			m.Name = strings.Repeat("n", 240)
			m.Unit = "milliseconds_per_request"
		}), field: "metric.unit", want: "metric name with its unit suffix is", key: "limits.max_name_bytes"},
		{name: "long description", metric: gauge(func(m *pb.MetricData) { m.Description = strings.Repeat("d", 5000) }), field: "metric.description",
			want: "description is 5000 bytes, the limit is 4096", key: "limits.max_description_bytes"},
		{name: "long label name", metric: gauge(func(m *pb.MetricData) { m.Labels = map[string]string{strings.Repeat("k", 300): "v"} }),
			field: "metric.labels", want: "label name is 300 bytes, the limit is 256", key: "limits.max_label_name_bytes"},
		{name: "long label value", metric: gauge(func(m *pb.MetricData) { m.Labels = map[string]string{"k": strings.Repeat("v", 3000)} }),
			field: `metric.labels["k"]`, want: "value is 3000 bytes, the limit is 2048", key: "limits.max_label_value_bytes"},
		{name: "long name", metric: gauge(func(m *pb.MetricData) { m.Name = strings.Repeat("n", 300) }),
			field: "metric.name", want: "metric name is 300 bytes, the limit is 255", key: "limits.max_name_bytes"},
		{name: "1 MB service.name in the request", metric: gauge(func(*pb.MetricData) {}),
			resource: &pb.Resource{Attributes: map[string]string{"service.name": strings.Repeat("s", 1<<20)}},
			field:    `resource.attributes["service.name"]`, want: "value is 1048576 bytes, the limit is 2048", key: "limits.max_resource_attribute_bytes"},
		{name: "10000 resource attributes in the request", metric: gauge(func(*pb.MetricData) {}),
			resource: &pb.Resource{Attributes: manyAttrs(10_000)},
			field:    "resource.attributes", want: "resource has 10000 attributes, the limit is 64", key: "limits.max_resource_attributes"},
		{name: "resource attributes of a record", metric: gauge(func(m *pb.MetricData) { m.Resource = &pb.Resource{Attributes: manyAttrs(65)} }),
			field: "metric.resource.attributes", want: "resource has 65 attributes, the limit is 64", key: "limits.max_resource_attributes"},
		{name: "long resource attribute name of a record", metric: gauge(func(m *pb.MetricData) {
			m.Resource = &pb.Resource{Attributes: map[string]string{strings.Repeat("r", 3000): "v"}}
		}), field: "metric.resource.attributes", want: "resource attribute name is 3000 bytes", key: "limits.max_resource_attribute_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAccumulator(DefaultConfig(), scope)
			b := a.Prepare([]*pb.MetricData{tt.metric}, tt.resource, true)
			require.Len(t, b.Issues, 1)
			iss := b.Issues[0]
			assert.True(t, strings.HasPrefix(iss.Field, tt.field), "field %q", iss.Field)
			assert.Contains(t, iss.Message, tt.want)
			assert.Contains(t, iss.Message, tt.key, "the message names the config key")
			assert.Contains(t, iss.Suggestion, tt.key, "the fix names the config key")
		})
	}
}

func TestRecordsWithinTheLimitsAreAccepted(t *testing.T) {
	a := NewAccumulator(DefaultConfig(), scope)
	h := &pb.HistogramValue{ExplicitBounds: make([]float64, 159), BucketCounts: make([]uint64, 160)}
	for i := range h.ExplicitBounds {
		h.ExplicitBounds[i] = float64(i)
	}
	b := a.Prepare([]*pb.MetricData{
		{Name: "h", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Histogram: h},
		{Name: "http_request_duration", Type: pb.MetricType_METRIC_TYPE_GAUGE, Unit: "ms", Description: "d",
			Resource: &pb.Resource{Attributes: manyAttrs(64)}},
	}, &pb.Resource{Attributes: map[string]string{"service.name": strings.Repeat("s", 2048)}}, false)
	assert.Empty(t, b.Issues)
}

func TestLimitsConfigValidation(t *testing.T) {
	tests := []struct {
		mut  func(c *Config)
		want string
	}{
		{func(c *Config) { c.Limits.MaxBuckets = -1 }, "limits.max_buckets: must not be negative"},
		{func(c *Config) { c.Limits.MaxResourceAttributes = -1 }, "limits.max_resource_attributes: must not be negative"},
		{func(c *Config) { c.Limits.MaxUnitBytes = -1 }, "limits.max_unit_bytes: must not be negative"},
		{func(c *Config) {
			c.Limits.MaxBuckets = 4
			c.Histogram.Buckets = []float64{1, 2, 3, 4, 5}
		}, "histogram.buckets: 5 bounds make 6 buckets, over limits.max_buckets (4)"},
		{func(c *Config) {
			c.Histogram.Kind = HistogramExponential
			c.Histogram.MaxSize = 320
		}, "histogram.max_size: 320 is over limits.max_buckets (160)"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mut(&c)
		assert.ErrorContains(t, c.Validate(), tt.want)
	}
	def := DefaultConfig()
	require.NoError(t, def.Validate())
}

func TestGaugesCountTowardTheSeriesLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.MaxSeriesPerMetric = 3
	a := NewAccumulator(cfg, scope)
	now := time.Unix(1_700_000_000, 0)
	a.SetClock(func() time.Time { return now })
	gauge := func(v string) *pb.MetricData {
		return &pb.MetricData{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"room": v}}
	}
	apply := func(atomic bool, ms ...*pb.MetricData) (*Batch, error) {
		b := a.Prepare(ms, nil, false)
		require.Empty(t, b.Issues)
		_, err := a.Apply(b, atomic, func(pmetric.Metrics) error { return nil })
		return b, err
	}
	_, err := apply(true, gauge("a"), gauge("b"), gauge("c"), gauge("a"))
	require.NoError(t, err)

	_, err = apply(true, gauge("a"), gauge("d"))
	var iss *Issue
	require.ErrorAs(t, err, &iss)
	assert.Equal(t, KindResourceExhausted, iss.Kind)
	assert.Equal(t, "metrics[1].labels", iss.Field)
	assert.Contains(t, iss.Message, `gauge "temp" has reached its limit of 3 series (limits.max_series_per_metric)`)

	b, err := apply(false, gauge("b"), gauge("e"))
	require.NoError(t, err, "best effort keeps the known series")
	require.Len(t, b.Issues, 1)
	assert.Equal(t, 1, b.Issues[0].Index)

	// 200,000 series of one name: at most the limit are kept
	cfg.Limits.MaxSeriesPerMetric = 1000
	a = NewAccumulator(cfg, scope)
	a.SetClock(func() time.Time { return now })
	ms := make([]*pb.MetricData, 0, 200_000)
	for i := range 200_000 {
		ms = append(ms, gauge(strconv.Itoa(i)))
	}
	b = a.Prepare(ms, nil, false)
	out, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 1000, out.Accepted)
	assert.Len(t, b.Issues, 199_000)

	// forgotten after series_ttl
	now = now.Add(cfg.SeriesTTL + time.Minute)
	assert.Equal(t, 1000, a.Sweep())
	_, err = apply(true, gauge("new"))
	require.NoError(t, err)
}

func TestAGaugeCallRefusedDownstreamDoesNotKeepItsSeries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Limits.MaxSeriesPerMetric = 1
	a := NewAccumulator(cfg, scope)
	b := a.Prepare([]*pb.MetricData{{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"x": "1"}}}, nil, false)
	_, err := a.Apply(b, true, func(pmetric.Metrics) error { return errors.New("queue full") })
	require.Error(t, err)
	b = a.Prepare([]*pb.MetricData{{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"x": "2"}}}, nil, false)
	_, err = a.Apply(b, true, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err, "the refused call's series was forgotten")
}

func TestHistogramBucketsCountTowardTheSeriesLimit(t *testing.T) {
	cfg := DefaultConfig()
	w := len(cfg.Histogram.Buckets) + 1 + 2 // buckets, _sum, _count
	cfg.Limits.MaxSeriesPerMetric = 2 * w
	a := NewAccumulator(cfg, scope)
	now := time.Unix(1_700_000_000, 0)
	a.SetClock(func() time.Time { return now })
	hist := func(v string) *pb.MetricData {
		return &pb.MetricData{Name: "latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: 0.2, Labels: map[string]string{"route": v}}
	}
	b := a.Prepare([]*pb.MetricData{hist("a"), hist("b"), hist("c")}, nil, false)
	out, err := a.Apply(b, false, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 2, out.Accepted)
	require.Len(t, b.Issues, 1)
	assert.Contains(t, b.Issues[0].Message, "limits.max_series_per_metric")
	assert.Contains(t, b.Issues[0].Message, "would add "+strconv.Itoa(w)+" more")

	// a pre-aggregated histogram counts its own buckets
	pre := &pb.MetricData{Name: "sizes", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM,
		Histogram: &pb.HistogramValue{Count: 1, ExplicitBounds: []float64{1, 2}, BucketCounts: []uint64{1, 0, 0}}}
	assert.Equal(t, int64(5), a.storedSeries(pre))
	assert.Equal(t, int64(1), a.storedSeries(&pb.MetricData{Type: pb.MetricType_METRIC_TYPE_COUNTER}))

	// the weight is given back when the series expires
	now = now.Add(cfg.SeriesTTL + time.Minute)
	assert.Equal(t, 2, a.Sweep())
	b = a.Prepare([]*pb.MetricData{hist("c"), hist("d")}, nil, false)
	out, err = a.Apply(b, true, func(pmetric.Metrics) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 2, out.Accepted)
}
