package testpeer

import (
	"path/filepath"
	"testing"
)

// VictoriaMetrics starts a single-node VictoriaMetrics (Debian
// victoria-metrics: remote write at /api/v1/write, the Prometheus query API
// at /api/v1/*) with its data in a temporary directory. Samples are
// searchable as soon as VictoriaMetrics flushed them (about a second; POST
// /internal/force_flush flushes now): poll for them. The query results
// cache is off and the latency offset zero, so a read sees the newest
// samples.
func VictoriaMetrics(tb testing.TB) *Peer {
	tb.Helper()
	dir := tb.TempDir()
	return Start(tb, Config{
		Binary: "victoria-metrics",
		Args: func(addr string) []string {
			return []string{
				"-httpListenAddr=" + addr,
				"-storageDataPath=" + filepath.Join(dir, "data"),
				"-retentionPeriod=1",
				"-search.latencyOffset=0s",
				"-search.disableCache",
				"-loggerLevel=WARN",
			}
		},
		ReadyPath: "/health",
		Dir:       dir,
	})
}
