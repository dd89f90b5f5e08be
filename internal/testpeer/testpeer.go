// Package testpeer finds and runs the real peers of integration tests
// (prometheus-pushgateway, prometheus, ...): it looks a binary up on PATH,
// skips the test when it is missing (or fails it when REQUIRE_INTEGRATION=1),
// and starts it on a free 127.0.0.1 port, waits until it answers and stops it
// when the test ends.
package testpeer // import "github.com/metricsmodule/metricsmodule/internal/testpeer"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing peer from a
// skipped test into a failed one.
const RequireEnv = "REQUIRE_INTEGRATION"

// Required reports whether integration peers are required (REQUIRE_INTEGRATION=1).
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// LookPath returns the path of the binary name on PATH. When it is missing the
// test is skipped with the reason, or fails when REQUIRE_INTEGRATION=1.
func LookPath(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	reason := fmt.Sprintf("integration peer %q not found on PATH (%v)", name, err)
	if Required() {
		tb.Fatalf("%s=1 but %s; install it (CI: .ci/run)", RequireEnv, reason)
		return ""
	}
	tb.Skip(reason + "; install it to run this test, or set " + RequireEnv + "=1 to make this a failure")
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Config says how to run a peer.
type Config struct {
	// Binary is the name looked up on PATH (see LookPath).
	Binary string
	// Args returns the command line arguments for the listen address
	// ("127.0.0.1:PORT") the peer must serve on.
	Args func(addr string) []string
	// ReadyPath, when set, is an HTTP path (e.g. "/-/ready") that answers 200
	// once the peer is ready. When empty, a TCP connection to the address is
	// enough.
	ReadyPath string
	// StartTimeout bounds the wait for the peer to answer (default 30s).
	StartTimeout time.Duration
	// StopTimeout bounds the wait after SIGTERM before the peer is killed
	// (default 10s).
	StopTimeout time.Duration
	// Dir is the working directory (default: a fresh t.TempDir()).
	Dir string
	// Env is added to the test's environment.
	Env []string
	// Addr, when set, is the 127.0.0.1:PORT to serve on instead of a free
	// port (to restart a peer where its clients expect it).
	Addr string
}

// Peer is a running peer process.
type Peer struct {
	// Addr is the 127.0.0.1:PORT address the peer serves on.
	Addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // exit status, set before done is closed

	stopTimeout time.Duration
}

// Stop stops the peer now (SIGTERM, then SIGKILL after the stop timeout)
// and waits for it to exit.
func (p *Peer) Stop(tb testing.TB) {
	tb.Helper()
	p.stop(tb, p.stopTimeout)
}

// URL returns http://Addr.
func (p *Peer) URL() string { return "http://" + p.Addr }

// Output returns what the peer printed so far (stdout and stderr).
func (p *Peer) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Peer) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start looks the binary up (skipping or failing as LookPath does), starts it
// on a free 127.0.0.1 port and waits until it answers. The peer is stopped
// (SIGTERM, then SIGKILL after StopTimeout) when the test ends; its output is
// logged if the test failed. A port taken between the probe and the start is
// retried on another port.
func Start(tb testing.TB, cfg Config) *Peer {
	tb.Helper()
	path := LookPath(tb, cfg.Binary)
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	var lastErr error
	attempts := 3
	if cfg.Addr != "" {
		attempts = 1
	}
	for attempt := 0; attempt < attempts; attempt++ {
		p, err := startOnce(tb, path, cfg)
		if err == nil {
			return p
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	tb.Fatalf("start %s: %v", cfg.Binary, lastErr)
	return nil
}

var errExited = errors.New("peer exited before it answered")

func startOnce(tb testing.TB, path string, cfg Config) (*Peer, error) {
	tb.Helper()
	addr := cfg.Addr
	if addr == "" {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(tb)))
	}
	var args []string
	if cfg.Args != nil {
		args = cfg.Args(addr)
	}
	p := &Peer{Addr: addr, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Dir = cfg.Dir
	p.cmd.Env = append(os.Environ(), cfg.Env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// Own process group, so that a signal to the test runner's group does not
	// reach the peer before our cleanup does.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	p.stopTimeout = cfg.StopTimeout
	tb.Cleanup(func() { p.stop(tb, cfg.StopTimeout) })

	if err := p.waitReady(cfg); err != nil {
		if p.Exited() {
			return nil, fmt.Errorf("%w (%v); output:\n%s", errExited, p.err, p.Output())
		}
		return nil, fmt.Errorf("%w; output:\n%s", err, p.Output())
	}
	return p, nil
}

func (p *Peer) waitReady(cfg Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		if err := p.probe(ctx, client, cfg.ReadyPath); err == nil {
			return nil
		}
		select {
		case <-p.done:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("peer did not answer on %s within %s", p.Addr, cfg.StartTimeout)
		case <-ticker.C:
		}
	}
}

func (p *Peer) probe(ctx context.Context, client *http.Client, path string) error {
	if path == "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", p.Addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

func (p *Peer) stop(tb testing.TB, timeout time.Duration) {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if tb.Failed() {
		tb.Logf("output of %s:\n%s", p.cmd.Path, p.Output())
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
