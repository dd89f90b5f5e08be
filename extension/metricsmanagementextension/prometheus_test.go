package metricsmanagementextension_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// A remote-write provider delivers to a real Prometheus (Debian prometheus
// with the remote write receiver on), and the data is queryable there.
func TestRemoteWriteToPrometheus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	prom := testpeer.Start(t, testpeer.Config{
		Binary: "prometheus",
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--log.level=warn",
			}
		},
		ReadyPath: "/-/ready",
	})
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: &pb.ProviderConfig{
		ProviderId: "prometheus",
		Type:       pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
		Settings: &pb.ProviderSettings{Prometheus: &pb.PrometheusSettings{
			RemoteWriteUrl: prom.URL() + "/api/v1/write",
			ExternalLabels: map[string]string{"cluster": "test"},
			Timeout:        durationpb.New(5 * time.Second),
		}},
	}, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	recordSpecExample(t, c, 3)

	query := prom.URL() + "/api/v1/query?query=" + url.QueryEscape(`http_requests_total{method="GET",cluster="test"}`)
	require.Eventually(t, func() bool {
		var resp struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  []any             `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(httpGet(t, query)), &resp) != nil || len(resp.Data.Result) != 1 {
			return false
		}
		r := resp.Data.Result[0]
		return len(r.Value) == 2 && r.Value[1] == "3" && r.Metric["path"] == "/api/v1/users"
	}, 30*time.Second, 20*time.Millisecond, "Prometheus answers the counter written by the provider")

	st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "prometheus", IncludeTopMetrics: true})
	require.NoError(t, err)
	assert.Zero(t, st.GetStats().GetDatapointsFailed())
	assert.Positive(t, st.GetStats().GetDatapointsSent())
	require.NotEmpty(t, st.GetTopMetrics())
	assert.Equal(t, "http_requests_total", st.GetTopMetrics()[0].GetName())
}
