package testpeer

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// StatsdDaemonEnv names the stats.js of the StatsD daemon (npm statsd);
// unset, the daemon is looked for at <module root>/.cache/statsd/node_modules/statsd/stats.js,
// where `npm install statsd@0.9.0 --prefix .cache/statsd` (and .ci/run) puts it.
const StatsdDaemonEnv = "STATSD_DAEMON"

// StatsdDaemon is a running StatsD daemon (the original, on node) whose
// Graphite backend flushes every second to Graphite.
type StatsdDaemon struct {
	// Addr is the daemon's UDP address.
	Addr string
	// Graphite receives its flushes.
	Graphite *GraphiteSink
}

// StartStatsd starts the StatsD daemon on a free UDP port of 127.0.0.1 with
// a 1s flush to a Graphite sink (legacyNamespace off, globalPrefix
// "stats": counters are stats.counters.<key>.count and .rate, gauges
// stats.gauges.<key>, timers stats.timers.<key>.count/.sum/.lower/...).
// Missing node or daemon: the test is skipped (failed with
// REQUIRE_INTEGRATION=1).
func StartStatsd(tb testing.TB) *StatsdDaemon {
	tb.Helper()
	LookPath(tb, "node")
	script := statsdScript(tb)
	g := StartGraphite(tb)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free UDP port: %v", err)
	}
	udp := pc.LocalAddr().String()
	_ = pc.Close()
	_, udpPort, _ := net.SplitHostPort(udp)
	_, gPort, _ := net.SplitHostPort(g.Addr)
	cfgPath := filepath.Join(tb.TempDir(), "config.js")
	Start(tb, Config{
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
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				tb.Fatalf("write the StatsD config: %v", err)
			}
			return []string{script, cfgPath}
		},
	})
	return &StatsdDaemon{Addr: udp, Graphite: g}
}

func statsdScript(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(StatsdDaemonEnv); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("getwd: %v", err)
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".cache", "statsd", "node_modules", "statsd", "stats.js")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
	}
	reason := "the StatsD daemon (npm statsd@0.9.0) is not installed: run `npm install statsd@0.9.0 --prefix .cache/statsd` at the repository root or set " + StatsdDaemonEnv
	if Required() {
		tb.Fatalf("%s=1 but %s", RequireEnv, reason)
	}
	tb.Skip(reason)
	return ""
}

// GraphiteSink is a Graphite plaintext listener ("path value timestamp" lines).
type GraphiteSink struct {
	// Addr is its TCP address.
	Addr  string
	ln    net.Listener
	mu    sync.Mutex
	lines map[string][]float64
	wg    sync.WaitGroup
}

// StartGraphite listens on a free port of 127.0.0.1 until the test ends.
func StartGraphite(tb testing.TB) *GraphiteSink {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	g := &GraphiteSink{Addr: ln.Addr().String(), ln: ln, lines: map[string][]float64{}}
	g.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.wg.Go(func() { g.read(c) })
		}
	})
	tb.Cleanup(func() {
		_ = ln.Close()
		g.wg.Wait()
	})
	return g
}

func (g *GraphiteSink) read(c net.Conn) {
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
}

// Seen reports whether path was flushed with the value v (within 1e-9).
func (g *GraphiteSink) Seen(path string, v float64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range g.lines[path] {
		if math.Abs(x-v) < 1e-9 {
			return true
		}
	}
	return false
}

// Dump returns every path with its values, sorted, for failure messages.
func (g *GraphiteSink) Dump() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := make([]string, 0, len(g.lines))
	for k := range g.lines {
		if !strings.HasPrefix(k, "stats.statsd.") && !strings.Contains(k, ".statsd.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %v\n", k, g.lines[k])
	}
	return b.String()
}
