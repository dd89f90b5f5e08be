package statsdexporter

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

// The real StatsD daemon (npm package statsd 0.9.0, run with node) is the
// peer of these tests, with its Graphite backend pointed at a TCP socket the
// test reads: what comes out of the daemon's flush is what the daemon
// computed from our lines. Install it with
//
//	npm install statsd@0.9.0 --prefix .cache/statsd
//
// at the repository root (.ci/run does), or point STATSD_DAEMON at its
// stats.js. Missing node or daemon: the test is skipped (failed with
// REQUIRE_INTEGRATION=1).

// statsdDaemonEnv names the stats.js of the StatsD daemon.
const statsdDaemonEnv = "STATSD_DAEMON"

// daemonScript finds stats.js.
func daemonScript(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(statsdDaemonEnv); p != "" {
		return p
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "statsd", "node_modules", "statsd", "stats.js")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
	}
	reason := "the StatsD daemon (npm statsd@0.9.0) is not installed: run `npm install statsd@0.9.0 --prefix .cache/statsd` at the repository root or set " + statsdDaemonEnv
	if testpeer.Required() {
		t.Fatalf("%s=1 but %s", testpeer.RequireEnv, reason)
	}
	t.Skip(reason)
	return ""
}

// graphiteSink is a Graphite plaintext listener: "path value timestamp" lines.
type graphiteSink struct {
	ln    net.Listener
	mu    sync.Mutex
	lines map[string][]float64
	wg    sync.WaitGroup
}

func startGraphite(t *testing.T) *graphiteSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &graphiteSink{ln: ln, lines: map[string][]float64{}}
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.wg.Go(func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) != 3 {
						continue
					}
					v, err := strconv.ParseFloat(f[1], 64)
					if err != nil {
						continue
					}
					g.mu.Lock()
					g.lines[f[0]] = append(g.lines[f[0]], v)
					g.mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		g.wg.Wait()
	})
	return g
}

// seen reports whether path was flushed with value v (within 1e-9).
func (g *graphiteSink) seen(path string, v float64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range g.lines[path] {
		if x-v < 1e-9 && v-x < 1e-9 {
			return true
		}
	}
	return false
}

func (g *graphiteSink) dump() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for k, v := range g.lines {
		fmt.Fprintf(&b, "%s %v\n", k, v)
	}
	return b.String()
}

// startDaemon runs the StatsD daemon on a UDP port with a 1s flush to the
// Graphite sink; it returns the UDP address.
func startDaemon(t *testing.T, graphite string) string {
	t.Helper()
	script := daemonScript(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	udp := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	_, udpPort, _ := net.SplitHostPort(udp)
	_, gPort, _ := net.SplitHostPort(graphite)
	cfgPath := filepath.Join(t.TempDir(), "config.js")
	testpeer.Start(t, testpeer.Config{
		Binary: "node",
		Dir:    filepath.Dir(script),
		Args: func(addr string) []string {
			_, mgmt, _ := net.SplitHostPort(addr)
			cfg := fmt.Sprintf(`{
  address: "127.0.0.1", port: %s, mgmt_address: "127.0.0.1", mgmt_port: %s,
  backends: ["./backends/graphite"], graphiteHost: "127.0.0.1", graphitePort: %s,
  flushInterval: 1000, deleteIdleStats: true,
  graphite: { legacyNamespace: false, globalPrefix: "stats" }
}`, udpPort, mgmt, gPort)
			require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
			return []string{script, cfgPath}
		},
	})
	return udp
}

// daemonWorkload is one batch: a delta counter (5), a gauge (17) and a
// histogram of the observations 0.12, 0.4 and 1.3 in the buckets
// (0.1, 0.5] (2) and (1, +Inf) (1), each with the tag queue=mail.
func daemonWorkload() pmetric.Metrics {
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	now := pcommon.NewTimestampFromTime(time.Now())
	c := ms.AppendEmpty()
	c.SetName("jobs_total")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetIntValue(5)
	dp.SetTimestamp(now)
	dp.Attributes().PutStr("queue", "mail")
	g := ms.AppendEmpty()
	g.SetName("queue_depth")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetDoubleValue(17)
	gp.SetTimestamp(now)
	gp.Attributes().PutStr("queue", "mail")
	h := ms.AppendEmpty()
	h.SetName("job_duration")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(now)
	hp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
	hp.BucketCounts().FromRaw([]uint64{0, 2, 0, 1})
	hp.SetCount(3)
	hp.SetSum(1.82)
	hp.SetMin(0.12)
	hp.SetMax(1.3)
	hp.Attributes().PutStr("queue", "mail")
	return md
}

// Counters, gauges and timers come out of the real daemon's flush with the
// values it computes, for each tag style it accepts: none, dogstatsd
// (|#k:v, turned into Graphite tags by the daemon) and graphite (name;k=v).
// InfluxDB-style tags (name,k=v) are not a StatsD daemon dialect: the
// daemon folds them into the name.
func TestRealStatsdDaemonFlushes(t *testing.T) {
	g := startGraphite(t)
	udp := startDaemon(t, g.ln.Addr().String())

	styles := []struct{ format, tags string }{
		{"none", ""},
		{"dogstatsd", ";queue=mail"},
		{"graphite", ";queue=mail"},
	}
	for _, st := range styles {
		cfg := syncConfig(udp, TransportUDP)
		cfg.Prefix = st.format
		cfg.TagFormat = st.format
		cfg.Histogram.Mode = "observations"
		exp := startExporter(t, cfg)
		require.NoError(t, exp.ConsumeMetrics(context.Background(), daemonWorkload()))
	}
	for _, st := range styles {
		// The daemon's own computations over one flush interval (1s):
		// counter count and rate; the gauge; the timer's count from the
		// sample rates (2 + 1), and its lower/upper/sum/mean over the values
		// it got: the midpoints of the buckets clamped to min and max,
		// (0.12+0.5)/2 = 0.31 and (1+1.3)/2 = 1.15.
		want := map[string]float64{
			"stats.counters." + st.format + ".jobs_total.count" + st.tags: 5,
			"stats.counters." + st.format + ".jobs_total.rate" + st.tags:  5,
			"stats.gauges." + st.format + ".queue_depth" + st.tags:        17,
			"stats.timers." + st.format + ".job_duration.count" + st.tags: 3,
			"stats.timers." + st.format + ".job_duration.lower" + st.tags: 0.31,
			"stats.timers." + st.format + ".job_duration.upper" + st.tags: 1.15,
			"stats.timers." + st.format + ".job_duration.sum" + st.tags:   1.46,
			"stats.timers." + st.format + ".job_duration.mean" + st.tags:  0.73,
		}
		for path, v := range want {
			assert.Eventually(t, func() bool { return g.seen(path, v) }, 15*time.Second, 20*time.Millisecond,
				"%s: %s %v not flushed; got:\n%s", st.format, path, v, g.dump())
		}
	}
}
