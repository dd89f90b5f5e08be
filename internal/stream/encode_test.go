package stream

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var (
	t0 = time.Unix(1_700_000_000, 123_456_789).UTC()
	t1 = t0.Add(90 * time.Second)
)

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// allTypes returns one resource with a data point of every pipeline type.
func allTypes() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()

	m := sm.Metrics().AppendEmpty()
	m.SetName("http_requests_total")
	m.SetDescription("Requests.")
	m.SetUnit("1")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(t0))
	dp.SetTimestamp(ts(t1))
	dp.SetDoubleValue(42)
	dp.Attributes().PutStr("method", "GET")
	dp.Attributes().PutStr("path", "/api/v1/users")

	m = sm.Metrics().AppendEmpty()
	m.SetName("jobs_total")
	sum = m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp = sum.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(t0))
	dp.SetTimestamp(ts(t1))
	dp.SetIntValue(3)

	m = sm.Metrics().AppendEmpty()
	m.SetName("temperature")
	g := m.SetEmptyGauge()
	dp = g.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(t1))
	dp.SetDoubleValue(-21.5)
	dp.Attributes().PutInt("floor", 3)
	dp = g.DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(t1))
	dp.SetDoubleValue(0)

	m = sm.Metrics().AppendEmpty()
	m.SetName("latency")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hdp := h.DataPoints().AppendEmpty()
	hdp.SetStartTimestamp(ts(t0))
	hdp.SetTimestamp(ts(t1))
	hdp.SetCount(6)
	hdp.SetSum(1.5)
	hdp.SetMin(0)
	hdp.SetMax(0.9)
	hdp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
	hdp.BucketCounts().FromRaw([]uint64{1, 0, 5, 0})
	hdp.Attributes().PutStr("route", "/")

	m = sm.Metrics().AppendEmpty()
	m.SetName("size")
	e := m.SetEmptyExponentialHistogram()
	e.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	edp := e.DataPoints().AppendEmpty()
	edp.SetStartTimestamp(ts(t0))
	edp.SetTimestamp(ts(t1))
	edp.SetCount(7)
	edp.SetSum(-3)
	edp.SetScale(-2)
	edp.SetZeroCount(1)
	edp.SetZeroThreshold(1e-9)
	edp.Positive().SetOffset(-3)
	edp.Positive().BucketCounts().FromRaw([]uint64{2, 0, 1})
	edp.Negative().SetOffset(4)
	edp.Negative().BucketCounts().FromRaw([]uint64{3})
	edp.SetMin(-40)
	edp.SetMax(2)

	m = sm.Metrics().AppendEmpty()
	m.SetName("rpc_duration")
	s := m.SetEmptySummary()
	sdp := s.DataPoints().AppendEmpty()
	sdp.SetStartTimestamp(ts(t0))
	sdp.SetTimestamp(ts(t1))
	sdp.SetCount(10)
	sdp.SetSum(2.5)
	for _, q := range [][2]float64{{0, 0.01}, {0.5, 0.2}, {1, 0}} {
		qv := sdp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q[0])
		qv.SetValue(q[1])
	}

	// a second resource without attributes
	rm = md.ResourceMetrics().AppendEmpty()
	m = rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("up")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1)
	return md
}

func f64(v float64) *float64 { return &v }

func expectedAllTypes() []*pb.MetricData {
	res := &pb.Resource{Attributes: map[string]string{"service.name": "checkout"}}
	return []*pb.MetricData{
		{
			Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 42, Unit: "1", Description: "Requests.",
			Labels:    map[string]string{"method": "GET", "path": "/api/v1/users"},
			Timestamp: timestamppb.New(t1), StartTime: timestamppb.New(t0), Cumulative: true, Resource: res,
		},
		{
			Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 3,
			Timestamp: timestamppb.New(t1), StartTime: timestamppb.New(t0), Resource: res,
		},
		{
			Name: "temperature", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: -21.5, Labels: map[string]string{"floor": "3"},
			Timestamp: timestamppb.New(t1), Resource: res,
		},
		{
			Name: "temperature", Type: pb.MetricType_METRIC_TYPE_GAUGE, Timestamp: timestamppb.New(t1), Resource: res,
		},
		{
			Name: "latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Unit: "s", Labels: map[string]string{"route": "/"},
			Timestamp: timestamppb.New(t1), StartTime: timestamppb.New(t0), Resource: res,
			Histogram: &pb.HistogramValue{
				Count: 6, Sum: 1.5, ExplicitBounds: []float64{0.1, 0.5, 1}, BucketCounts: []uint64{1, 0, 5, 0},
				Min: f64(0), Max: f64(0.9),
			},
		},
		{
			Name: "size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM,
			Timestamp: timestamppb.New(t1), StartTime: timestamppb.New(t0), Resource: res,
			Histogram: &pb.HistogramValue{
				Count: 7, Sum: -3, Min: f64(-40), Max: f64(2),
				Exponential: &pb.ExponentialBuckets{
					Scale: -2, ZeroCount: 1, ZeroThreshold: 1e-9,
					PositiveOffset: -3, PositiveBucketCounts: []uint64{2, 0, 1},
					NegativeOffset: 4, NegativeBucketCounts: []uint64{3},
				},
			},
		},
		{
			Name: "rpc_duration", Type: pb.MetricType_METRIC_TYPE_SUMMARY,
			Timestamp: timestamppb.New(t1), StartTime: timestamppb.New(t0), Resource: res,
			Summary: &pb.SummaryValue{Count: 10, Sum: 2.5, Quantiles: []*pb.Quantile{
				{Quantile: 0, Value: 0.01}, {Quantile: 0.5, Value: 0.2}, {Quantile: 1, Value: 0},
			}},
		},
		{Name: "up", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1},
	}
}

// TestEncodeMatchesGeneratedDecoder checks the hand-written encoding of
// every pipeline type against the generated decoder.
func TestEncodeMatchesGeneratedDecoder(t *testing.T) {
	h := newTestHub(t, nil)
	_, err := h.Subscribe(&pb.StreamMetricsRequest{})
	require.NoError(t, err)
	st := h.Stage(allTypes())
	require.NotNil(t, st)
	require.Len(t, st.per, 1)
	want := expectedAllTypes()
	require.Len(t, st.per[0], len(want))
	for i, item := range st.per[0] {
		got := &pb.MetricData{}
		require.NoError(t, got.UnmarshalVT(item))
		assert.True(t, proto.Equal(want[i], got), "item %d:\nwant %v\n got %v", i, want[i], got)
		// the generated encoder of what we decoded has the same size: no
		// stray or duplicated fields
		assert.Equal(t, got.SizeVT(), len(item), "item %d", i)
	}
	st.Rollback()
}

func TestBatchMessageEncoding(t *testing.T) {
	items := [][]byte{}
	for _, m := range expectedAllTypes() {
		b, err := m.MarshalVT()
		require.NoError(t, err)
		items = append(items, b)
	}
	created := time.Unix(1_700_000_100, 5)
	b := newBatch(300, created, items)
	raw, err := batchMessage{b: b}.MarshalVT()
	require.NoError(t, err)
	resp := &pb.StreamMetricsResponse{}
	require.NoError(t, resp.UnmarshalVT(raw))
	got := resp.GetBatch()
	require.NotNil(t, got)
	assert.Equal(t, uint64(300), got.Sequence)
	assert.Equal(t, created.UnixNano(), got.CreatedAt.AsTime().UnixNano())
	require.Len(t, got.Metrics, len(items))
	for i, m := range expectedAllTypes() {
		assert.True(t, proto.Equal(m, got.Metrics[i]))
	}
	assert.Equal(t, resp.SizeVT(), len(raw))

	// the same bytes through the stored-body path
	body := b.appendBody(nil)
	assert.Equal(t, b.size, len(body))
	raw2, err := encodedMessage{body: body}.MarshalVT()
	require.NoError(t, err)
	assert.Equal(t, raw, raw2)

	// a wrongly sized buffer is an error, not corrupt output
	_, err = batchMessage{b: b}.MarshalToSizedBufferVT(make([]byte, len(raw)-1))
	require.Error(t, err)
}

func TestUnixNanosBeforeEpoch(t *testing.T) {
	ns := int64(-1_500_000_000)        // -1.5s
	raw := appendUnixNanos(nil, 1, ns) // Sample.timestamp is field 1
	s := &pb.Sample{}
	require.NoError(t, s.UnmarshalVT(raw))
	assert.Equal(t, ns, s.Timestamp.AsTime().UnixNano())
	require.NoError(t, s.Timestamp.CheckValid())
}
