package metricsservicereceiver

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestHostileQueriesAreRefusedBeforeEvaluation(t *testing.T) {
	c, base := startWithStore(t, t.TempDir())
	recordSome(t, c)
	ctx := context.Background()

	start := time.Now()
	_, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `sum_over_time(vector(1)[30d:1ms])`})
	st := status.Convert(err)
	assert.Equal(t, codes.ResourceExhausted, st.Code())
	assert.Contains(t, st.Message(), "query.max_subquery_steps")
	assert.Contains(t, st.Message(), "is 2592000000, the limit is 1000000")
	assert.Contains(t, st.Message(), "use a subquery step of at least 3s")

	_, err = c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `count_over_time(vector(1)[6h:1ms])`,
		Start: timestamppb.New(time.Now().Add(-time.Hour)), End: timestamppb.Now(), Step: durationpb.New(15 * time.Second)})
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))

	code, body := getJSON(t, base+"/api/v1/query?timeout=2s&query="+url.QueryEscape(`count_over_time(vector(1)[6h:1ms])`))
	assert.Equal(t, 422, code)
	assert.Equal(t, "execution", body["errorType"])
	assert.Contains(t, body["error"], "query.max_subquery_steps")
	assert.Less(t, time.Since(start), 10*time.Second, "refused before evaluation")

	// a normal query still answers, with its queue time
	resp, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `max_over_time(sum(http_requests_total)[1h:1m])`})
	require.NoError(t, err)
	assert.NotNil(t, resp.Stats.QueueTime)
}

func TestQueryArgumentsAreStrict(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	recordSome(t, c)
	far := timestamppb.New(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	now := timestamppb.Now()
	hourAgo := timestamppb.New(time.Now().Add(-time.Hour))
	tests := []struct {
		name string
		req  *pb.QueryMetricsRequest
		want string
	}{
		{"instant at 9999-12-31", &pb.QueryMetricsRequest{Query: `vector(1)`, Time: far}, "time: 9999-12-31T00:00:00Z is outside the range a query can be evaluated at, [1677-09-21T00:12:43Z, 2262-04-11T23:47:16Z]"},
		{"range end at 9999-12-31", &pb.QueryMetricsRequest{Query: `vector(1)`, Start: hourAgo, End: far}, "end: 9999-12-31T00:00:00Z is outside"},
		{"invalid timestamp", &pb.QueryMetricsRequest{Query: `vector(1)`, Time: &timestamppb.Timestamp{Seconds: 1 << 62}}, "time: "},
		{"negative step", &pb.QueryMetricsRequest{Query: `vector(1)`, Start: hourAgo, End: now, Step: durationpb.New(-time.Minute)}, "step: -1m0s must be positive"},
		{"zero step", &pb.QueryMetricsRequest{Query: `vector(1)`, Start: hourAgo, End: now, Step: durationpb.New(0)}, "step: 0s must be positive"},
		{"negative timeout", &pb.QueryMetricsRequest{Query: `vector(1)`, Limits: &pb.QueryLimits{Timeout: durationpb.New(-time.Second)}}, "limits.timeout: -1s must be positive"},
		{"negative max samples", &pb.QueryMetricsRequest{Query: `vector(1)`, Limits: &pb.QueryLimits{MaxSamples: -1}}, "limits.max_samples: -1 is negative"},
		{"negative max series lifts nothing", &pb.QueryMetricsRequest{Query: `vector(1)`, Limits: &pb.QueryLimits{MaxSeries: -1}}, "limits.max_series: -1 is negative"},
		{"too many steps", &pb.QueryMetricsRequest{Query: `vector(1)`, Start: timestamppb.New(time.Now().Add(-24 * time.Hour)), End: now, Step: durationpb.New(time.Second)}, "query.max_range_steps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.QueryMetrics(context.Background(), tt.req)
			st := status.Convert(err)
			assert.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
			assert.Contains(t, st.Message(), tt.want)
		})
	}

	getTests := []struct {
		name string
		req  *pb.GetMetricsRequest
		want string
	}{
		{"end at 9999-12-31", &pb.GetMetricsRequest{TimeRange: &pb.TimeRange{End: far}}, "time_range.end: 9999-12-31T00:00:00Z is outside"},
		{"longer than a Go duration", &pb.GetMetricsRequest{TimeRange: &pb.TimeRange{
			Start: timestamppb.New(time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)), End: timestamppb.New(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),
		}}, "time_range: 1700-01-01T00:00:00Z to 2200-01-01T00:00:00Z is longer than"},
		{"negative page size", &pb.GetMetricsRequest{PageSize: -1}, "page_size: -1 is outside [1, 10000]"},
		{"negative aggregation step", &pb.GetMetricsRequest{Aggregation: &pb.Aggregation{Function: pb.AggregationFunction_AGGREGATION_FUNCTION_SUM, Step: durationpb.New(-time.Second)}}, "aggregation.step: -1s must be positive"},
		{"negative rate range", &pb.GetMetricsRequest{Aggregation: &pb.Aggregation{Function: pb.AggregationFunction_AGGREGATION_FUNCTION_RATE, Range: durationpb.New(-time.Second)}}, "aggregation.range: -1s must be positive"},
	}
	for _, tt := range getTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GetMetrics(context.Background(), tt.req)
			st := status.Convert(err)
			assert.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
			assert.Contains(t, st.Message(), tt.want)
		})
	}

	// the last representable day answers with its own timestamp, not 1816
	last := time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)
	resp, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: `vector(1)`, Time: timestamppb.New(last)})
	require.NoError(t, err)
	require.Len(t, resp.Series, 1)
	assert.Equal(t, last, resp.Series[0].Samples[0].Timestamp.AsTime())
}
