package prometheusremotewritereceiver

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

// staticTarget serves a counter, a gauge and a classic histogram that change
// with every scrape, and a series that disappears after the third scrape (so
// Prometheus writes a stale marker for it).
func staticTarget(t *testing.T) *httptest.Server {
	t.Helper()
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP demo_requests_total Requests served.\n# TYPE demo_requests_total counter\n")
		fmt.Fprintf(w, "demo_requests_total{path=\"/a\"} %d\ndemo_requests_total{path=\"/b\"} %d\n", 3*n, 7*n)
		fmt.Fprintf(w, "# TYPE demo_temperature gauge\ndemo_temperature{room=\"kitchen\"} %g\n", 20+float64(n)/8)
		fmt.Fprintf(w, "# TYPE demo_latency_seconds histogram\n")
		fmt.Fprintf(w, "demo_latency_seconds_bucket{le=\"0.1\"} %d\ndemo_latency_seconds_bucket{le=\"1\"} %d\ndemo_latency_seconds_bucket{le=\"+Inf\"} %d\n", n, 2*n, 3*n)
		fmt.Fprintf(w, "demo_latency_seconds_sum %g\ndemo_latency_seconds_count %d\n", 0.7*float64(n), 3*n)
		if n <= 3 {
			fmt.Fprintf(w, "# TYPE demo_flaky gauge\ndemo_flaky 1\n")
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// promSamples returns the raw samples Prometheus has for selector, by its
// HTTP API (a range vector selector at time at): series → samples.
func promSamples(t *testing.T, base, selector string, at int64) map[string][]rawSample {
	t.Helper()
	q := url.Values{"query": {selector + "[1h]"}, "time": {strconv.FormatFloat(float64(at)/1000, 'f', 3, 64)}}
	resp, err := http.Get(base + "/api/v1/query?" + q.Encode()) //nolint:noctx // test
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status)
	out := map[string][]rawSample{}
	for _, r := range body.Data.Result {
		key := labels.FromMap(r.Metric).String()
		for _, v := range r.Values {
			secs, err := strconv.ParseFloat(string(v[0]), 64)
			require.NoError(t, err)
			var s string
			require.NoError(t, json.Unmarshal(v[1], &s))
			f, err := strconv.ParseFloat(s, 64)
			require.NoError(t, err)
			out[key] = append(out[key], rawSample{T: int64(math.Round(secs * 1000)), Bits: math.Float64bits(f)})
		}
	}
	return out
}

// TestRealPrometheusRemoteWriteArrivesInTheStore runs Prometheus (Debian 2.42,
// remote write 1.0) scraping a static target every second and remote
// writing to the receiver in front of the metrics_store pipeline; every
// series Prometheus keeps arrives in the store under the same labels (job
// and instance included) with equal raw values and timestamps, and the
// stale marker of the series that disappeared is stored as StaleNaN.
func TestRealPrometheusRemoteWriteArrivesInTheStore(t *testing.T) {
	testpeer.LookPath(t, "prometheus") // skips (fails with REQUIRE_INTEGRATION=1) when missing
	writeURL, p := startStore(t)
	target := staticTarget(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: static
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
`, target.Listener.Addr().String(), writeURL)
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	prom := testpeer.Start(t, testpeer.Config{
		Binary: "prometheus",
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfgPath,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				"--log.level=warn",
			}
		},
		ReadyPath: "/-/ready",
	})

	const selector = `{job="static"}`
	staleBits := math.Float64bits(math.Float64frombits(value.StaleNaN))
	start := time.Now().Add(-time.Minute).UnixMilli()
	flaky := labels.FromStrings("__name__", "demo_flaky", "job", "static", "instance", target.Listener.Addr().String()).String()
	var ours map[string][]rawSample
	require.Eventually(t, func() bool {
		ours = storedSamples(t, p.Sink.Store().Queryable(), start, time.Now().Add(time.Minute).UnixMilli())
		fl := ours[flaky]
		return len(ours[labels.FromStrings("__name__", "demo_temperature", "job", "static", "instance", target.Listener.Addr().String(), "room", "kitchen").String()]) >= 6 &&
			len(fl) > 0 && fl[len(fl)-1].Bits == staleBits
	}, time.Minute, 200*time.Millisecond, "the store did not get 6 scrapes and the stale marker; Prometheus said:\n%s", prom.Output())

	theirs := promSamples(t, prom.URL(), selector, time.Now().Add(time.Minute).UnixMilli())
	require.NotEmpty(t, theirs)
	compared := 0
	// Prometheus' query API does not return stale markers; ours are checked
	// above, and left out of the comparison.
	for key, want := range theirs {
		var got []rawSample
		for _, s := range ours[key] {
			if s.Bits != staleBits {
				got = append(got, s)
			}
		}
		require.NotEmpty(t, got, "series %s is not in the store", key)
		last := got[len(got)-1].T
		var prefix []rawSample
		for _, s := range want {
			if s.T <= last {
				prefix = append(prefix, s)
			}
		}
		// Remote write sends from the start of Prometheus' WAL, in order:
		// what the store has is what Prometheus has, up to the last sample
		// that arrived.
		require.Equal(t, prefix, got, "series %s", key)
		compared += len(got)
	}
	t.Logf("%d series, %d samples equal in Prometheus and in the store", len(theirs), compared)
	for key := range ours {
		if _, ok := theirs[key]; !ok && key != flaky {
			t.Errorf("series %s is in the store but not in Prometheus", key)
		}
	}
}
