package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/reads"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestGetMetricsPagesThroughTheStore walks GetMetrics pages of the store
// with a type filter: every page full, each series once, total_count the
// kept series; a bad token or field is INVALID_ARGUMENT naming the field.
func TestGetMetricsPagesThroughTheStore(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	recordSome(t, c)
	ctx := context.Background()

	req := &pb.GetMetricsRequest{PageSize: 2, Filter: &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER, pb.MetricType_METRIC_TYPE_GAUGE}}}
	var got []string
	for page := 0; ; page++ {
		resp, err := c.GetMetrics(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, int64(6), resp.TotalCount, "5 counters and 1 gauge")
		if resp.NextPageToken != "" {
			assert.Len(t, resp.Series, 2)
		}
		for _, s := range resp.Series {
			got = append(got, s.Name+s.Labels["path"])
		}
		if resp.NextPageToken == "" {
			break
		}
		require.Less(t, page, 3)
		req.PageToken = resp.NextPageToken
	}
	assert.Equal(t, []string{"http_requests_total/p0", "http_requests_total/p1", "http_requests_total/p2", "http_requests_total/p3", "http_requests_total/p4", "queue_depth"}, got)

	// the timer rule: a histogram in seconds is a TIMER
	_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{
		{Name: "rpc_latency", Unit: "s", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: []float64{0.1}},
	}})
	require.NoError(t, err)
	resp, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{LatestOnly: true, Filter: &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_TIMER}}})
	require.NoError(t, err)
	require.NotEmpty(t, resp.Series)
	for _, s := range resp.Series {
		assert.Contains(t, s.Name, "rpc_latency")
		assert.Len(t, s.Samples, 1, "latest_only")
	}

	for _, tc := range []struct {
		req   *pb.GetMetricsRequest
		field string
	}{
		{&pb.GetMetricsRequest{PageToken: "garbage!"}, "page_token: "},
		{&pb.GetMetricsRequest{PageToken: "djk6eA"}, "page_token: "},
		{&pb.GetMetricsRequest{PageSize: 10_001}, "page_size: "},
		{&pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"[z-a]"}}}, "filter.names[0]: "},
		{&pb.GetMetricsRequest{Aggregation: &pb.Aggregation{Function: pb.AggregationFunction(99)}}, "aggregation.function: "},
	} {
		_, err := c.GetMetrics(ctx, tc.req)
		st := status.Convert(err)
		assert.Equal(t, codes.InvalidArgument, st.Code(), "%v: %s", tc.req, st.Message())
		assert.Contains(t, st.Message(), tc.field)
	}
}

func TestReadsStatusMapsEveryKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{&reads.Error{Kind: reads.KindInvalid, Field: "page_size", Message: "x"}, codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", &reads.Error{Kind: reads.KindTooLarge, Field: "query.max_samples"}), codes.ResourceExhausted},
		{&query.Error{Kind: query.KindBadQuery, Err: errors.New("x")}, codes.InvalidArgument},
		{&query.Error{Kind: query.KindExecution, Err: errors.New("x")}, codes.InvalidArgument},
		{&query.Error{Kind: query.KindTimeout, Err: errors.New("x")}, codes.DeadlineExceeded},
		{&query.Error{Kind: query.KindCanceled, Err: errors.New("x")}, codes.Canceled},
		{&query.Error{Kind: query.KindTooLarge, Err: errors.New("x")}, codes.ResourceExhausted},
		{&query.Error{Kind: query.KindOverloaded, Err: errors.New("x")}, codes.ResourceExhausted},
		{&query.Error{Kind: query.KindUnavailable, Err: errors.New("x")}, codes.Unavailable},
		{&query.Error{Kind: query.KindInternal, Err: errors.New("x")}, codes.Internal},
		{errors.New("unexpected"), codes.Internal},
	} {
		assert.Equal(t, tc.want, status.Code(readsStatus(tc.err)), "%v", tc.err)
	}
}
