package metricsmanagementextension_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// promSeries returns the label values of label over the series a real
// Prometheus answers for query.
func promSeries(t *testing.T, prom *testpeer.Peer, query, label string) []string {
	t.Helper()
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(httpGet(t, prom.URL()+"/api/v1/query?query="+url.QueryEscape(query))), &resp) != nil {
		return nil
	}
	var out []string
	for _, r := range resp.Data.Result {
		out = append(out, r.Metric[label])
	}
	sort.Strings(out)
	return out
}

// The collector's own telemetry, scraped by a real Prometheus: a provider
// deleted and created again with the same id has new series (generation 2,
// exporter .../g2/v1) beside the old ones.
func TestTelemetryGenerationsScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	host, portStr, _ := net.SplitHostPort(freeAddr(t))
	telemetry := net.JoinHostPort(host, portStr)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: collector
    static_configs:
      - targets: [%q]
`, telemetry)), 0o600))
	prom := testpeer.Start(t, testpeer.Config{
		Binary: "prometheus",
		Args: func(addr string) []string {
			return []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + addr, "--log.level=warn"}
		},
		ReadyPath: "/-/ready",
	})
	sink := startOTLPSink(t, "")
	c := startCollector(t, t.TempDir(), "", fmt.Sprintf(`
service:
  telemetry:
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: %s
                port: %s
`, host, portStr))
	ctx := context.Background()
	for gen := 1; gen <= 2; gen++ {
		_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: otlpProvider("prod", sink.addr), ValidateConfig: true, AutoStart: true})
		require.NoError(t, err)
		recordSpecExample(t, c, 1)
		require.Eventually(t, func() bool {
			st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "prod"})
			require.NoError(t, err)
			return st.GetStats().GetDatapointsSent() > 0
		}, 30*time.Second, 50*time.Millisecond, "the provider exports")
		want := fmt.Sprint(gen)
		require.Eventually(t, func() bool {
			gens := promSeries(t, prom, `{__name__=~"metricsmodule_provider_datapoints(_total)?",provider_id="prod",outcome="sent"}`, "generation")
			return len(gens) == gen && gens[gen-1] == want
		}, 30*time.Second, 50*time.Millisecond, "generation %d is scraped; the collector serves:\n%s", gen, grepLines(httpGet(t, "http://"+telemetry+"/metrics"), "metricsmodule_provider"))
		if gen == 1 {
			_, err = c.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: "prod"})
			require.NoError(t, err)
		}
	}
	require.Eventually(t, func() bool {
		ids := promSeries(t, prom, `{__name__=~"otelcol_exporter_sent_metric_points(_total)?",exporter=~".*/providers/prod/.*"}`, "exporter")
		return len(ids) == 2 && ids[0] == "otlp_grpc/providers/prod/g1/v1" && ids[1] == "otlp_grpc/providers/prod/g2/v1"
	}, 30*time.Second, 50*time.Millisecond, "the exporters' own counters are distinct per generation: %v",
		promSeries(t, prom, `{exporter=~".*providers.*"}`, "exporter"))
	require.NotEmpty(t, promSeries(t, prom, `metricsmodule_provider_queue_capacity{provider_id="prod",generation="2"}`, "generation"))
	require.NotEmpty(t, promSeries(t, prom, `{__name__=~"metricsmodule_provider_send_duration(_seconds)?_count",provider_id="prod",outcome="ok"}`, "generation"))
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
