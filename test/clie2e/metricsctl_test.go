package clie2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metricsmodule/metricsmodule/test/childcollector"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queryValue runs an instant query with metricsctl -o json and returns the
// value of each series by the value of label.
func (c *collector) queryValues(query, label string) map[string]float64 {
	c.t.Helper()
	r := c.ctl("", "-o", "json", "query", query)
	require.Equal(c.t, 0, r.code, "%s %s", r.stdout, r.stderr)
	var resp struct {
		Series []struct {
			Labels  map[string]string `json:"labels"`
			Samples []struct {
				Value float64 `json:"value"`
			} `json:"samples"`
		} `json:"series"`
	}
	require.NoError(c.t, json.Unmarshal([]byte(r.stdout), &resp), r.stdout)
	out := map[string]float64{}
	for _, s := range resp.Series {
		if n := len(s.Samples); n > 0 {
			out[s.Labels[label]] = s.Samples[n-1].Value
		}
	}
	return out
}

// TestEveryCommandGroupAgainstACollector runs each command group of
// metricsctl, as a person would, against a collector process.
func TestEveryCommandGroupAgainstACollector(t *testing.T) {
	c := newCollector(t)
	c.start()

	// tail first, so that it sees what is recorded next
	tailCtx, tailCancel := context.WithTimeout(context.Background(), time.Minute)
	defer tailCancel()
	tail := c.ctlCommand(tailCtx, "tail", "e2e_*", "--json", "--count", "2", "--batch-timeout-ms", "50", "--qos", "exactly-once")
	tailOut, err := tail.StdoutPipe()
	require.NoError(t, err)
	tailErr := &childcollector.Buffer{}
	tail.Stderr = tailErr
	require.NoError(t, tail.Start())
	require.Eventually(t, func() bool { return strings.Contains(tailErr.String(), "streaming (subscription") },
		30*time.Second, 20*time.Millisecond, "tail did not subscribe: %s", tailErr.String())

	// record: flags and stdin
	r := c.ctl("", "record", "e2e_requests_total", "2", "-l", "method=GET", "-r", "service.name=e2e")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "recorded 1 of 1 points")
	r = c.ctl("e2e_requests_total{method=\"POST\"} 3\n# TYPE e2e_queue_depth gauge\ne2e_queue_depth{queue=\"mail\"} 17\n", "record", "--stdin", "-r", "service.name=e2e")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "recorded 2 of 2 points")

	// tail printed the points as JSON lines
	lines := bufio.NewScanner(tailOut)
	var got []string
	for len(got) < 2 && lines.Scan() {
		got = append(got, lines.Text())
	}
	require.NoError(t, tail.Wait(), tailErr.String())
	require.Len(t, got, 2, tailErr.String())
	assert.Contains(t, got[0], `"name":"e2e_requests_total"`)
	assert.Contains(t, got[0], `"sequence":1`)

	// query, table and JSON
	require.Equal(t, map[string]float64{"GET": 2, "POST": 3}, c.queryValues(`sum by (method) (e2e_requests_total)`, "method"))
	r = c.ctl("", "query", `sum by (method) (e2e_requests_total)`)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `\{method="GET"\}\s+2`, r.stdout)
	r = c.ctl("", "query", `e2e_queue_depth`, "--range", "5m", "--step", "15s")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `e2e_queue_depth\s+\{.*queue="mail".*\}\s+\d+\s+17`, r.stdout)

	// get and summary
	r = c.ctl("", "get", "e2e_*")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `e2e_queue_depth\s+gauge\s+\{.*queue="mail".*\}\s+17`, r.stdout)
	r = c.ctl("", "summary")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `\d+ series of \d+ metrics`, r.stdout)
	assert.Contains(t, r.stdout, "ingest:")

	// a refusal names the field and the fix, exit code 2
	r = c.ctl("", "record", "bad name", "1", "--type", "gauge")
	assert.Equal(t, 2, r.code, "%s %s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "fix")
	r = c.ctl("", "query", "sum(")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "InvalidArgument")

	// an import with points the server refuses: the rest is recorded, the summary gives the reasons, exit 6
	bad := filepath.Join(t.TempDir(), "bad.prom")
	require.NoError(t, os.WriteFile(bad, []byte("# TYPE e2e_ok gauge\ne2e_ok 1\n# TYPE e2e_nan_total counter\ne2e_nan_total NaN\n"+
		"e2e_long{v=\""+strings.Repeat("x", 3000)+"\"} 1\n"), 0o600))
	r = c.ctl("", "import", bad)
	assert.Equal(t, 6, r.code, "%s %s", r.stdout, r.stderr)
	assert.Regexp(t, `accepted\s+1\n`, r.stdout)
	assert.Regexp(t, `refused\s+2\n`, r.stdout)
	assert.Contains(t, r.stdout, "refused, by reason:")
	t.Logf("import with refusals:\n%s", r.stdout)

	// definitions
	defs := filepath.Join(t.TempDir(), "defs.yaml")
	require.NoError(t, os.WriteFile(defs, []byte(`name: e2e_jobs_total
type: METRIC_TYPE_COUNTER
description: jobs done
labels:
  - {name: queue, required: true, allowed_values: [mail, sms]}
`), 0o600))
	r = c.ctl("", "definitions", "apply", "-f", defs, "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "e2e_jobs_total: would be created")
	r = c.ctl("", "definitions", "apply", "-f", defs)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "e2e_jobs_total: created, schema v1")
	r = c.ctl("", "definitions", "list", "e2e_*")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `e2e_jobs_total\s+counter\s+v1\s+queue\*`, r.stdout)
	r = c.ctl("", "definitions", "describe", "e2e_jobs_total")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "registered: true")
	r = c.ctl("", "record", "e2e_jobs_total", "1", "-l", "queue=fax")
	assert.Equal(t, 2, r.code, "a record breaking the definition is refused: %s %s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, `"fax"`)
	r = c.ctl("", "definitions", "delete", "e2e_jobs_total", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "would be removed")
	r = c.ctl("", "definitions", "delete", "e2e_jobs_total")
	require.Equal(t, 0, r.code, r.stderr)

	// providers
	prov := filepath.Join(t.TempDir(), "provider.yaml")
	write := func(endpoint string) {
		require.NoError(t, os.WriteFile(prov, []byte(fmt.Sprintf(`provider_id: e2e-otlp
name: e2e sink
type: PROVIDER_TYPE_OPENTELEMETRY
settings:
  opentelemetry: {endpoint: "%s", protocol: OTLP_PROTOCOL_GRPC}
`, endpoint)), 0o600))
	}
	write(freePort(t))
	r = c.ctl("", "providers", "apply", "-f", prov, "--wait")
	require.Equal(t, 0, r.code, "%s %s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "e2e-otlp: created, version 1")
	assert.Contains(t, r.stderr, "e2e-otlp: running")
	write(freePort(t))
	// the old exporter cannot reach its endpoint: bound its drain
	r = c.ctl("", "providers", "apply", "-f", prov, "--wait", "--strategy", "recreate", "--drain-timeout", "1s")
	require.Equal(t, 0, r.code, "%s %s", r.stdout, r.stderr)
	assert.Regexp(t, `(?m)^  -\s+endpoint: 127\.0\.0\.1:\d+\n  \+\s+endpoint: 127\.0\.0\.1:\d+$`, r.stderr, "the diff is shown first")
	assert.Contains(t, r.stdout, "e2e-otlp: updated, version 2")
	r = c.ctl("", "providers", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `e2e-otlp\s+opentelemetry\s+running`, r.stdout)
	r = c.ctl("", "-o", "yaml", "providers", "describe", "e2e-otlp")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "provider_id: e2e-otlp")
	r = c.ctl("", "providers", "stats", "e2e-otlp")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "e2e-otlp: running")
	r = c.ctl("", "providers", "delete", "e2e-otlp", "--cleanup", "immediate", "--wait")
	require.Equal(t, 0, r.code, "%s %s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "e2e-otlp: gone")
	r = c.ctl("", "providers", "describe", "e2e-otlp")
	assert.Equal(t, 4, r.code, r.stderr)

	// a bad provider config: refused with the field
	require.NoError(t, os.WriteFile(prov, []byte("provider_id: Bad Id\ntype: PROVIDER_TYPE_OPENTELEMETRY\n"), 0o600))
	r = c.ctl("", "providers", "apply", "-f", prov)
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "field config.")
}

// TestImportOf100kLinesInterruptedAndResumed imports a 100k-line file,
// kills metricsctl after some batches, resumes, and finds every point once.
func TestImportOf100kLinesInterruptedAndResumed(t *testing.T) {
	c := newCollector(t)
	c.start()
	const series, perSeries = 100, 1000
	base := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	var b strings.Builder
	b.WriteString("# HELP e2e_import_total points imported\n# TYPE e2e_import_total counter\n")
	for i := range series * perSeries {
		// every series has one point per millisecond, its running total 1..perSeries
		fmt.Fprintf(&b, "e2e_import_total{shard=\"%d\"} %d %d\n", i%series, i/series+1, base.Add(time.Duration(i/series)*time.Millisecond).UnixMilli())
	}
	file := filepath.Join(t.TempDir(), "big.prom")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	state := file + ".metricsctl-import"

	// first run, paced so that it is killed in the middle
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := c.ctlCommand(ctx, "import", file, "--batch-size", "1000", "--rate", "20000")
	firstErr := &childcollector.Buffer{}
	first.Stderr = firstErr
	require.NoError(t, first.Start())
	acked := func() int {
		raw, err := os.ReadFile(state)
		if err != nil {
			return 0
		}
		var s struct {
			Acked int `json:"acked"`
		}
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		return s.Acked
	}
	require.Eventually(t, func() bool { return acked() >= 10 }, time.Minute, 5*time.Millisecond, firstErr.String())
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	killedAt := acked()
	require.Less(t, killedAt, 100, "killed before the end")
	t.Logf("killed after %d of 100 batches", killedAt)

	// without --resume: refused
	r := c.ctl("", "import", file, "--batch-size", "1000")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--resume")

	r = c.ctl("", "import", file, "--batch-size", "1000", "--resume")
	require.Equal(t, 0, r.code, "%s %s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, fmt.Sprintf("resuming %s after batch %d of 100", file, killedAt))
	assert.Regexp(t, `import \[=+\s*\] 100000/100000 points \(100%\) \d+ points/s ETA 0s`, r.stderr, "progress with rate and ETA")
	assert.Regexp(t, `accepted\s+100000`, r.stdout, "the state counts every point once")
	assert.Regexp(t, `refused\s+0`, r.stdout)
	t.Logf("resumed import:\n%s%s", r.stderr, r.stdout)

	// the store has each line once: perSeries samples per series, the last one the total
	at := base.Add(time.Minute).Unix()
	counts := c.queryValues(fmt.Sprintf(`count_over_time(e2e_import_total[10m] @ %d)`, at), "shard")
	lasts := c.queryValues(fmt.Sprintf(`last_over_time(e2e_import_total[10m] @ %d)`, at), "shard")
	require.Len(t, counts, series)
	for s := range series {
		k := strconv.Itoa(s)
		assert.Equal(t, float64(perSeries), counts[k], "samples of shard %s", k)
		assert.Equal(t, float64(perSeries), lasts[k], "last value of shard %s", k)
	}
}

// TestBasicAuthAgainstTheSecureConfig runs metricsctl against
// testdata/config-secure.yaml: anonymous is refused with exit code 5 and a
// hint, a user with basic auth records, and a user without the role is refused.
func TestBasicAuthAgainstTheSecureConfig(t *testing.T) {
	secure, err := filepath.Abs(filepath.Join("..", "..", "testdata", "secure"))
	require.NoError(t, err)
	c := newCollector(t)
	c.env = []string{
		childBaseEnv + "=" + filepath.Join("..", "..", "testdata", "config-secure.yaml"),
		"METRICS_HTPASSWD_FILE=" + filepath.Join(secure, "htpasswd.example"),
		"METRICS_TOKEN_FILE=" + filepath.Join(secure, "tokens.example"),
	}
	c.start()

	r := c.ctl("", "record", "e2e_auth_total", "1")
	assert.Equal(t, 5, r.code, r.stderr)
	assert.Contains(t, r.stderr, "Unauthenticated")
	assert.Contains(t, r.stderr, "hint: set a token")

	cfg := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`current-context: secure
contexts:
  - name: secure
    endpoint: %s
    management-endpoint: %s
    username: ingester
    password-env: E2E_PASSWORD
`, c.ingest, c.mgmt)), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(password string, args ...string) ctlResult {
		cmd := exec.CommandContext(ctx, ctlPath, append([]string{"--config", cfg}, args...)...)
		cmd.Env = append(os.Environ(), "E2E_PASSWORD="+password)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return ctlResult{code, out.String(), errOut.String()}
	}
	r = run("example-ingester-password", "record", "e2e_auth_total", "1")
	require.Equal(t, 0, r.code, r.stderr)
	r = run("example-ingester-password", "query", "e2e_auth_total")
	assert.Equal(t, 5, r.code, "the ingester may not read: %s", r.stderr)
	assert.Contains(t, r.stderr, "PermissionDenied")
	r = run("wrong", "record", "e2e_auth_total", "1")
	assert.Equal(t, 5, r.code, r.stderr)
}

// TestTailResumesFromItsCheckpoint tails an at-least-once subscription,
// stops, and a second run with the same checkpoint file prints what was
// recorded in between, and nothing printed before.
func TestTailResumesFromItsCheckpoint(t *testing.T) {
	c := newCollector(t)
	c.start()
	checkpoint := filepath.Join(t.TempDir(), "tail.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tail := func(count string) (*exec.Cmd, *bufio.Scanner, *childcollector.Buffer) {
		cmd := c.ctlCommand(ctx, "tail", "e2e_tail_*", "--qos", "at-least-once", "--checkpoint", checkpoint, "--count", count, "--batch-timeout-ms", "20")
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		errOut := &childcollector.Buffer{}
		cmd.Stderr = errOut
		require.NoError(t, cmd.Start())
		return cmd, bufio.NewScanner(out), errOut
	}
	// the subscription exists once the first run's stream is open: record until it prints
	first, lines, errOut := tail("1")
	recorded := 0
	require.Eventually(t, func() bool {
		recorded++
		r := c.ctl("", "record", "e2e_tail_first", strconv.Itoa(recorded), "--type", "gauge")
		require.Equal(t, 0, r.code, r.stderr)
		_, err := os.Stat(checkpoint)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, errOut.String())
	var firstLines []string
	for lines.Scan() {
		firstLines = append(firstLines, lines.Text())
	}
	require.NoError(t, first.Wait(), errOut.String())
	require.NotEmpty(t, firstLines)
	raw, err := os.ReadFile(checkpoint)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"subscription":`)

	// recorded while nobody tails
	r := c.ctl("", "record", "e2e_tail_second", "42", "--type", "gauge")
	require.Equal(t, 0, r.code, r.stderr)
	// the second run prints what the first did not, up to the point recorded in between
	second, lines, errOut := tail("1000")
	var secondLines []string
	for lines.Scan() {
		secondLines = append(secondLines, lines.Text())
		if strings.Contains(lines.Text(), "e2e_tail_second") {
			break
		}
	}
	_ = second.Process.Kill()
	_ = second.Wait()
	require.NotEmpty(t, secondLines, errOut.String())
	assert.Contains(t, secondLines[len(secondLines)-1], "e2e_tail_second", "what was recorded between the runs: %s", errOut.String())
	for _, l := range firstLines {
		assert.NotContains(t, secondLines, l, "a point printed by the first run is not printed again")
	}
}
