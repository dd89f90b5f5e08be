package metricsservicereceiver

import (
	"context"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// TestBatchGivesOnePointPerTimestamp: three increments of one series at
// three timestamps are three data points, the running totals at their times.
func TestBatchGivesOnePointPerTimestamp(t *testing.T) {
	sink := &switchSink{}
	c := startReceiver(t, sink, nil)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at := func(s int) *timestamppb.Timestamp { return timestamppb.New(base.Add(time.Duration(s) * time.Second)) }
	inc := func(v float64, s int) *pb.MetricData {
		return &pb.MetricData{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: v, Labels: map[string]string{"queue": "a"}, Timestamp: at(s)}
	}
	resp, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
		Metrics: []*pb.MetricData{
			inc(4, 4), inc(1, 1), inc(2, 2),
			{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 20, Timestamp: at(1)},
			{Name: "temp", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 21, Timestamp: at(1)},
		},
	})
	require.NoError(t, err)
	assert.Equal(t, uint32(5), resp.AcceptedCount)
	assert.Equal(t, uint64(4), resp.Stats.DatapointsAccepted, "3 counter points and 1 gauge point")

	mds := sink.accepted()
	require.Len(t, mds, 1)
	assert.Equal(t, []float64{1, 3, 7}, sumValues(mds, "jobs_total", "queue")["a"])
	ms := mds[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		switch m.Name() {
		case "jobs_total":
			for j, s := range []int{1, 2, 4} {
				assert.Equal(t, at(s).AsTime().UnixNano(), int64(m.Sum().DataPoints().At(j).Timestamp()))
			}
		case "temp":
			require.Equal(t, 1, m.Gauge().DataPoints().Len())
			assert.InDelta(t, 21.0, m.Gauge().DataPoints().At(0).DoubleValue(), 0, "the later item at one timestamp wins")
		}
	}
}

// TestInvalidUTF8IsRefused calls the service directly: a protobuf client
// cannot send invalid UTF-8, but the server's codec does not check it.
func TestInvalidUTF8IsRefused(t *testing.T) {
	sink := &switchSink{}
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	svc := &metricsService{r: r}
	ok := func() *pb.MetricData {
		return &pb.MetricData{Name: "up", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"host": "a"}}
	}
	violation := func(t *testing.T, err error) (*status.Status, *errdetails.BadRequest_FieldViolation) {
		t.Helper()
		st := status.Convert(err)
		require.Equal(t, codes.InvalidArgument, st.Code())
		assert.True(t, utf8.ValidString(st.Message()))
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				return st, br.FieldViolations[0]
			}
		}
		t.Fatal("no BadRequest details")
		return nil, nil
	}

	t.Run("label value, atomic", func(t *testing.T) {
		bad := ok()
		bad.Labels["host"] = "a\xffb"
		_, err := svc.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{ok(), bad}})
		st, fv := violation(t, err)
		assert.Equal(t, `metrics[1].labels["host"]`, fv.Field)
		assert.Equal(t, "invalid_utf8", fv.Reason)
		assert.Contains(t, st.Message(), "send valid UTF-8")
	})
	t.Run("request resource, best effort", func(t *testing.T) {
		resp, err := svc.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
			Resource: &pb.Resource{Attributes: map[string]string{"service.name": "\xc3"}},
			Options:  &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT},
			Metrics:  []*pb.MetricData{ok(), ok()},
		})
		require.NoError(t, err)
		assert.Equal(t, uint32(0), resp.AcceptedCount)
		assert.Equal(t, uint32(2), resp.RejectedCount)
		require.Len(t, resp.Results, 2)
		assert.Equal(t, `resource.attributes["service.name"]`, resp.Results[0].Issues[0].Field)
	})
	t.Run("description, single", func(t *testing.T) {
		bad := ok()
		bad.Description = "\xff"
		_, err := svc.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: bad})
		_, fv := violation(t, err)
		assert.Equal(t, "metric.description", fv.Field)
	})
	assert.Equal(t, 0, sink.seen, "nothing with invalid UTF-8 reaches the pipeline")
}
