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
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/test/e2e"
)

// childConfigEnv makes the test binary run a collector on the overrides
// file it names instead of the tests.
const childConfigEnv = "METRICSMODULE_CLIE2E_COLLECTOR_CONFIG"

// childBaseEnv names the base config of the child (default testdata/config.yaml).
const childBaseEnv = "METRICSMODULE_CLIE2E_BASE_CONFIG"

// ctlPath is the metricsctl binary built for the tests.
var ctlPath string

func TestMain(m *testing.M) {
	if path := os.Getenv(childConfigEnv); path != "" {
		os.Exit(runChildCollector(path))
	}
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

func runChildCollector(path string) int {
	base := filepath.Join("..", "..", "testdata", "config.yaml")
	if b := os.Getenv(childBaseEnv); b != "" {
		base = b
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-metrics", Version: "clie2e-child"},
		Factories: e2e.Components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:               []string{"file:" + base, "file:" + path},
			ProviderFactories:  []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
			ConverterFactories: e2e.ConverterFactories(),
		}},
		SkipSettingGRPCLogger: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := col.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
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
	cmd               *exec.Cmd
	exited            chan struct{} // closed when cmd ended
	out               *syncBuffer
	env               []string
	started           bool
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	dir := t.TempDir()
	c := &collector{t: t, dir: dir, cfgPath: filepath.Join(dir, "overrides.yaml")}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "storage"), 0o700))
	c.writeConfig()
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
	for attempt := 1; ; attempt++ {
		if c.tryStart() {
			c.started = true
			return
		}
		require.Less(c.t, attempt, 5, "collector did not start: %s", c.out)
		require.Contains(c.t, c.out.String(), "address already in use", "collector exited: %s", c.out)
		if !c.started {
			c.writeConfig()
		}
	}
}

// tryStart starts the child; false when it exited before serving.
func (c *collector) tryStart() bool {
	c.t.Helper()
	c.out = &syncBuffer{}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(append(os.Environ(), c.env...), childConfigEnv+"="+c.cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	require.NoError(c.t, c.cmd.Start())
	cmd, exited := c.cmd, make(chan struct{})
	c.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for addr, svc := range map[string]string{c.ingest: "metricsmodule.v1.MetricsService", c.mgmt: "metricsmodule.v1.MetricsManagementService"} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(c.t, err)
		hc := healthpb.NewHealthClient(conn)
		gone := false
		require.Eventually(c.t, func() bool {
			select {
			case <-exited:
				gone = true
				return true
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			// a server with an authenticator refuses the anonymous health check: it is up
			return (err == nil && r.Status == healthpb.HealthCheckResponse_SERVING) || status.Code(err) == codes.Unauthenticated
		}, 90*time.Second, 50*time.Millisecond, "collector did not start: %s", c.out)
		_ = conn.Close()
		if gone {
			return false
		}
	}
	return true
}

// stop ends the collector with sig and waits for it.
func (c *collector) stop(sig syscall.Signal) {
	c.t.Helper()
	require.NoError(c.t, c.cmd.Process.Signal(sig))
	<-c.exited
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
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
