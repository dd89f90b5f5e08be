package clie2e

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// counterTotal adds up a counter series' raw samples across the restart of
// the collector: a restarted receiver starts the series again from its first
// increment, so the total is the last value before the largest time gap
// (the restart) plus the last value after it. Within each part the values
// may only go up.
func counterTotal(t *testing.T, samples []*pb.Sample) float64 {
	t.Helper()
	require.NotEmpty(t, samples)
	split, gap := len(samples), time.Duration(0)
	for i := 1; i < len(samples); i++ {
		if d := samples[i].Timestamp.AsTime().Sub(samples[i-1].Timestamp.AsTime()); d > gap {
			split, gap = i, d
		}
	}
	total := 0.0
	for _, part := range [][]*pb.Sample{samples[:split], samples[split:]} {
		for i := 1; i < len(part); i++ {
			require.GreaterOrEqual(t, part[i].Value, part[i-1].Value, "a counter part goes down at %s", part[i].Timestamp.AsTime())
		}
		if len(part) > 0 {
			total += part[len(part)-1].Value
		}
	}
	return total
}

// TestSDKCountersExactAcrossACollectorRestart records counters through the
// SDK while the collector is stopped and started again: the SDK retries the
// batches the stopped collector refused, with their request ids, and every
// counter ends exact.
//
// SIGTERM: the collector finishes the calls it runs (graceful stop) and
// refuses the rest, so every counter is exact. SIGKILL: nothing
// acknowledged is lost (the WAL), and the counters are exact unless the
// kill fell between the store's commit of a batch and the SDK receiving the
// answer: the retry then reaches a collector whose dedup cache (in memory)
// no longer knows the request id. That window is tiny, but not zero, so
// under SIGKILL the test requires no loss and reports an excess.
func TestSDKCountersExactAcrossACollectorRestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) { testSDKAcrossRestart(t, sig) })
	}
}

func testSDKAcrossRestart(t *testing.T, killSignal syscall.Signal) {
	c := newCollector(t)
	c.start()
	ctx := context.Background()
	var errs []error
	var errMu sync.Mutex
	cl, err := metricsclient.New(ctx, c.ingest,
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
	c.stop(killSignal)
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
			want, got := float64(counts[w].Load()), counterTotal(t, s.Samples)
			if killSignal == syscall.SIGTERM {
				assert.Equal(t, want, got, "%s of worker %d", what, w)
				continue
			}
			assert.GreaterOrEqual(t, got, want, "%s of worker %d: acknowledged increments lost", what, w)
			if got != want {
				t.Logf("%s of worker %d: %v more than recorded (a batch committed before SIGKILL whose answer was lost)", what, w, got-want)
			}
		}
	}
	check("counter", resp.Series)
	// and the timers' observation counts
	resp, err = q.Query(ctx, `sdk_e2e_latency_seconds_count[1h]`, time.Now().Add(10*time.Second))
	require.NoError(t, err)
	check("timer count", resp.Series)
}
