package metricsmanagementextension_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The status page in a real headless Chromium: a healthy provider with
// traffic and one whose destination refuses connections, with state,
// health, health history and throughput charts; the inline script
// refreshes the table (no external assets). The screenshot is kept in the
// test's output directory and its path logged.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel()
	chromium := testpeer.LookPath(t, "chromium")
	statusAddr := freeAddr(t)
	sink := startOTLPSink(t, "")
	c := startCollector(t, t.TempDir(), "", fmt.Sprintf(`
extensions:
  metrics_store:
    store:
      path: %s
  metrics_management:
    status_page:
      endpoint: %s
processors:
  metrics_store:
    extension: metrics_store
service:
  extensions: [file_storage, metrics_store, metrics_management]
  pipelines:
    metrics:
      processors: [metrics_store]
`, t.TempDir(), statusAddr))
	ctx := context.Background()
	ok := otlpProvider("healthy", sink.addr)
	ok.Name = "Healthy sink"
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: ok, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	bad := otlpProvider("down", closed)
	bad.GetSettings().GetOpentelemetry().Timeout = durationpb.New(time.Second)
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: bad, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	recordSpecExample(t, c, 5)
	require.Eventually(t, func() bool {
		st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "down"})
		require.NoError(t, err)
		return st.GetHealth() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY
	}, 10*time.Second, 10*time.Millisecond)

	page := "http://" + statusAddr + "/"
	run := func(args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		var out []byte
		var err error
		for range 2 { // a second try when the browser itself crashed (seen under CI load)
			base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + t.TempDir()}
			if out, err = exec.CommandContext(cctx, chromium, append(append(base, args...), page)...).Output(); err == nil {
				break
			}
		}
		require.NoError(t, err, "chromium")
		return string(out)
	}
	// Let the page's timers run (virtual time) so the live refresh happens.
	dom := run("--virtual-time-budget=5000", "--dump-dom")
	assert.Contains(t, dom, `id="provider-table"`)
	for _, want := range []string{
		`data-provider-id="healthy" data-health="HEALTHY" data-state="RUNNING"`,
		`data-provider-id="down" data-health="UNHEALTHY" data-state="RUNNING"`,
		`Healthy sink`, `class="health-chart"`, `class="throughput-chart"`, `<polyline class="tp" points="`,
		`rect class="UNHEALTHY"`, `connection refused`,
		`id="store"`, `<b class="streams">0</b> open`,
	} {
		assert.Contains(t, dom, want)
	}
	assert.NotEqual(t, "0", between(dom, `<b class="head-series">`, `</b>`), "the store's head series are shown")
	updated := between(dom, `<span id="updated">`, `</span>`)
	assert.Contains(t, updated, ".", "the inline script refreshed the table (its timestamp has milliseconds): %q", updated)
	for _, external := range []string{`src="http`, `href="http`, `<link `, `@import`} {
		assert.NotContains(t, dom, external, "no external assets")
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	if dir := os.Getenv("TEST_ARTIFACTS_DIR"); dir != "" {
		shot = filepath.Join(dir, "status-page.png")
	}
	run("--window-size=1600,700", "--screenshot="+shot)
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(10000), "a real screenshot")
	t.Logf("status page screenshot: %s (%d bytes)", shot, fi.Size())
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}
