package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
)

// fleetNode is one collector of a fleet sharing a store.
type fleetNode struct {
	endpoints
	client pb.MetricsServiceClient
}

// startFleet runs n in-process collectors in shared store mode against the
// backend at vmURL (remote write and query API), exporting to sinkAddr:
// the README's recipe, testdata/config.yaml with testdata/fleet-node.yaml,
// with what its environment variables give each node (one process here,
// so the values are set in YAML after the file).
func startFleet(t *testing.T, n int, vmURL, sinkAddr string) []fleetNode {
	t.Helper()
	nodes := make([]fleetNode, n)
	recipe := "file:" + filepath.Join("..", "..", "testdata", "fleet-node.yaml")
	for i := range nodes {
		e := startCollectorFiles(t, sinkAddr, []string{recipe}, fmt.Sprintf(`
extensions:
  metrics_store:
    shared:
      write_endpoint: %s/api/v1/write
      query_endpoint: %s
      instance: node-%d
`, vmURL, vmURL, i))
		conn, err := grpc.NewClient(e.ingest, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		nodes[i] = fleetNode{endpoints: e, client: pb.NewMetricsServiceClient(conn)}
	}
	return nodes
}

// promValue runs an instant query on a node's Prometheus API and returns
// the value of its single answer (NaN and false when there is not one).
func promValue(t *testing.T, addr, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	if len(body.Data.Result) != 1 {
		return 0, false
	}
	v, err := strconv.ParseFloat(body.Data.Result[0].Value[1].(string), 64)
	require.NoError(t, err)
	return v, true
}

// TestFleetCountersSpreadOverThreeNodesAddUpExactly: increments of one
// counter (and sets of one gauge) spread round-robin over three collectors
// sharing one VictoriaMetrics read back exact from every node: PromQL over
// QueryMetrics and the Prometheus API, increase, GetMetrics raw and
// latest_only, and at the provider (an OTLP destination) the nodes' totals
// add up.
func TestFleetCountersSpreadOverThreeNodesAddUpExactly(t *testing.T) {
	vm := testpeer.VictoriaMetrics(t)
	sink, sinkAddr := startSink(t)
	nodes := startFleet(t, 3, vm.URL(), sinkAddr)
	ctx := context.Background()

	start := time.Now().Add(-time.Second)
	var total, lastGauge float64
	const records = 30
	for i := range records {
		inc := float64(i%5 + 1)
		total += inc
		lastGauge = float64(100 + i)
		n := nodes[i%len(nodes)]
		_, err := n.client.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{
			Resource: &pb.Resource{Attributes: map[string]string{"service.name": "shop"}},
			Metrics: []*pb.MetricData{
				{Name: "fleet_orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: inc, Labels: map[string]string{"region": "eu"}},
				{Name: "fleet_queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: lastGauge, Labels: map[string]string{"region": "eu"}},
			},
		})
		require.NoError(t, err, "record %d through node %d", i, i%len(nodes))
	}
	end := time.Now().Add(time.Second)

	for i, n := range nodes {
		// PromQL: each node's running total is one series; their sum is the fleet's
		require.Eventually(t, func() bool {
			v, ok := promValue(t, n.promAPI, `sum without (collector_instance) (fleet_orders_total{region="eu"})`)
			return ok && v == total
		}, 20*time.Second, 50*time.Millisecond, "node %d: Prometheus API sum", i)
		q, err := n.client.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `sum without (collector_instance) (increase(fleet_orders_total[10m]))`})
		require.NoError(t, err)
		require.Len(t, q.Series, 1)
		assert.InDelta(t, total, q.Series[0].Samples[0].Value, 1e-9, "node %d: increase over all three nodes", i)
		q, err = n.client.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `count(fleet_orders_total)`})
		require.NoError(t, err)
		assert.InDelta(t, 3.0, q.Series[0].Samples[0].Value, 0, "one series per node")

		// GetMetrics merges the nodes' series into one, without the identity
		tr := &pb.TimeRange{Start: timestamppb.New(start), End: timestamppb.New(end)}
		latest, err := n.client.GetMetrics(ctx, &pb.GetMetricsRequest{
			Filter: &pb.MetricFilter{Names: []string{"fleet_orders_total", "fleet_queue_depth"}}, TimeRange: tr, LatestOnly: true,
		})
		require.NoError(t, err)
		require.Len(t, latest.Series, 2, "node %d", i)
		assert.Equal(t, int64(2), latest.TotalCount)
		for _, s := range latest.Series {
			assert.NotContains(t, s.Labels, "collector_instance")
			require.Len(t, s.Samples, 1)
		}
		assert.Equal(t, "fleet_orders_total", latest.Series[0].Name)
		assert.InDelta(t, total, latest.Series[0].Samples[0].Value, 0, "node %d: the latest fleet total", i)
		assert.Equal(t, "fleet_queue_depth", latest.Series[1].Name)
		assert.InDelta(t, lastGauge, latest.Series[1].Samples[0].Value, 0, "node %d: the gauge's last value", i)

		// aggregations see the series once, its nodes added up
		for fn, want := range map[pb.AggregationFunction]float64{
			pb.AggregationFunction_AGGREGATION_FUNCTION_COUNT: 1,
			pb.AggregationFunction_AGGREGATION_FUNCTION_MAX:   total,
		} {
			agg, err := n.client.GetMetrics(ctx, &pb.GetMetricsRequest{
				Filter: &pb.MetricFilter{Names: []string{"fleet_orders_total"}}, TimeRange: &pb.TimeRange{End: timestamppb.Now()},
				LatestOnly: true, Aggregation: &pb.Aggregation{Function: fn},
			})
			require.NoError(t, err)
			require.Len(t, agg.Series, 1)
			require.NotEmpty(t, agg.Series[0].Samples)
			assert.InDelta(t, want, agg.Series[0].Samples[len(agg.Series[0].Samples)-1].Value, 0, "node %d: %v", i, fn)
		}

		raw, err := n.client.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"fleet_orders_total"}}, TimeRange: tr})
		require.NoError(t, err)
		require.Len(t, raw.Series, 1)
		samples := raw.Series[0].Samples
		require.NotEmpty(t, samples)
		for j := 1; j < len(samples); j++ {
			assert.GreaterOrEqual(t, samples[j].Value, samples[j-1].Value, "node %d: the merged running total never goes down", i)
		}
		assert.InDelta(t, total, samples[len(samples)-1].Value, 0)
	}

	// GetMetricsSummary from any node: the fleet's series, from the backend
	// (node 2 itself received the counter's increments of only one node)
	var summ *pb.GetMetricsSummaryResponse
	seriesOf := map[string]int64{}
	require.Eventually(t, func() bool { // the backend's status is fetched at most every 2s
		var err error
		summ, err = nodes[2].client.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{NameRegex: "fleet_.*"}})
		require.NoError(t, err)
		clear(seriesOf)
		for _, r := range summ.TopBySeries {
			seriesOf[r.Name] = r.Series
		}
		return len(seriesOf) == 2
	}, 20*time.Second, 100*time.Millisecond)
	assert.Equal(t, map[string]int64{"fleet_orders_total": 3, "fleet_queue_depth": 1}, seriesOf)
	assert.Equal(t, int64(4), summ.Totals.Series)
	card := map[string]int64{}
	for _, l := range summ.LabelCardinality {
		card[l.Label] = l.DistinctValues
	}
	assert.Equal(t, int64(3), card["collector_instance"])
	summ, err := nodes[1].client.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{Filter: &pb.MetricFilter{
		NameRegex: "fleet_.*", LabelMatchers: []*pb.LabelMatcher{{Name: "region", Operator: pb.MatchOperator_MATCH_OPERATOR_EQUAL, Value: "eu"}},
	}})
	require.NoError(t, err)
	assert.Equal(t, int64(4), summ.Totals.Series, "a filter with label matchers counts at the backend")

	// at the provider: one running total per node, adding up to the fleet's
	perNode, _ := sink.counterTotals("fleet_orders_total", "collector_instance")
	assert.Len(t, perNode, 3)
	var sum float64
	for _, v := range perNode {
		sum += v
	}
	assert.InDelta(t, total, sum, 0)
}

// TestFleetWriteRefusedWhenTheSharedStoreIsDown: OK means the shared store
// kept the batch; when the backend does not answer the write is refused
// as retryable and nothing reaches the exporters.
func TestFleetWriteRefusedWhenTheSharedStoreIsDown(t *testing.T) {
	sink, sinkAddr := startSink(t)
	dead := "http://" + freePort(t)
	nodes := startFleet(t, 1, dead, sinkAddr)
	_, err := nodes[0].client.RecordMetric(context.Background(), &pb.RecordMetricRequest{
		Metric: &pb.MetricData{Name: "fleet_lost_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1},
	})
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Contains(t, err.Error(), "did not accept the batch")
	perNode, _ := sink.counterTotals("fleet_lost_total", "collector_instance")
	assert.Empty(t, perNode)
}

// TestFleetRecipeConfigResolves: the README's fleet recipe, the default
// config merged with testdata/fleet-node.yaml and its environment variables,
// is a valid config whose node writes to and reads from the shared store.
func TestFleetRecipeConfigResolves(t *testing.T) {
	t.Setenv("NODE_NAME", "node-b")
	t.Setenv("PORT_PREFIX", "53")
	t.Setenv("SHARED_STORE", "http://127.0.0.1:8428")
	factories, err := Components()
	require.NoError(t, err)
	cp, err := otelcol.NewConfigProvider(otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
		URIs: []string{
			"file:" + filepath.Join("..", "..", "testdata", "config.yaml"),
			"file:" + filepath.Join("..", "..", "testdata", "fleet-node.yaml"),
		},
		ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
	}})
	require.NoError(t, err)
	cfg, err := cp.Get(context.Background(), factories)
	require.NoError(t, err)
	require.NoError(t, confmap.Validate(cfg))
	ext := cfg.Extensions[component.MustNewID("metrics_store")].(*metricsstoreextension.Config)
	require.True(t, ext.Shared.HasValue())
	assert.Equal(t, "http://127.0.0.1:8428/api/v1/write", ext.Shared.Get().WriteEndpoint)
	assert.Equal(t, "node-b", ext.Shared.Get().Instance)
	assert.Equal(t, filepath.Join("data", "node-b", "tsdb"), filepath.Clean(ext.Store.Path))
	rcv := cfg.Receivers[component.MustNewID("metrics_service")].(*metricsservicereceiver.Config)
	assert.Equal(t, "127.0.0.1:5320", rcv.NetAddr.Endpoint)
}

// TestFleetCountersStayExactWhenTheSharedStoreRefusesWrites: while the
// backend refuses writes every record fails (UNAVAILABLE) and no node counts
// it; the client's retries after the backend is back make the fleet's total
// exactly the sum of all increments, read from any node.
func TestFleetCountersStayExactWhenTheSharedStoreRefusesWrites(t *testing.T) {
	vm := testpeer.VictoriaMetrics(t)
	target, err := url.Parse(vm.URL())
	require.NoError(t, err)
	var down atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() && r.URL.Path == "/api/v1/write" {
			http.Error(w, "backend down (test)", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	_, sinkAddr := startSink(t)
	nodes := startFleet(t, 3, front.URL, sinkAddr)
	ctx := context.Background()

	record := func(i int, inc float64) error {
		_, err := nodes[i%len(nodes)].client.RecordMetric(ctx, &pb.RecordMetricRequest{
			Metric: &pb.MetricData{Name: "fleet_payments_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: inc},
		})
		return err
	}
	var total float64
	var failed []int
	for i := range 30 {
		inc := float64(i%4 + 1)
		total += inc
		down.Store(i >= 10 && i < 20)
		if err := record(i, inc); err != nil {
			assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			failed = append(failed, i)
		}
	}
	require.Len(t, failed, 10, "every record is refused while the backend is down")
	down.Store(false)
	for _, i := range failed { // the client retries, through the next node
		require.NoError(t, record(i+1, float64(i%4+1)))
	}
	for i, n := range nodes {
		require.Eventually(t, func() bool {
			v, ok := promValue(t, n.promAPI, `sum without (collector_instance) (fleet_payments_total)`)
			return ok && v == total
		}, 20*time.Second, 50*time.Millisecond, "node %d: the fleet's total is every increment once", i)
	}
}
