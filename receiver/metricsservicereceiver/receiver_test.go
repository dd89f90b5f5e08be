package metricsservicereceiver

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// switchSink is a consumer that records what it accepts and refuses with
// err while err is set.
type switchSink struct {
	mu   sync.Mutex
	err  error
	got  []pmetric.Metrics
	seen int
}

func (s *switchSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *switchSink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen++
	if s.err != nil {
		return s.err
	}
	c := pmetric.NewMetrics()
	md.CopyTo(c)
	s.got = append(s.got, c)
	return nil
}

func (s *switchSink) refuse(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *switchSink) accepted() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pmetric.Metrics(nil), s.got...)
}

// sumValues returns name's sum data points by the label value of key.
func sumValues(mds []pmetric.Metrics, name, key string) map[string][]float64 {
	out := map[string][]float64{}
	for _, md := range mds {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					if m.Name() != name || m.Type() != pmetric.MetricTypeSum {
						continue
					}
					for d := 0; d < m.Sum().DataPoints().Len(); d++ {
						dp := m.Sum().DataPoints().At(d)
						v, _ := dp.Attributes().Get(key)
						out[v.Str()] = append(out[v.Str()], dp.DoubleValue())
					}
				}
			}
		}
	}
	return out
}

// startReceiver starts a receiver on a free port and returns a client.
func startReceiver(t *testing.T, next consumer.Metrics, mutate func(*Config)) pb.MetricsServiceClient {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	addr := r.addr()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewMetricsServiceClient(conn)
}

func specExample() *pb.RecordMetricRequest {
	return &pb.RecordMetricRequest{
		Metric: &pb.MetricData{
			Name:  "http_requests_total",
			Type:  pb.MetricType_METRIC_TYPE_COUNTER,
			Value: 1.0,
			Labels: map[string]string{
				"method": "GET",
				"path":   "/api/v1/users",
			},
		},
	}
}

func TestRecordMetricSpecExample(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	ctx := context.Background()
	for range 3 {
		resp, err := c.RecordMetric(ctx, specExample())
		require.NoError(t, err)
		assert.Len(t, resp.SeriesId, 16)
		assert.False(t, resp.Duplicate)
		assert.Equal(t, uint64(1), resp.Stats.DatapointsAccepted)
	}
	got := sumValues(sink.accepted(), "http_requests_total", "method")
	assert.Equal(t, []float64{1, 2, 3}, got["GET"], "increments accumulate into a cumulative sum")
}

func TestRecordBatchMetricsBestEffortReportsEachItem(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	resp, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "api"}},
		Options:  &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT, ReturnAllResults: true},
		Metrics: []*pb.MetricData{
			{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 2, Labels: map[string]string{"queue": "a"}},
			{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: -1, Labels: map[string]string{"queue": "b"}},
			{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 21.5},
		},
	})
	require.NoError(t, err)
	assert.Equal(t, uint32(2), resp.AcceptedCount)
	assert.Equal(t, uint32(1), resp.RejectedCount)
	require.Len(t, resp.Results, 3)
	assert.True(t, resp.Results[0].Accepted)
	assert.False(t, resp.Results[1].Accepted)
	assert.Equal(t, int32(codes.InvalidArgument), resp.Results[1].Code)
	assert.Equal(t, "metrics[1].value", resp.Results[1].Issues[0].Field)
	assert.Equal(t, "negative_counter_increment", resp.Results[1].Issues[0].Code)
	assert.True(t, resp.Results[2].Accepted)

	mds := sink.accepted()
	require.Len(t, mds, 1)
	assert.Equal(t, 2, mds[0].DataPointCount())
	svc, _ := mds[0].ResourceMetrics().At(0).Resource().Attributes().Get("service.name")
	assert.Equal(t, "api", svc.Str())
}

func TestRecordBatchMetricsAtomicRefusesWholeBatch(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	_, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
		Metrics: []*pb.MetricData{
			{Name: "ok_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1},
			{Name: "bad name", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1},
			{Name: "x", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: math.NaN()},
		},
	})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "metrics[1].name")
	assert.Contains(t, st.Message(), "1 more items refused")
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		if v, ok := d.(*errdetails.BadRequest); ok {
			br = v
		}
	}
	require.NotNil(t, br, "status carries BadRequest details")
	require.Len(t, br.FieldViolations, 2)
	assert.Equal(t, "metrics[2].value", br.FieldViolations[1].Field)
	assert.Equal(t, 0, sink.seen, "nothing from a refused atomic batch reaches the pipeline")
}

func TestBadInput(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, func(cfg *Config) {
		cfg.Limits.MaxLabels = 3
		cfg.Limits.MaxLabelValueBytes = 16
		cfg.Limits.MaxBatchSize = 5
	})
	counter := func(mut func(*pb.MetricData)) *pb.MetricData {
		m := &pb.MetricData{Name: "requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}
		mut(m)
		return m
	}
	tests := []struct {
		name      string
		metric    *pb.MetricData
		batch     []*pb.MetricData
		wantCode  codes.Code
		wantInMsg []string
	}{
		{name: "missing metric", metric: nil, wantInMsg: []string{"metric: the metric is not set"}},
		{name: "empty name", metric: counter(func(m *pb.MetricData) { m.Name = "" }), wantInMsg: []string{"metric.name", "empty"}},
		{name: "invalid name", metric: counter(func(m *pb.MetricData) { m.Name = "1xx-requests" }), wantInMsg: []string{"metric.name", `"1xx-requests" is invalid`}},
		{name: "name too long", metric: counter(func(m *pb.MetricData) { m.Name = strings.Repeat("a", 256) }), wantInMsg: []string{"metric.name", "256 bytes, the limit is 255"}},
		{name: "invalid label name", metric: counter(func(m *pb.MetricData) { m.Labels = map[string]string{"bad-label": "x"} }), wantInMsg: []string{`metric.labels["bad-label"]`, "invalid"}},
		{name: "reserved label name", metric: counter(func(m *pb.MetricData) { m.Labels = map[string]string{"__name__": "x"} }), wantInMsg: []string{`metric.labels["__name__"]`, "reserved"}},
		{name: "too many labels", metric: counter(func(m *pb.MetricData) {
			m.Labels = map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}
		}), wantInMsg: []string{"metric.labels", "4 labels, the limit is 3"}},
		{name: "label value too long", metric: counter(func(m *pb.MetricData) { m.Labels = map[string]string{"path": strings.Repeat("x", 17)} }), wantInMsg: []string{`metric.labels["path"]`, "17 bytes, the limit is 16"}},
		{name: "NaN counter", metric: counter(func(m *pb.MetricData) { m.Value = math.NaN() }), wantInMsg: []string{"metric.value", "not a finite number"}},
		{name: "Inf counter", metric: counter(func(m *pb.MetricData) { m.Value = math.Inf(1) }), wantInMsg: []string{"metric.value", "not a finite number"}},
		{name: "NaN gauge", metric: counter(func(m *pb.MetricData) { m.Name = "g"; m.Type = pb.MetricType_METRIC_TYPE_GAUGE; m.Value = math.NaN() }), wantInMsg: []string{"metric.value", "NaN"}},
		{name: "negative increment", metric: counter(func(m *pb.MetricData) { m.Value = -2 }), wantInMsg: []string{"metric.value", "increment -2 is negative"}},
		{name: "negative timer", metric: counter(func(m *pb.MetricData) { m.Name = "t"; m.Type = pb.MetricType_METRIC_TYPE_TIMER; m.Value = -0.1 }), wantInMsg: []string{"metric.value", "negative"}},
		{name: "NaN observation", metric: counter(func(m *pb.MetricData) {
			m.Name = "h"
			m.Type = pb.MetricType_METRIC_TYPE_HISTOGRAM
			m.Observations = []float64{1, math.NaN()}
		}), wantInMsg: []string{"metric.observations[1]"}},
		{name: "unspecified type", metric: counter(func(m *pb.MetricData) { m.Type = pb.MetricType_METRIC_TYPE_UNSPECIFIED }), wantInMsg: []string{"metric.type", "not set"}},
		{name: "unknown type", metric: counter(func(m *pb.MetricData) { m.Type = 42 }), wantInMsg: []string{"metric.type", "42 is unknown"}},
		{name: "timestamp in future", metric: counter(func(m *pb.MetricData) { m.Timestamp = timestamppb.New(time.Now().Add(time.Hour)) }), wantInMsg: []string{"metric.timestamp", "ahead of the server clock"}},
		{name: "bad sample rate", metric: counter(func(m *pb.MetricData) { m.SampleRate = 2 }), wantInMsg: []string{"metric.sample_rate"}},
		{name: "histogram bucket mismatch", metric: counter(func(m *pb.MetricData) {
			m.Name = "h2"
			m.Type = pb.MetricType_METRIC_TYPE_HISTOGRAM
			m.Histogram = &pb.HistogramValue{Count: 1, ExplicitBounds: []float64{1}, BucketCounts: []uint64{1}}
		}), wantInMsg: []string{"metric.histogram.bucket_counts", "one more count than bounds"}},
		{name: "summary bad quantile", metric: counter(func(m *pb.MetricData) {
			m.Name = "s"
			m.Type = pb.MetricType_METRIC_TYPE_SUMMARY
			m.Summary = &pb.SummaryValue{Quantiles: []*pb.Quantile{{Quantile: 1.5}}}
		}), wantInMsg: []string{"metric.summary.quantiles[0]"}},
		{name: "item index in batch", batch: []*pb.MetricData{
			counter(func(*pb.MetricData) {}), counter(func(*pb.MetricData) {}), counter(func(m *pb.MetricData) { m.Value = -1 }),
		}, wantInMsg: []string{"metrics[2].value"}},
		{name: "batch over max size", batch: make([]*pb.MetricData, 6), wantInMsg: []string{"batch has 6 items, the limit is 5"}},
		{name: "empty batch", batch: []*pb.MetricData{}, wantInMsg: []string{"batch is empty"}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.batch != nil {
				_, err = c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Metrics: tt.batch})
			} else {
				_, err = c.RecordMetric(ctx, &pb.RecordMetricRequest{Metric: tt.metric})
			}
			st := status.Convert(err)
			want := tt.wantCode
			if want == codes.OK {
				want = codes.InvalidArgument
			}
			require.Equal(t, want, st.Code(), st.Message())
			for _, s := range tt.wantInMsg {
				assert.Contains(t, st.Message(), s)
			}
			assert.Contains(t, st.Message(), "fix:", "every refusal suggests a fix")
		})
	}
	assert.Equal(t, 0, sink.seen, "no refused record reaches the pipeline")
}

func TestIdempotentRetry(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	ctx := context.Background()
	req := &pb.RecordBatchMetricsRequest{
		RequestId: "req-42",
		Metrics: []*pb.MetricData{
			{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"shop": "eu"}},
		},
	}
	first, err := c.RecordBatchMetrics(ctx, req)
	require.NoError(t, err)
	assert.False(t, first.Duplicate)
	second, err := c.RecordBatchMetrics(ctx, req)
	require.NoError(t, err)
	assert.True(t, second.Duplicate)
	assert.Equal(t, first.AcceptedCount, second.AcceptedCount)
	assert.Len(t, sink.accepted(), 1, "a retried request id reaches the pipeline once")

	req.RequestId = "req-43"
	_, err = c.RecordBatchMetrics(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, []float64{5, 10}, sumValues(sink.accepted(), "orders_total", "shop")["eu"])

	one := specExample()
	one.RequestId = "single-1"
	r1, err := c.RecordMetric(ctx, one)
	require.NoError(t, err)
	r2, err := c.RecordMetric(ctx, one)
	require.NoError(t, err)
	assert.True(t, r2.Duplicate)
	assert.Equal(t, r1.SeriesId, r2.SeriesId)
	assert.Len(t, sumValues(sink.accepted(), "http_requests_total", "method")["GET"], 1)
}

func TestRequestIDLongerThanTheLimitIsRefused(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	ctx := context.Background()
	metric := &pb.MetricData{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5}
	long := strings.Repeat("x", 129)
	tests := []struct {
		name string
		call func(id string) error
	}{
		{"RecordMetric", func(id string) error {
			_, err := c.RecordMetric(ctx, &pb.RecordMetricRequest{RequestId: id, Metric: metric})
			return err
		}},
		{"RecordBatchMetrics", func(id string) error {
			_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{RequestId: id, Metrics: []*pb.MetricData{metric}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(tt.call(long))
			require.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
			assert.Contains(t, st.Message(), "request_id: 129 bytes, the limit is 128")
			assert.Contains(t, st.Message(), "dedup.max_request_id_bytes")
			require.NoError(t, tt.call(strings.Repeat("y", 128)), "128 bytes is within the limit")
		})
	}
	assert.Len(t, sink.accepted(), 2, "refused requests do not reach the pipeline")
}

func TestDownstreamRefusalRollsBack(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	ctx := context.Background()
	req := func(id string) *pb.RecordBatchMetricsRequest {
		return &pb.RecordBatchMetricsRequest{RequestId: id, Metrics: []*pb.MetricData{
			{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 5, Labels: map[string]string{"shop": "eu"}},
			{Name: "latency", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Value: 0.2},
		}}
	}
	_, err := c.RecordBatchMetrics(ctx, req("a"))
	require.NoError(t, err)

	tests := []struct {
		err  error
		code codes.Code
	}{
		{err: errors.New("exporter queue is full"), code: codes.Unavailable},
		{err: consumererror.NewPermanent(errors.New("malformed")), code: codes.InvalidArgument},
		{err: errors.New("data refused due to high memory usage"), code: codes.ResourceExhausted},
	}
	for _, tt := range tests {
		sink.refuse(tt.err)
		_, err = c.RecordBatchMetrics(ctx, req("b"))
		assert.Equal(t, tt.code, status.Code(err), "refusal %q", tt.err)
	}
	sink.refuse(nil)
	// the same request id is retried: the failed attempts were not remembered
	resp, err := c.RecordBatchMetrics(ctx, req("b"))
	require.NoError(t, err)
	assert.False(t, resp.Duplicate)
	assert.Equal(t, []float64{5, 10}, sumValues(sink.accepted(), "orders_total", "shop")["eu"], "refused attempts left the counter unchanged")
}

func TestHealthService(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), &switchSink{})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "metricsmodule.v1.MetricsService"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.Status)
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, r.Shutdown(context.Background()), "shutdown is idempotent")
}

func TestShutdownWithoutStart(t *testing.T) {
	r, err := newReceiver(createDefaultConfig().(*Config), receivertest.NewNopSettings(metadata.Type), &switchSink{})
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
}
