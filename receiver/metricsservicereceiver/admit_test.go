package metricsservicereceiver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestPointsTheStoreWouldNotKeepAreRefusedPerItem: OK means kept. A point
// outside the store's window, or a name or label that would merge with a
// different one after Prometheus translation, is refused naming the field
// and the fix, in both batch modes, and never acknowledged.
func TestPointsTheStoreWouldNotKeepAreRefusedPerItem(t *testing.T) {
	r := startStoreReceiver(t, t.TempDir())
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	ctx := context.Background()
	now := time.Now()
	gauge := func(name string, at time.Time, labels map[string]string) *pb.MetricData {
		return &pb.MetricData{Name: name, Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Timestamp: timestamppb.New(at), Labels: labels}
	}
	// newer data first: the out-of-order window (1h) counts back from it
	_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{
		gauge("coll_ide", now, nil),
		{Name: "collx", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1},
		gauge("lbl", now, map[string]string{"a_b": "one"}),
	}})
	require.NoError(t, err)

	tests := []struct {
		name  string
		item  *pb.MetricData
		code  codes.Code
		field string
		text  string
	}{
		{"two hours late", gauge("late", now.Add(-2*time.Hour), nil), codes.OutOfRange, ".timestamp", "store.out_of_order_window"},
		{"20 days ago", gauge("late", now.Add(-20*24*time.Hour), nil), codes.OutOfRange, ".timestamp", "outside the window"},
		{"year 1", gauge("late", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), nil), codes.InvalidArgument, ".timestamp", ""},
		{"an hour ahead", gauge("early", now.Add(time.Hour), nil), codes.InvalidArgument, ".timestamp", "ahead of the server clock"},
		{"name merges after translation", gauge("coll.ide", now, nil), codes.InvalidArgument, ".name", "coll_ide"},
		{"gauge named like a counter's family", gauge("collx_total", now, nil), codes.InvalidArgument, ".name", "collx"},
		{"labels merge after translation", gauge("lbl", now, map[string]string{"a.b": "two", "a_b": "one"}), codes.InvalidArgument, `.labels["a.b"]`, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// atomic: the whole batch is refused, with the item's field
			_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{gauge("fine", time.Now(), nil), tt.item}})
			st := status.Convert(err)
			require.NotEqual(t, codes.OK, st.Code())
			assert.True(t, strings.HasPrefix(st.Message(), "metrics[1]"+tt.field) || tt.field == `.labels["a.b"]` && strings.HasPrefix(st.Message(), `metrics[1].labels["a_b"]`), st.Message())
			assert.Contains(t, st.Message(), "fix:")
			if tt.text != "" {
				assert.Contains(t, st.Message(), tt.text)
			}
			// best effort: the good item is kept, the bad one refused per item
			resp, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{
				Metrics: []*pb.MetricData{gauge("fine", time.Now().Add(time.Millisecond), nil), tt.item},
				Options: &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT},
			})
			require.NoError(t, err)
			assert.EqualValues(t, 1, resp.AcceptedCount)
			assert.EqualValues(t, 1, resp.GetStats().GetDatapointsAccepted())
			require.Len(t, resp.Results, 1)
			assert.EqualValues(t, 1, resp.Results[0].Index)
			if tt.field == `.labels["a.b"]` {
				// either key of the pair may be the one named (map order); the message names both
				assert.Contains(t, []string{`metrics[1].labels["a.b"]`, `metrics[1].labels["a_b"]`}, resp.Results[0].Issues[0].Field)
			} else {
				assert.Equal(t, "metrics[1]"+tt.field, resp.Results[0].Issues[0].Field)
			}
			if tt.code != codes.InvalidArgument {
				assert.EqualValues(t, tt.code, resp.Results[0].Code)
			}
		})
	}
}
