// Package childcollector runs the distribution's collector in a child
// process of the test binary, for tests that kill (SIGKILL), stop and
// restart collectors: the test binary re-executes itself, and its TestMain
// calls RunIfChild, which runs a collector instead of the tests.
package childcollector // import "github.com/metricsmodule/metricsmodule/test/childcollector"

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
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
)

// ConfigsEnv carries the child's config URIs (a JSON list, merged in
// order): when it is set, RunIfChild runs a collector instead of the tests.
const ConfigsEnv = "METRICSMODULE_CHILD_COLLECTOR_CONFIGS"

// RunIfChild runs a collector with factories (test/e2e.Components) and
// converters (none when nil) until SIGTERM and exits the process when the
// test binary was started as a child (ConfigsEnv set); otherwise it returns
// at once. Call it first in TestMain.
func RunIfChild(factories func() (otelcol.Factories, error), converters []confmap.ConverterFactory) {
	raw := os.Getenv(ConfigsEnv)
	if raw == "" {
		return
	}
	os.Exit(runChild(raw, factories, converters))
}

func runChild(raw string, factories func() (otelcol.Factories, error), converters []confmap.ConverterFactory) int {
	var uris []string
	if err := json.Unmarshal([]byte(raw), &uris); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ConfigsEnv, err)
		return 2
	}
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-metrics", Version: "test-child"},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:               uris,
			ProviderFactories:  []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
			ConverterFactories: converters,
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

// Service is a gRPC service the child must serve (grpc.health.v1) before
// it counts as started.
type Service struct {
	// Addr is host:port of the gRPC server.
	Addr string
	// Name is the health service name, e.g. "metricsmodule.v1.MetricsService".
	Name string
}

// Spec is one way to run the child: its config and environment.
type Spec struct {
	// URIs are the config URIs (file:ABSOLUTE-PATH, yaml:..., env:...),
	// merged in order. A file path relative to the test's directory is
	// made absolute.
	URIs []string
	// Env is added to the test's environment.
	Env []string
	// Serving are the services waited for.
	Serving []Service
}

// Options configure a Proc.
type Options struct {
	// Spec returns the config to run with. It is called before the first
	// start and again when the first start failed because a port it picked
	// was taken meanwhile (free ports are only probed): pick new ports
	// there. A restart keeps the last spec (clients keep their addresses)
	// and retries it.
	Spec func() Spec
	// Dir is the child's working directory (relative paths of its config);
	// default: the test's.
	Dir string
	// StartTimeout bounds each start (default 90s).
	StartTimeout time.Duration
}

// Proc is a collector in a child process; Start, Stop and Start again.
type Proc struct {
	t       testing.TB
	opts    Options
	spec    Spec
	started bool // a start succeeded: restarts keep the spec

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *Buffer
	exited chan struct{} // closed when cmd ended
}

// New returns a child collector, not yet started; it is killed when the
// test ends.
func New(t testing.TB, opts Options) *Proc {
	t.Helper()
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 90 * time.Second
	}
	return &Proc{t: t, opts: opts}
}

// Spec returns the spec in force (the last one started or prepared).
func (p *Proc) Spec() Spec { return p.spec }

// Start runs the collector and waits until every service of its spec is
// serving. A port taken by another process before the child bound it makes
// the child exit: it is started again, on new ports (Options.Spec) the
// first time, on the same ones on a restart; at most 5 attempts.
func (p *Proc) Start() {
	p.t.Helper()
	if !p.started {
		p.spec = p.opts.Spec()
	}
	for attempt := 1; ; attempt++ {
		if p.tryStart() {
			p.started = true
			return
		}
		out := p.Output()
		require.Less(p.t, attempt, 5, "collector did not start: %s", out)
		require.Contains(p.t, out, "address already in use", "collector exited: %s", out)
		if !p.started {
			p.spec = p.opts.Spec()
		}
	}
}

// tryStart starts the child; false when it exited before serving.
func (p *Proc) tryStart() bool {
	p.t.Helper()
	self, err := os.Executable()
	require.NoError(p.t, err)
	abs := make([]string, len(p.spec.URIs))
	for i, u := range p.spec.URIs {
		abs[i] = u
		if path, ok := strings.CutPrefix(u, "file:"); ok && !filepath.IsAbs(path) {
			full, err := filepath.Abs(path)
			require.NoError(p.t, err)
			abs[i] = "file:" + full
		}
	}
	uris, err := json.Marshal(abs)
	require.NoError(p.t, err)
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), p.spec.Env...), ConfigsEnv+"="+string(uris))
	cmd.Dir = p.opts.Dir
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(p.t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.out, p.exited = cmd, out, exited
	p.mu.Unlock()
	p.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for _, svc := range p.spec.Serving {
		conn, err := grpc.NewClient(svc.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(p.t, err)
		hc := healthpb.NewHealthClient(conn)
		gone := false
		require.Eventually(p.t, func() bool {
			select {
			case <-exited:
				gone = true
				return true
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc.Name})
			// a server with an authenticator refuses the anonymous health check: it is up
			return (err == nil && r.Status == healthpb.HealthCheckResponse_SERVING) || status.Code(err) == codes.Unauthenticated
		}, p.opts.StartTimeout, 20*time.Millisecond, "collector did not serve %s on %s: %s", svc.Name, svc.Addr, out)
		_ = conn.Close()
		if gone {
			return false
		}
	}
	return true
}

// Stop sends sig (SIGKILL, SIGTERM) and waits until the child exited.
func (p *Proc) Stop(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	require.NotNil(p.t, cmd, "Stop before Start")
	require.NoError(p.t, cmd.Process.Signal(sig))
	<-exited
}

// Pid is the process id of the running (or last) child.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Exited is closed when the running (or last) child has exited.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Output is what the running (or last) child printed.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// Buffer is a byte buffer safe for a child's stdout and stderr.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
