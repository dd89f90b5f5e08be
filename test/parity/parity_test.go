// Package parity checks the reads of the embedded store against a real
// Prometheus fed the same data: the same PromQL queries must give the same
// answers, and the remote query backend must answer from that Prometheus.
package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

// startPrometheus runs the Debian prometheus with the remote write receiver.
func startPrometheus(t *testing.T) *testpeer.Peer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("global: {}\n"), 0o600))
	return testpeer.Start(t, testpeer.Config{
		Binary: "prometheus",
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfg,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				"--web.enable-remote-write-receiver",
				"--log.level=warn",
			}
		},
		ReadyPath: "/-/ready",
	})
}

// collector collects the samples the Prometheus translator appends, to send
// them to Prometheus by remote write.
type collector struct {
	series map[string]*prompb.TimeSeries
	order  []string
}

func (c *collector) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, fmt.Errorf("native histograms are not used in this test")
	}
	key := ls.String()
	ts := c.series[key]
	if ts == nil {
		ts = &prompb.TimeSeries{}
		ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
		c.series[key] = ts
		c.order = append(c.order, key)
	}
	ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: v})
	return 1, nil
}
func (c *collector) Commit() error   { return nil }
func (c *collector) Rollback() error { return nil }

// remoteWriter is the pipeline's consumer: it sends every accepted batch to
// Prometheus by remote write before the receiver acknowledges it.
type remoteWriter struct {
	url    string
	mu     sync.Mutex
	series int
}

func (w *remoteWriter) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (w *remoteWriter) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := &collector{series: map[string]*prompb.TimeSeries{}}
	conv := otlptranslator.NewPrometheusConverter(c)
	if _, err := conv.FromMetrics(ctx, md, otlptranslator.Settings{AddMetricSuffixes: true}); err != nil {
		return err
	}
	req := &prompb.WriteRequest{}
	for _, k := range c.order {
		req.Timeseries = append(req.Timeseries, *c.series[k])
	}
	raw, err := req.Marshal()
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("remote write: %s: %s", resp.Status, body)
	}
	w.series += len(req.Timeseries)
	return nil
}

// startReceiver runs our receiver with the store and the Prometheus API, or
// with a remote query backend.
func startReceiver(t *testing.T, next consumer.Metrics, remote string) (pb.MetricsServiceClient, string) {
	t.Helper()
	f := metricsservicereceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*metricsservicereceiver.Config)
	grpcAddr := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	apiAddr := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	cfg.NetAddr.Endpoint = grpcAddr
	var host component.Host = componenttest.NewNopHost()
	if remote == "" {
		p, err := storepipeline.Start(context.Background(), t.TempDir(), nil, next)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })
		next, host = p.Next, p.Host
	} else {
		cfg.Query.Remote.Endpoint = remote
	}
	hc := confighttp.NewDefaultServerConfig()
	hc.NetAddr.Endpoint = apiAddr
	cfg.PrometheusAPI = configoptional.Some(hc)
	require.NoError(t, cfg.Validate())
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewMetricsServiceClient(conn), "http://" + apiAddr
}

var _ receiver.Metrics = nil

const (
	step     = 30 * time.Second
	duration = 2 * time.Hour
)

// feed records two hours of counters, gauges and histograms of three
// services, one batch per step.
func feed(t *testing.T, c pb.MetricsServiceClient, start time.Time) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"api", "web", "auth"}
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	statuses := []string{"200", "201", "404", "500", "503"}
	items := 0
	for ts := start; ts.Before(start.Add(duration)); ts = ts.Add(step) {
		for _, svc := range services {
			var ms []*pb.MetricData
			tsp := timestamppb.New(ts)
			for p := range 20 {
				path := fmt.Sprintf("/v1/items/%d", p)
				for _, m := range methods {
					for _, s := range statuses {
						ms = append(ms, &pb.MetricData{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER,
							Value: float64(rng.IntN(10)), Timestamp: tsp, Labels: map[string]string{"path": path, "method": m, "status": s}})
					}
				}
				obs := make([]float64, 5)
				for i := range obs {
					obs[i] = rng.ExpFloat64() * 0.2 * float64(p%4+1)
				}
				ms = append(ms, &pb.MetricData{Name: "request_duration_seconds", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM,
					Observations: obs, Timestamp: tsp, Labels: map[string]string{"path": path}})
			}
			for q := range 100 {
				ms = append(ms, &pb.MetricData{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE,
					Value: math.Round(50 + 40*math.Sin(float64(ts.Unix())/600+float64(q)) + rng.Float64()*10), Timestamp: tsp,
					Labels: map[string]string{"queue": fmt.Sprintf("q%d", q)}})
			}
			_, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
				Resource: &pb.Resource{Attributes: map[string]string{"service.name": svc, "service.instance.id": svc + "-0"}},
				Metrics:  ms,
			})
			require.NoError(t, err)
			items += len(ms)
		}
	}
	return items
}

// apiResult is the data of a Prometheus query answer.
type apiResult struct {
	ResultType string              `json:"resultType"`
	Result     json.RawMessage     `json:"result"`
	Series     map[string][][2]any `json:"-"`
}

func queryAPI(t *testing.T, base, path string, params url.Values) (apiResult, error) {
	t.Helper()
	resp, err := http.Get(base + path + "?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string    `json:"status"`
		Data   apiResult `json:"data"`
		Error  string    `json:"error"`
	}
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &body), string(raw))
	if body.Status != "success" {
		return body.Data, fmt.Errorf("%s", body.Error)
	}
	return body.Data, nil
}

// normalize turns a vector, matrix or scalar into series key -> points.
func normalize(t *testing.T, r apiResult) map[string][][2]float64 {
	t.Helper()
	out := map[string][][2]float64{}
	point := func(p []any) [2]float64 {
		ts := p[0].(float64)
		v, err := strconv.ParseFloat(p[1].(string), 64)
		require.NoError(t, err)
		return [2]float64{ts, v}
	}
	switch r.ResultType {
	case "scalar", "string":
		var p []any
		require.NoError(t, json.Unmarshal(r.Result, &p))
		out[""] = [][2]float64{point(p)}
	case "vector":
		var vs []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		require.NoError(t, json.Unmarshal(r.Result, &vs))
		for _, v := range vs {
			out[metricKey(v.Metric)] = [][2]float64{point(v.Value)}
		}
	case "matrix":
		var ms []struct {
			Metric map[string]string `json:"metric"`
			Values [][]any           `json:"values"`
		}
		require.NoError(t, json.Unmarshal(r.Result, &ms))
		for _, m := range ms {
			var ps [][2]float64
			for _, p := range m.Values {
				ps = append(ps, point(p))
			}
			out[metricKey(m.Metric)] = ps
		}
	}
	return out
}

func metricKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, m[k])
	}
	return b.String()
}

func close(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func compare(t *testing.T, q string, ours, theirs map[string][][2]float64) {
	t.Helper()
	require.Equal(t, len(theirs), len(ours), "%s: series count", q)
	for k, tp := range theirs {
		op, ok := ours[k]
		require.True(t, ok, "%s: series %s missing in ours", q, k)
		require.Equal(t, len(tp), len(op), "%s: %s: point count", q, k)
		for i := range tp {
			require.Equal(t, tp[i][0], op[i][0], "%s: %s: timestamp", q, k)
			require.True(t, close(tp[i][1], op[i][1]), "%s: %s at %v: prometheus %v, ours %v", q, k, tp[i][0], tp[i][1], op[i][1])
		}
	}
}

var instantQueries = []string{
	`http_requests_total{path="/v1/items/3"}`,
	`sum(http_requests_total)`,
	`rate(http_requests_total{method="GET",status="200"}[5m])`,
	`sum by (job) (rate(http_requests_total[5m]))`,
	`increase(http_requests_total{path="/v1/items/1"}[10m])`,
	`sum by (method, status) (increase(http_requests_total[1h]))`,
	`irate(http_requests_total{job="api",path="/v1/items/2"}[5m])`,
	`topk(5, sum by (path) (rate(http_requests_total[5m])))`,
	`bottomk(3, sum by (path, method) (rate(http_requests_total[5m])))`,
	`histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))`,
	`histogram_quantile(0.5, sum by (le, job) (rate(request_duration_seconds_bucket[10m])))`,
	`histogram_quantile(0.99, rate(request_duration_seconds_bucket{job="web"}[5m]))`,
	`rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])`,
	`sum(rate(http_requests_total[5m] offset 30m))`,
	`sum by (job) (http_requests_total offset 1h)`,
	`max_over_time(sum(rate(http_requests_total[5m]))[30m:1m])`,
	`avg_over_time(queue_depth{job="api"}[15m])`,
	`max by (queue) (queue_depth)`,
	`min(queue_depth)`,
	`count(queue_depth > 50)`,
	`queue_depth{job="auth"} * 2 + 1`,
	`sum by (queue) (queue_depth) / scalar(sum(queue_depth))`,
	`delta(queue_depth{job="web"}[10m])`,
	`deriv(queue_depth{job="api"}[10m])`,
	`predict_linear(queue_depth{job="api"}[30m], 3600)`,
	`quantile_over_time(0.9, queue_depth{job="web"}[30m])`,
	`stddev(queue_depth)`,
	`quantile(0.5, queue_depth)`,
	`count by (job) (http_requests_total)`,
	`absent(nonexistent_metric)`,
	`label_replace(sum by (job) (rate(http_requests_total[5m])), "svc", "$1", "job", "(.*)")`,
	`sort_desc(sum by (path) (increase(http_requests_total[30m])))`,
	`sum(rate(http_requests_total[5m])) > 1`,
	`changes(queue_depth{job="api"}[30m])`,
	`sum(resets(http_requests_total[1h]))`,
	`clamp_max(queue_depth{job="auth"}, 50)`,
	`sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))`,
	`count(target_info)`,
}

var rangeQueries = []string{
	`sum by (job) (rate(http_requests_total[5m]))`,
	`histogram_quantile(0.95, sum by (le) (rate(request_duration_seconds_bucket[5m])))`,
	`avg by (job) (queue_depth)`,
	`sum(increase(http_requests_total{status="500"}[10m]))`,
}

func TestParityWithPrometheus(t *testing.T) {
	prom := startPrometheus(t)
	client, ours := startReceiver(t, &remoteWriter{url: prom.URL()}, "")

	// samples at +13s/+43s of each minute and queries at +20s/+50s: no
	// sample sits on a range boundary, where Prometheus 2 (closed ranges)
	// and 3 (left-open ranges) differ by design
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-duration).Add(13 * time.Second)
	items := feed(t, client, start)
	t.Logf("recorded %d items into both", items)

	evals := []time.Time{start.Add(65*time.Minute + 7*time.Second), start.Add(100*time.Minute + 7*time.Second), start.Add(duration - step + 7*time.Second)}
	n := 0
	for _, q := range instantQueries {
		for _, at := range evals {
			params := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
			theirs, err := queryAPI(t, prom.URL(), "/api/v1/query", params)
			require.NoError(t, err, q)
			mine, err := queryAPI(t, ours, "/api/v1/query", params)
			require.NoError(t, err, q)
			require.Equal(t, theirs.ResultType, mine.ResultType, q)
			compare(t, q, normalize(t, mine), normalize(t, theirs))
			n++
		}
	}
	rangeStart := start.Add(70*time.Minute + 7*time.Second)
	for _, q := range rangeQueries {
		params := url.Values{"query": {q},
			"start": {strconv.FormatFloat(float64(rangeStart.UnixMilli())/1000, 'f', 3, 64)},
			"end":   {strconv.FormatFloat(float64(rangeStart.Add(45*time.Minute).UnixMilli())/1000, 'f', 3, 64)},
			"step":  {"60"}}
		theirs, err := queryAPI(t, prom.URL(), "/api/v1/query_range", params)
		require.NoError(t, err, q)
		for range 2 { // the second answer comes from the results cache
			mine, err := queryAPI(t, ours, "/api/v1/query_range", params)
			require.NoError(t, err, q)
			compare(t, q, normalize(t, mine), normalize(t, theirs))
		}
		n++
	}
	t.Logf("%d queries gave the same answers", n)
	assert.GreaterOrEqual(t, len(instantQueries)+len(rangeQueries), 30)

	t.Run("remote backend", func(t *testing.T) {
		remote, remoteAPI := startReceiver(t, &remoteWriter{url: prom.URL()}, prom.URL())
		at := evals[2]
		q := `sum by (job) (rate(http_requests_total[5m]))`
		local, err := client.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: q, Time: timestamppb.New(at)})
		require.NoError(t, err)
		viaRemote, err := remote.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: q, Time: timestamppb.New(at)})
		require.NoError(t, err)
		byJob := func(r *pb.QueryMetricsResponse) map[string]float64 {
			out := map[string]float64{}
			for _, s := range r.Series {
				out[s.Labels["job"]] = s.Samples[0].Value
			}
			return out
		}
		require.Len(t, viaRemote.Series, 3)
		for job, v := range byJob(local) {
			assert.True(t, close(v, byJob(viaRemote)[job]), "%s: local %v remote %v", job, v, byJob(viaRemote)[job])
		}

		agg, err := remote.GetMetrics(context.Background(), &pb.GetMetricsRequest{
			Filter:      &pb.MetricFilter{Names: []string{"queue_depth"}},
			TimeRange:   &pb.TimeRange{Start: timestamppb.New(at.Add(-10 * time.Minute)), End: timestamppb.New(at)},
			Aggregation: &pb.Aggregation{Function: pb.AggregationFunction_AGGREGATION_FUNCTION_MAX, GroupBy: []string{"job"}},
		})
		require.NoError(t, err)
		assert.Equal(t, int64(3), agg.TotalCount)

		_, err = remote.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: `sum(`})
		assert.ErrorContains(t, err, "InvalidArgument")

		params := url.Values{"query": {`count(queue_depth)`}, "time": {strconv.FormatInt(at.Unix(), 10)}}
		res, err := queryAPI(t, remoteAPI, "/api/v1/query", params)
		require.NoError(t, err)
		assert.Equal(t, "vector", res.ResultType)
	})
}
