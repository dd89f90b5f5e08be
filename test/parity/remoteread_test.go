package parity

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// startPrometheusWith runs a Prometheus with config yml and an empty TSDB.
func startPrometheusWith(t *testing.T, yml string) *testpeer.Peer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(yml), 0o600))
	return testpeer.Start(t, testpeer.Config{
		Binary: "prometheus",
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfg,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				"--log.level=warn",
			}
		},
		ReadyPath: "/-/ready",
	})
}

// recordGauge records rr_gauge of service x (job="x") at the given
// times, with values 1, 2, 3, ... per point and one series per host.
func recordGauge(t *testing.T, c pb.MetricsServiceClient, times []time.Time) {
	t.Helper()
	for i, ts := range times {
		var ms []*pb.MetricData
		for h, host := range []string{"a", "b"} {
			ms = append(ms, &pb.MetricData{Name: "rr_gauge", Type: pb.MetricType_METRIC_TYPE_GAUGE,
				Value: float64(10*h + i + 1), Timestamp: timestamppb.New(ts), Labels: map[string]string{"host": host}})
		}
		_, err := c.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{
			Resource: &pb.Resource{Attributes: map[string]string{"service.name": "x", "service.instance.id": "x-0"}},
			Metrics:  ms,
		})
		require.NoError(t, err)
	}
}

func TestPrometheusRemoteReadsOurStore(t *testing.T) {
	testpeer.LookPath(t, "prometheus")
	c, api := startReceiver(t, consumertest.NewNop(), "")
	now := time.Now().Truncate(time.Second)
	recordGauge(t, c, []time.Time{now.Add(-90 * time.Second), now.Add(-60 * time.Second), now.Add(-30 * time.Second)})

	prom := startPrometheusWith(t, "remote_read:\n  - url: "+api+"/api/v1/read\n    read_recent: true\n")
	for _, q := range []string{`rr_gauge{job="x"}`, `rr_gauge{job="x"}[10m]`, `sum by (host) (rr_gauge)`} {
		params := url.Values{"query": {q}, "time": {strconv.FormatInt(now.Unix(), 10)}}
		want, err := queryAPI(t, api, "/api/v1/query", params)
		require.NoError(t, err, q)
		got, err := queryAPI(t, prom.URL(), "/api/v1/query", params)
		require.NoError(t, err, q)
		w, g := normalize(t, want), normalize(t, got)
		require.Len(t, w, 2, q)
		assert.Equal(t, w, g, q)
	}
	// the values came by remote read: Prometheus' own TSDB is empty
	head, err := http.Get(prom.URL() + "/api/v1/status/tsdb")
	require.NoError(t, err)
	defer head.Body.Close()
	var raw strings.Builder
	_, _ = io.Copy(&raw, head.Body)
	assert.Contains(t, raw.String(), `"numSeries":0`)
}

func TestPrometheusFederatesFromUs(t *testing.T) {
	testpeer.LookPath(t, "prometheus")
	c, api := startReceiver(t, consumertest.NewNop(), "")
	now := time.Now().Truncate(time.Second)
	recordGauge(t, c, []time.Time{now.Add(-20 * time.Second), now.Add(-10 * time.Second)})

	u, err := url.Parse(api)
	require.NoError(t, err)
	prom := startPrometheusWith(t, `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job="x"}']
    static_configs:
      - targets: ['`+u.Host+`']
`)
	// the latest sample of each series, with our labels and timestamp
	ts := float64(now.Add(-10 * time.Second).Unix())
	want := map[string][][2]float64{
		metricKey(map[string]string{"__name__": "rr_gauge", "host": "a", "instance": "x-0", "job": "x"}): {{ts, 2}},
		metricKey(map[string]string{"__name__": "rr_gauge", "host": "b", "instance": "x-0", "job": "x"}): {{ts, 12}},
	}
	var got map[string][][2]float64
	require.Eventually(t, func() bool {
		params := url.Values{"query": {`rr_gauge[5m]`}, "time": {strconv.FormatInt(time.Now().Unix()+1, 10)}}
		res, err := queryAPI(t, prom.URL(), "/api/v1/query", params)
		if err != nil {
			return false
		}
		got = normalize(t, res)
		return len(got) == 2
	}, 30*time.Second, 200*time.Millisecond, "Prometheus did not federate rr_gauge: %v\n%s", got, prom.Output())
	assert.Equal(t, want, got)
}
