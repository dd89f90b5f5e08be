// Package clie2e drives metricsctl (built into a temp dir, run as a
// subprocess) and the Go SDK against a real collector: the distribution's
// components in a child process of the test binary, which the tests stop and
// restart.
package clie2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/test/childcollector"
	"github.com/metricsmodule/metricsmodule/test/e2e"
)

// childBaseEnv names the base config of the child (default testdata/config.yaml).
const childBaseEnv = "METRICSMODULE_CLIE2E_BASE_CONFIG"

// ctlPath is the metricsctl binary built for the tests.
var ctlPath string

func TestMain(m *testing.M) {
	childcollector.RunIfChild(e2e.Components, e2e.ConverterFactories())
	dir, err := os.MkdirTemp("", "metricsctl-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctlPath = filepath.Join(dir, "metricsctl")
	build := exec.Command("go", "build", "-o", ctlPath, "github.com/metricsmodule/metricsmodule/cmd/metricsctl")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build metricsctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// collector is a collector in a child process over one data directory.
type collector struct {
	t                 *testing.T
	dir               string
	cfgPath           string
	ingest, mgmt, api string
	proc              *childcollector.Proc
	// env is added to the child's environment; childBaseEnv replaces its
	// base config.
	env []string
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	c := &collector{t: t, dir: dir, cfgPath: filepath.Join(dir, "overrides.yaml")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "storage"), 0o700))
	c.writeConfig()
	first := true
	c.proc = childcollector.New(t, childcollector.Options{Spec: func() childcollector.Spec {
		if !first { // a port was taken: new ones
			c.writeConfig()
		}
		first = false
		base := filepath.Join("..", "..", "testdata", "config.yaml")
		for _, kv := range c.env {
			if b, ok := strings.CutPrefix(kv, childBaseEnv+"="); ok {
				base = b
			}
		}
		return childcollector.Spec{
			URIs: []string{"file:" + base, "file:" + c.cfgPath},
			Env:  c.env,
			Serving: []childcollector.Service{
				{Addr: c.ingest, Name: "metricsmodule.v1.MetricsService"},
				{Addr: c.mgmt, Name: "metricsmodule.v1.MetricsManagementService"},
			},
		}
	}})
	return c
}

// writeConfig picks free ports and writes the overrides.
func (c *collector) writeConfig() {
	t := c.t
	c.ingest, c.mgmt, c.api = freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
receivers:
  metrics_service:
    endpoint: %s
    prometheus_api:
      endpoint: %s
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
  prometheus_remote_write:
    endpoint: %s
extensions:
  metrics_store:
    store:
      path: %s
  health_check:
    endpoint: %s
  file_storage:
    directory: %s
  metrics_management:
    endpoint: %s
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
`, c.ingest, c.api, freePort(t), freePort(t), freePort(t), filepath.Join(c.dir, "tsdb"), freePort(t), filepath.Join(c.dir, "storage"), c.mgmt)
	require.NoError(t, os.WriteFile(c.cfgPath, []byte(cfg), 0o600))
}

// start runs the collector and waits until both services serve. A port
// taken meanwhile by another process (free ports are only probed) is
// retried: with new ports on the first start, with the same ones on a
// restart (the clients under test keep their addresses).
func (c *collector) start() {
	c.t.Helper()
	c.proc.Start()
}

// stop ends the collector with sig and waits for it.
func (c *collector) stop(sig syscall.Signal) {
	c.t.Helper()
	c.proc.Stop(sig)
}

// ctlResult is the outcome of one metricsctl run.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// ctl runs metricsctl against c with stdin and waits for it (at most 2 minutes).
func (c *collector) ctl(stdin string, args ...string) ctlResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.ctlCommand(ctx, args...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(c.t, ok, "metricsctl %v: %v", args, err)
		code = ee.ExitCode()
	}
	return ctlResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (c *collector) ctlCommand(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--config", filepath.Join(c.t.TempDir(), "config.yaml"), "--endpoint", c.ingest, "--management-endpoint", c.mgmt}, args...)
	return exec.CommandContext(ctx, ctlPath, full...)
}

// TestStartRetriesWhenAPortWasTaken: another process took a probed port
// before the collector bound it; the first start retries with new ports.
func TestStartRetriesWhenAPortWasTaken(t *testing.T) {
	c := newCollector(t)
	taken, err := net.Listen("tcp", c.ingest)
	require.NoError(t, err)
	defer taken.Close()
	first := c.ingest
	c.start()
	require.NotEqual(t, first, c.ingest)
	r := c.ctl("", "record", "e2e_port_total", "1")
	require.Equal(t, 0, r.code, r.stderr)
}
