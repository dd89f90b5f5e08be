package testpeer

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EtcdCluster is a cluster of etcd members (Debian etcd-server, binary
// "etcd") on 127.0.0.1 free ports, each with its own temporary data dir.
type EtcdCluster struct {
	tb      testing.TB
	bin     string
	names   []string
	client  []string
	peer    []string
	dirs    []string
	initial string

	mu    sync.Mutex
	procs []*exec.Cmd
	outs  []*syncBuffer
	done  []chan struct{}
}

// StartEtcdCluster starts an n-member cluster and waits until every member
// answers /health; the members are stopped when the test ends. A member
// that cannot bind its port (taken by another process since FreePort chose
// it) makes it start the cluster again on other ports, up to 3 times.
func StartEtcdCluster(tb testing.TB, n int) *EtcdCluster {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		c, err := startEtcdCluster(tb, n)
		if err == nil {
			return c
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatal(err)
		}
		tb.Logf("etcd cluster did not start (%v); starting it again on other ports", err)
	}
}

func startEtcdCluster(tb testing.TB, n int) (*EtcdCluster, error) {
	tb.Helper()
	c := &EtcdCluster{tb: tb, bin: LookPath(tb, "etcd")}
	base := tb.TempDir()
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		c.names = append(c.names, name)
		c.client = append(c.client, fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb)))
		c.peer = append(c.peer, fmt.Sprintf("http://127.0.0.1:%d", FreePort(tb)))
		c.dirs = append(c.dirs, filepath.Join(base, name))
		initial = append(initial, name+"="+c.peer[i])
	}
	c.initial = strings.Join(initial, ",")
	c.procs, c.outs, c.done = make([]*exec.Cmd, n), make([]*syncBuffer, n), make([]chan struct{}, n)
	tb.Cleanup(c.StopAll)
	for i := range n {
		c.Start(i)
	}
	for i := range n {
		if err := c.waitHealthy(i); err != nil {
			c.StopAll()
			return nil, err
		}
	}
	return c, nil
}

// Endpoints returns the client URLs of every member.
func (c *EtcdCluster) Endpoints() []string { return append([]string(nil), c.client...) }

// Start starts member i (again: it keeps its data dir).
func (c *EtcdCluster) Start(i int) {
	c.tb.Helper()
	cmd := exec.Command(c.bin,
		"--name", c.names[i], "--data-dir", c.dirs[i],
		"--listen-client-urls", c.client[i], "--advertise-client-urls", c.client[i],
		"--listen-peer-urls", c.peer[i], "--initial-advertise-peer-urls", c.peer[i],
		"--initial-cluster", c.initial, "--initial-cluster-state", "new",
		"--initial-cluster-token", "testpeer-etcd", "--log-level", "warn",
		"--heartbeat-interval", "50", "--election-timeout", "500")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.tb.Fatalf("start etcd member %s: %v", c.names[i], err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.mu.Lock()
	c.procs[i], c.outs[i], c.done[i] = cmd, out, done
	c.mu.Unlock()
}

// WaitHealthy waits (up to 30s) until member i answers /health with true.
func (c *EtcdCluster) WaitHealthy(i int) {
	c.tb.Helper()
	if err := c.waitHealthy(i); err != nil {
		c.tb.Fatal(err)
	}
}

func (c *EtcdCluster) waitHealthy(i int) error {
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := hc.Get(c.client[i] + "/health")
		if err == nil {
			var b [256]byte
			n, _ := resp.Body.Read(b[:])
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b[:n]), `"true"`) {
				return nil
			}
		}
		c.mu.Lock()
		done := c.done[i]
		c.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("etcd member %s exited:\n%s", c.names[i], c.Output(i))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("etcd member %s not healthy within 30s:\n%s", c.names[i], c.Output(i))
}

// Kill kills member i (SIGKILL) and waits for it to exit.
func (c *EtcdCluster) Kill(i int) {
	c.mu.Lock()
	cmd, done := c.procs[i], c.done[i]
	c.procs[i] = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// StopAll kills every member.
func (c *EtcdCluster) StopAll() {
	for i := range c.procs {
		c.Kill(i)
	}
}

// Output returns what member i printed.
func (c *EtcdCluster) Output(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outs[i] == nil {
		return ""
	}
	return c.outs[i].String()
}
