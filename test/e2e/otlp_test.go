package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// startWithSink runs the default config with an OTLP sink as exporter and
// returns the endpoints and a MetricsService client.
func startWithSink(t *testing.T) (endpoints, pb.MetricsServiceClient) {
	t.Helper()
	_, sinkAddr := startSink(t)
	e := startCollectorAt(t, sinkAddr)
	conn, err := grpc.NewClient(e.ingest, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return e, pb.NewMetricsServiceClient(conn)
}

// subscribe opens a stream of the metrics name selects and waits for its
// first heartbeat (the subscription is then in place).
func subscribe(t *testing.T, c pb.MetricsServiceClient, names ...string) <-chan *pb.MetricData {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.StreamMetrics(ctx, &pb.StreamMetricsRequest{Filter: &pb.MetricFilter{Names: names}, Options: &pb.StreamOptions{BatchTimeoutMs: 5}})
	require.NoError(t, err)
	first, err := s.Recv()
	require.NoError(t, err)
	require.NotNil(t, first.GetHeartbeat(), "a stream starts with a heartbeat")
	out := make(chan *pb.MetricData, 1000)
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			for _, md := range m.GetBatch().GetMetrics() {
				select {
				case out <- md:
				default:
				}
			}
		}
	}()
	return out
}

// streamed collects the names of the streamed points until every name in
// want was seen, or fails after a bound.
func streamed(t *testing.T, ch <-chan *pb.MetricData, want ...string) map[string]*pb.MetricData {
	t.Helper()
	got := map[string]*pb.MetricData{}
	deadline := time.After(20 * time.Second)
	for {
		missing := 0
		for _, n := range want {
			if got[n] == nil {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		select {
		case m := <-ch:
			got[m.Name] = m
		case <-deadline:
			t.Fatalf("streamed %v, want all of %v", keys(got), want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// promQuery answers an instant query through the Prometheus HTTP API as
// the value of each series by its labels' String().
func promQuery(t *testing.T, promAPI, q string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + promAPI + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status)
	out := map[string]float64{}
	for _, r := range body.Data.Result {
		v, err := strconv.ParseFloat(r.Value[1].(string), 64)
		require.NoError(t, err)
		out[fmt.Sprint(r.Metric)] = v
	}
	return out
}

// queryOne answers an instant query through gRPC QueryMetrics; it expects
// one series.
func queryOne(t *testing.T, c pb.MetricsServiceClient, q string) float64 {
	t.Helper()
	resp, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: q})
	require.NoError(t, err)
	require.Len(t, resp.Series, 1, "query %s", q)
	require.NotEmpty(t, resp.Series[0].Samples)
	return resp.Series[0].Samples[len(resp.Series[0].Samples)-1].Value
}

// getLatest returns the newest value of the one series GetMetrics finds by name.
func getLatest(t *testing.T, c pb.MetricsServiceClient, name string) (float64, map[string]string) {
	t.Helper()
	resp, err := c.GetMetrics(context.Background(), &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: []string{name}}})
	require.NoError(t, err)
	require.Len(t, resp.Series, 1, "GetMetrics %s", name)
	s := resp.Series[0]
	require.NotEmpty(t, s.Samples)
	return s.Samples[len(s.Samples)-1].Value, s.Labels
}

// TestOpenTelemetrySDKOverOTLPGRPCIsReadableAndStreamed is an app using the
// OpenTelemetry Go SDK against the default config: its metrics are readable
// through QueryMetrics, GetMetrics and the Prometheus API as soon as the
// export returned, and are streamed to a subscriber.
func TestOpenTelemetrySDKOverOTLPGRPCIsReadableAndStreamed(t *testing.T) {
	e, c := startWithSink(t)
	ctx := context.Background()
	stream := subscribe(t, c, "sdk_*")

	exp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(e.otlpGRPC), otlpmetricgrpc.WithInsecure())
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))),
	)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	meter := mp.Meter("e2e")
	orders, err := meter.Int64Counter("sdk_orders")
	require.NoError(t, err)
	depth, err := meter.Float64Gauge("sdk_queue_depth")
	require.NoError(t, err)
	latency, err := meter.Float64Histogram("sdk_latency", metric.WithUnit("s"))
	require.NoError(t, err)
	eu := metric.WithAttributes(attribute.String("region", "eu"))
	orders.Add(ctx, 3, eu)
	orders.Add(ctx, 4, eu)
	depth.Record(ctx, 7.5, eu)
	latency.Record(ctx, 0.2, eu)
	latency.Record(ctx, 0.4, eu)
	require.NoError(t, mp.ForceFlush(ctx), "the collector acknowledged the export")

	// read your writes: no waiting
	assert.Equal(t, 7.0, queryOne(t, c, `sdk_orders_total{job="checkout",region="eu"}`))
	v, labels := getLatest(t, c, "sdk_queue_depth")
	assert.Equal(t, 7.5, v)
	assert.Equal(t, "checkout", labels["job"])
	assert.Equal(t, map[string]float64{"map[job:checkout region:eu]": 2}, promQuery(t, e.promAPI, `sum by (job, region) (sdk_latency_seconds_count)`))
	assert.Equal(t, map[string]float64{"map[job:checkout region:eu]": 0.6000000000000001}, promQuery(t, e.promAPI, `sum by (job, region) (sdk_latency_seconds_sum)`))

	got := streamed(t, stream, "sdk_orders", "sdk_queue_depth", "sdk_latency")
	assert.Equal(t, 7.0, got["sdk_orders"].Value)
	assert.Equal(t, 7.5, got["sdk_queue_depth"].Value)
	assert.Equal(t, "checkout", got["sdk_orders"].GetResource().GetAttributes()["service.name"])
}

// TestOTLPHTTPJSONPushIsReadableAndStreamed pushes OTLP/HTTP JSON as curl
// would.
func TestOTLPHTTPJSONPushIsReadableAndStreamed(t *testing.T) {
	e, c := startWithSink(t)
	stream := subscribe(t, c, "json_*")
	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-app"}}]},
"scopeMetrics":[{"metrics":[
 {"name":"json_temperature","gauge":{"dataPoints":[{"asDouble":21.5,"timeUnixNano":"%d","attributes":[{"key":"room","value":{"stringValue":"a"}}]}]}},
 {"name":"json_jobs","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asInt":"42","startTimeUnixNano":"%d","timeUnixNano":"%d"}]}}
]}]}]}`, now, now-int64(time.Minute), now)
	resp, err := http.Post("http://"+e.otlpHTTP+"/v1/metrics", "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", answer)

	assert.Equal(t, 21.5, queryOne(t, c, `json_temperature{job="json-app",room="a"}`))
	v, _ := getLatest(t, c, "json_jobs_total")
	assert.Equal(t, 42.0, v)
	assert.Equal(t, map[string]float64{"map[job:json-app]": 42}, promQuery(t, e.promAPI, `sum by (job) (json_jobs_total)`))

	got := streamed(t, stream, "json_temperature", "json_jobs")
	assert.Equal(t, 21.5, got["json_temperature"].Value)
	assert.Equal(t, 42.0, got["json_jobs"].Value)
}

// TestOTLPPointTheStoreWouldNotKeepIsRefused: an OTLP push with a point
// outside the store's window is refused (HTTP 400, naming the window and the
// fix) instead of acknowledged and dropped; nothing of it is stored.
func TestOTLPPointTheStoreWouldNotKeepIsRefused(t *testing.T) {
	e, c := startWithSink(t)
	now := time.Now()
	body := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-app"}}]},
"scopeMetrics":[{"metrics":[
 {"name":"json_fresh","gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"%d"}]}},
 {"name":"json_old","gauge":{"dataPoints":[{"asDouble":2,"timeUnixNano":"%d"}]}}
]}]}]}`, now.UnixNano(), now.Add(-20*24*time.Hour).UnixNano())
	resp, err := http.Post("http://"+e.otlpHTTP+"/v1/metrics", "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", answer)
	assert.Contains(t, string(answer), "json_old")
	assert.Contains(t, string(answer), "store.retention")

	got, err := c.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: `json_fresh`})
	require.NoError(t, err)
	assert.Empty(t, got.Series, "the batch is refused whole")
}
