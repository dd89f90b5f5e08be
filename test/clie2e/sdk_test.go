package clie2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// latestTotal is a counter (or histogram _count) series' newest raw sample:
// counters and histograms resume from the stored state after a restart, so
// the values only go up, across the restart too, and the newest is the
// whole total.
func latestTotal(t *testing.T, samples []*pb.Sample) float64 {
	t.Helper()
	require.NotEmpty(t, samples)
	for i := 1; i < len(samples); i++ {
		require.GreaterOrEqual(t, samples[i].Value, samples[i-1].Value, "the counter goes down at %s", samples[i].Timestamp.AsTime())
	}
	return samples[len(samples)-1].Value
}

// TestSDKCountersExactAcrossACollectorRestart records counters through the
// SDK while the collector is stopped and started again: the SDK retries the
// batches the stopped collector refused, with their request ids, and every
// counter ends exact.
//
// SIGTERM: the collector finishes the calls it runs (graceful stop) and
// refuses the rest. SIGKILL: nothing acknowledged is lost (the WAL), and a
// batch the store committed whose answer the kill swallowed is retried with
// its request id against a collector that replayed the dedup journal (written
// after the commit, before the answer): it is answered as a duplicate. Every
// counter is exact under both. (What remains is a kill landing between the
// WAL append and the journal append of one batch, a few microseconds per
// batch; see the receiver README.)
//
// The third case makes the lost answer certain rather than lucky: the SDK's
// connection turns deaf (what the collector sends is dropped), the test waits
// until the dedup journal grows (a batch was stored and journaled, and its
// answer is on the way), then kills the collector. The SDK must see that
// batch answered as a duplicate after the restart.
func TestSDKCountersExactAcrossACollectorRestart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sig        syscall.Signal
		loseAnswer bool
	}{
		{name: "terminated", sig: syscall.SIGTERM},
		{name: "killed", sig: syscall.SIGKILL},
		{name: "killed with a stored batch's answer lost", sig: syscall.SIGKILL, loseAnswer: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testSDKAcrossRestart(t, tc.sig, tc.loseAnswer) })
	}
}

// deafConn drops what the server sends once it is deaf, until it is closed.
type deafConn struct {
	net.Conn
	deaf   atomic.Bool
	closed chan struct{}
	once   sync.Once
}

func (c *deafConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.deaf.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *deafConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// deafDialer dials connections that silence can turn deaf.
type deafDialer struct {
	mu    sync.Mutex
	conns []*deafConn
}

func (d *deafDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	dc := &deafConn{Conn: c, closed: make(chan struct{})}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.conns = append(d.conns, dc)
	return dc, nil
}

// silence makes the open connections deaf (new ones are not).
func (d *deafDialer) silence() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.deaf.Store(true)
	}
}

// hangUp closes the deaf connections.
func (d *deafDialer) hangUp() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		if c.deaf.Load() {
			_ = c.Close()
		}
	}
}

func testSDKAcrossRestart(t *testing.T, killSignal syscall.Signal, loseAnswer bool) {
	c := newCollector(t)
	c.start()
	ctx := context.Background()
	var errs []error
	var errMu sync.Mutex
	dialer := &deafDialer{}
	cl, err := metricsclient.New(ctx, c.ingest,
		metricsclient.WithDialOptions(grpc.WithContextDialer(dialer.dial)),
		metricsclient.WithResource(map[string]string{"service.name": "sdk-e2e"}),
		metricsclient.WithFlushInterval(20*time.Millisecond),
		metricsclient.WithRetry(metricsclient.RetryPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, MaxElapsed: 2 * time.Minute}),
		metricsclient.WithCallTimeout(5*time.Second),
		metricsclient.WithErrorHandler(func(err error) {
			errMu.Lock()
			defer errMu.Unlock()
			errs = append(errs, err)
		}))
	require.NoError(t, err)
	requests := cl.Counter("sdk_e2e_requests_total", metricsclient.WithLabels("worker"))
	latency := cl.Timer("sdk_e2e_latency_seconds", metricsclient.WithLabels("worker"))

	const workers = 4
	counts := make([]atomic.Int64, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			req := requests.With(strconv.Itoa(w))
			lat := latency.With(strconv.Itoa(w))
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					req.Add(1)
					lat.Observe(time.Millisecond)
					counts[w].Add(1)
				}
			}
		})
	}
	batchesAbove := func(n uint64) func() bool { return func() bool { return cl.Stats().Batches >= n } }
	require.Eventually(t, batchesAbove(20), time.Minute, 5*time.Millisecond)

	// stop the collector in the middle of the records; the SDK's batches fail and are retried
	if loseAnswer {
		journal := filepath.Join(c.dir, "dedup.journal")
		size := func() int64 {
			st, err := os.Stat(journal)
			require.NoError(t, err)
			return st.Size()
		}
		dialer.silence()
		before := size()
		// a batch stored and journaled after the silence: its answer is lost
		require.Eventually(t, func() bool { return size() > before }, time.Minute, time.Millisecond)
	}
	c.stop(killSignal)
	dialer.hangUp()
	require.Eventually(t, func() bool { return cl.Stats().Retries > 0 }, time.Minute, 5*time.Millisecond)
	c.start()
	after := cl.Stats().Batches
	require.Eventually(t, batchesAbove(after+20), time.Minute, 5*time.Millisecond)
	close(stop)
	wg.Wait()
	require.NoError(t, cl.Close(ctx))
	st := cl.Stats()
	t.Logf("SDK stats: %+v", st)
	assert.Zero(t, st.Refused, "no batch given up")
	assert.Zero(t, st.Dropped)
	if loseAnswer {
		assert.Positive(t, st.Duplicates, "the batch whose answer was lost is answered as a duplicate after the restart")
	}
	errMu.Lock()
	assert.Empty(t, errs)
	errMu.Unlock()

	// every worker's counter is exact, read back from the store
	q, err := metricsclient.New(ctx, c.ingest)
	require.NoError(t, err)
	defer q.Close(ctx)
	resp, err := q.Query(ctx, `sdk_e2e_requests_total[1h]`, time.Now().Add(10*time.Second))
	require.NoError(t, err)
	require.Len(t, resp.Series, workers)
	check := func(what string, series []*pb.Series) {
		require.Len(t, series, workers, what)
		for _, s := range series {
			w, err := strconv.Atoi(s.Labels["worker"])
			require.NoError(t, err)
			want, got := float64(counts[w].Load()), latestTotal(t, s.Samples)
			assert.Equal(t, want, got, "%s of worker %d after %s (less: acknowledged increments lost; more: a retry counted twice)", what, w, killSignal)
		}
	}
	check("counter", resp.Series)
	// and the timers' observation counts
	resp, err = q.Query(ctx, `sdk_e2e_latency_seconds_count[1h]`, time.Now().Add(10*time.Second))
	require.NoError(t, err)
	check("timer count", resp.Series)
}
