package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

// promtool runs Debian's promtool (Prometheus 2.42) with a bound.
func promtool(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// TestPromtoolAgainstEveryReadEndpoint: promtool query instant, range,
// series and labels read what was stored, in promtool's JSON output; and
// promtool check rules accepts the rule files the collector loads and
// refuses the ones it refuses.
func TestPromtoolAgainstEveryReadEndpoint(t *testing.T) {
	bin := testpeer.LookPath(t, "promtool")
	_, sinkAddr := startSink(t)
	e := startCollectorAt(t, sinkAddr)
	server := "http://" + e.promAPI

	now := time.Now().Truncate(time.Second)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "pt")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("pt_queue_depth")
	gauge := g.SetEmptyGauge()
	for i, q := range []string{"a", "b"} {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		dp.SetDoubleValue(float64(i + 1))
		dp.Attributes().PutStr("queue", q)
	}
	postOTLP(t, e.otlpHTTP, md)
	sec := func(tm time.Time) string { return strconv.FormatInt(tm.Unix(), 10) }

	t.Run("instant", func(t *testing.T) {
		out, err := promtool(t, bin, "query", "instant", "-o", "json", "--time="+sec(now), server, `sum(pt_queue_depth)`)
		require.NoError(t, err, out)
		var v []struct {
			Value []any `json:"value"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		require.Len(t, v, 1)
		assert.Equal(t, "3", v[0].Value[1])
	})
	t.Run("range", func(t *testing.T) {
		out, err := promtool(t, bin, "query", "range", "-o", "json", "--start="+sec(now.Add(-time.Minute)), "--end="+sec(now), "--step=30s", server, `pt_queue_depth{queue="b"}`)
		require.NoError(t, err, out)
		var m []struct {
			Metric map[string]string `json:"metric"`
			Values [][]any           `json:"values"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &m), out)
		require.Len(t, m, 1)
		assert.Equal(t, "pt", m[0].Metric["job"])
		require.NotEmpty(t, m[0].Values)
		assert.Equal(t, "2", m[0].Values[len(m[0].Values)-1][1])
	})
	t.Run("series", func(t *testing.T) {
		out, err := promtool(t, bin, "query", "series", "--match=pt_queue_depth", "--start="+sec(now.Add(-time.Hour)), "--end="+sec(now.Add(time.Minute)), server)
		require.NoError(t, err, out)
		assert.Contains(t, out, `queue="a"`)
		assert.Contains(t, out, `queue="b"`)
	})
	t.Run("labels", func(t *testing.T) {
		out, err := promtool(t, bin, "query", "labels", server, "queue")
		require.NoError(t, err, out)
		assert.Equal(t, "a\nb\n", out)
	})

	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(e2eRules), 0o600))
	t.Run("check rules accepts what the collector loads", func(t *testing.T) {
		out, err := promtool(t, bin, "check", "rules", good)
		require.NoError(t, err, out)
		assert.Contains(t, out, "SUCCESS: 2 rules found")
	})
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n"), 0o600))
	t.Run("check rules refuses what the collector refuses", func(t *testing.T) {
		out, err := promtool(t, bin, "check", "rules", bad)
		require.Error(t, err, out)
		assert.Contains(t, out, "5:15")
	})
}
