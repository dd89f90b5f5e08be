package sharedstore

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

// backends are the real Prometheus-compatible backends the writer and the
// status reader are tested against: both speak remote write and the
// Prometheus HTTP API.
var backends = []struct {
	name  string
	start func(t *testing.T) *testpeer.Peer
}{
	{"victoria-metrics", func(t *testing.T) *testpeer.Peer { return testpeer.VictoriaMetrics(t) }},
	{"prometheus", func(t *testing.T) *testpeer.Peer {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "prometheus.yml")
		require.NoError(t, os.WriteFile(cfg, []byte("global: {}\n"), 0o600))
		return testpeer.Start(t, testpeer.Config{
			Binary: "prometheus",
			Args: func(addr string) []string {
				return []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
					"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--log.level=warn"}
			},
			ReadyPath: "/-/ready",
			Dir:       dir,
		})
	}},
}

// TestRealBackendsKeepWhatTheWriterSendsAndReportTheirIndex: a batch the
// backend accepted is readable there, and its status reports the series.
func TestRealBackendsKeepWhatTheWriterSendsAndReportTheirIndex(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			peer := be.start(t)
			c := validConfig()
			c.WriteEndpoint = peer.URL() + "/api/v1/write"
			c.QueryEndpoint = peer.URL()
			w, err := NewWriter(c, zap.NewNop())
			require.NoError(t, err)
			now := time.Now().UnixMilli()
			b := w.NewBatch()
			for i, node := range []string{"a", "b", "c"} {
				b.Sample(labels.FromStrings("__name__", "orders_total", "collector_instance", node, "region", "eu"), now, float64(i+1), nil, nil, metadata.Metadata{Type: "counter"})
			}
			b.Sample(labels.FromStrings("__name__", "depth"), now, 7, nil, nil, metadata.Metadata{Type: "gauge"})
			require.NoError(t, w.Write(context.Background(), b))

			st := NewStatus(c)
			require.Eventually(t, func() bool {
				if be.name == "victoria-metrics" { // make the samples searchable now
					if resp, err := http.Post(peer.URL()+"/internal/force_flush", "", http.NoBody); err == nil {
						resp.Body.Close()
					}
				}
				n, err := st.SeriesPerMetricMatching(context.Background(), time.Now(), labels.MustNewMatcher(labels.MatchEqual, "region", "eu"))
				return err == nil && n["orders_total"] == 3
			}, 20*time.Second, 50*time.Millisecond)
			ts, err := st.TSDB(context.Background())
			require.NoError(t, err)
			assert.Equal(t, int64(4), ts.TotalSeries)
			assert.Equal(t, map[string]int64{"orders_total": 3, "depth": 1}, ts.SeriesPerMetric)
			assert.Equal(t, int64(3), ts.LabelValues["collector_instance"])
			assert.Equal(t, int64(1), ts.LabelValues["region"])
		})
	}
}
