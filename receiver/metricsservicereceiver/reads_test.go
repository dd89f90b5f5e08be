package metricsservicereceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// startWithStore starts a receiver with the store and the Prometheus API.
func startWithStore(t *testing.T, dir string) (pb.MetricsServiceClient, string) {
	t.Helper()
	r := startStoreReceiver(t, dir)
	return dialReceiver(t, r), "http://" + r.httpLn.Addr().String()
}

// dialReceiver returns a client of r's gRPC server.
func dialReceiver(t *testing.T, r *metricsReceiver) pb.MetricsServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewMetricsServiceClient(conn)
}

// startStoreReceiver starts a receiver with a metrics_store pipeline over dir
// and the Prometheus API.
func startStoreReceiver(t *testing.T, dir string) *metricsReceiver {
	t.Helper()
	return startStoreReceiverTo(t, dir, &switchSink{})
}

// startStoreReceiverTo is startStoreReceiver whose store hands the data on
// to sink.
func startStoreReceiverTo(t *testing.T, dir string, sink consumer.Metrics) *metricsReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	hc := confighttp.NewDefaultServerConfig()
	hc.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.PrometheusAPI = configoptional.Some(hc)
	require.NoError(t, cfg.Validate())
	next, host := storePipeline(t, dir, nil, sink)
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

func recordSome(t *testing.T, c pb.MetricsServiceClient) {
	t.Helper()
	var ms []*pb.MetricData
	for i := range 5 {
		ms = append(ms, &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: float64(i + 1),
			Labels: map[string]string{"path": fmt.Sprintf("/p%d", i), "method": "GET"}})
	}
	ms = append(ms,
		&pb.MetricData{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 7, Labels: map[string]string{"queue": "mail"}},
		&pb.MetricData{Name: "db_latency_seconds", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Observations: []float64{0.02, 0.3}},
	)
	_, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "users-api"}},
		Metrics:  ms,
	})
	require.NoError(t, err)
}

func TestQueryMetrics(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	recordSome(t, c)
	ctx := context.Background()

	resp, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `sum(http_requests_total)`})
	require.NoError(t, err)
	assert.Equal(t, pb.QueryResultType_QUERY_RESULT_TYPE_VECTOR, resp.ResultType)
	require.Len(t, resp.Series, 1)
	assert.InDelta(t, 15.0, resp.Series[0].Samples[0].Value, 0)
	assert.Positive(t, resp.Stats.SamplesRead)

	resp, err = c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `http_requests_total{path="/p2"}`,
		Start: timestamppb.New(time.Now().Add(-time.Minute)), End: timestamppb.Now(), Step: durationpb.New(10 * time.Second)})
	require.NoError(t, err)
	assert.Equal(t, pb.QueryResultType_QUERY_RESULT_TYPE_MATRIX, resp.ResultType)
	require.Len(t, resp.Series, 1)
	assert.Equal(t, "http_requests_total", resp.Series[0].Name)
	assert.Equal(t, "users-api", resp.Series[0].Labels["job"])
	assert.Equal(t, pb.MetricType_METRIC_TYPE_COUNTER, resp.Series[0].Type)

	_, err = c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `sum(rate(http_requests_total[5m])`})
	st := status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "1:34")

	_, err = c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `http_requests_total`, Limits: &pb.QueryLimits{MaxSeries: 2}})
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))

	_, err = c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `count_over_time(http_requests_total[1h:10ms])`, Limits: &pb.QueryLimits{Timeout: durationpb.New(time.Microsecond)}})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))

	_, err = c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `http_requests_total[1h]`, Limits: &pb.QueryLimits{MaxSamples: 1}})
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
}

func TestGetMetrics(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	recordSome(t, c)
	ctx := context.Background()

	// glob filter, pagination with a stable token, total count
	var got []string
	req := &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"http_*"}}, PageSize: 2}
	for page := 0; ; page++ {
		resp, err := c.GetMetrics(ctx, req)
		require.NoError(t, err)
		assert.Equal(t, int64(5), resp.TotalCount)
		for _, s := range resp.Series {
			got = append(got, s.Labels["path"])
			assert.Equal(t, pb.MetricType_METRIC_TYPE_COUNTER, s.Type)
			assert.NotEmpty(t, s.Samples)
		}
		if resp.NextPageToken == "" {
			break
		}
		require.Less(t, page, 3)
		req.PageToken = resp.NextPageToken
	}
	assert.Equal(t, []string{"/p0", "/p1", "/p2", "/p3", "/p4"}, got)

	// label matchers and regex
	resp, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{NameRegex: "http_.*", LabelMatchers: []*pb.LabelMatcher{
		{Name: "path", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "/p[12]"},
	}}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), resp.TotalCount)

	// type filter
	resp, err = c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_GAUGE}}, LatestOnly: true})
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.TotalCount)
	assert.Equal(t, "queue_depth", resp.Series[0].Name)
	assert.InDelta(t, 7.0, resp.Series[0].Samples[0].Value, 0)

	// aggregation compiles to PromQL
	resp, err = c.GetMetrics(ctx, &pb.GetMetricsRequest{
		Filter:      &pb.MetricFilter{Names: []string{"http_requests_total"}},
		Aggregation: &pb.Aggregation{Function: pb.AggregationFunction_AGGREGATION_FUNCTION_SUM, GroupBy: []string{"method"}, Step: durationpb.New(time.Second)},
		LatestOnly:  true,
	})
	require.NoError(t, err)
	require.Len(t, resp.Series, 1)
	assert.Equal(t, "GET", resp.Series[0].Labels["method"])
	assert.InDelta(t, 15.0, resp.Series[0].Samples[0].Value, 0)

	_, err = c.GetMetrics(ctx, &pb.GetMetricsRequest{PageToken: "garbage!"})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{NameRegex: "("}})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestReadsDisabledWithoutStore(t *testing.T) {
	c := startReceiver(t, &switchSink{}, nil)
	_, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: "up"})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "QueryMetrics: reads are disabled")
	_, err = c.GetMetrics(context.Background(), &pb.GetMetricsRequest{})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err))
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out
}

func TestPrometheusHTTPAPI(t *testing.T) {
	c, base := startWithStore(t, t.TempDir())
	recordSome(t, c)

	code, body := getJSON(t, base+"/api/v1/query?query="+url.QueryEscape(`sum(http_requests_total)`))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "success", body["status"])
	data := body["data"].(map[string]any)
	assert.Equal(t, "vector", data["resultType"])
	result := data["result"].([]any)
	require.Len(t, result, 1)
	value := result[0].(map[string]any)["value"].([]any)
	assert.Equal(t, "15", value[1], "values are strings, as in Prometheus")

	now := time.Now().Unix()
	code, body = getJSON(t, fmt.Sprintf("%s/api/v1/query_range?query=%s&start=%d&end=%d&step=15s", base, url.QueryEscape(`queue_depth`), now-60, now))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "matrix", body["data"].(map[string]any)["resultType"])

	code, body = getJSON(t, base+"/api/v1/query?query="+url.QueryEscape(`sum(`))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "error", body["status"])
	assert.Equal(t, "bad_data", body["errorType"])

	code, body = getJSON(t, base+"/api/v1/labels")
	require.Equal(t, http.StatusOK, code)
	assert.Subset(t, body["data"], []any{"__name__", "job", "method", "path", "queue"})

	code, body = getJSON(t, base+"/api/v1/label/path/values")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []any{"/p0", "/p1", "/p2", "/p3", "/p4"}, body["data"])

	code, body = getJSON(t, base+"/api/v1/series?match[]="+url.QueryEscape(`{__name__="queue_depth"}`))
	require.Equal(t, http.StatusOK, code)
	series := body["data"].([]any)
	require.Len(t, series, 1)
	assert.Equal(t, "mail", series[0].(map[string]any)["queue"])

	code, body = getJSON(t, base+"/api/v1/metadata")
	require.Equal(t, http.StatusOK, code)
	md := body["data"].(map[string]any)
	assert.Equal(t, "counter", md["http_requests_total"].([]any)[0].(map[string]any)["type"])
	assert.Equal(t, "histogram", md["db_latency_seconds"].([]any)[0].(map[string]any)["type"])
}

func TestGetMetricsSummary(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	recordSome(t, c)
	resp, err := c.GetMetricsSummary(context.Background(), &pb.GetMetricsSummaryRequest{IncludeRecommendations: true, TopN: 2})
	require.NoError(t, err)

	assert.GreaterOrEqual(t, resp.Totals.Series, int64(5+1+4), "5 counters, 1 gauge, histogram series (+ target_info)")
	assert.GreaterOrEqual(t, resp.Totals.MetricNames, int64(3))
	assert.Positive(t, resp.Totals.Samples)
	assert.Positive(t, resp.Totals.IngestRate_1M)
	assert.Equal(t, int64(1), resp.Totals.MetricsByType["counter"])
	require.Len(t, resp.TopBySeries, 2)
	assert.GreaterOrEqual(t, resp.TopBySeries[0].Series, resp.TopBySeries[1].Series)
	assert.NotEmpty(t, resp.TopByRate)
	var pathCard int64
	for _, l := range resp.LabelCardinality {
		if l.Label == "path" {
			pathCard = l.DistinctValues
		}
	}
	assert.Equal(t, int64(5), pathCard)
	assert.Positive(t, resp.Storage.DiskBytes)
	assert.Positive(t, resp.Storage.HeadSeries)
	require.Len(t, resp.Health, 2)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, resp.Health[0].Status)
	assert.Equal(t, "*", resp.Trends[0].Name)

	// restricted to a glob
	resp, err = c.GetMetricsSummary(context.Background(), &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{Names: []string{"queue_*"}}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), resp.Totals.Series)

	_, err = c.GetMetricsSummary(context.Background(), &pb.GetMetricsSummaryRequest{TrendWindow: durationpb.New(time.Second)})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
}
