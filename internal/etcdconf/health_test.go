package etcdconf

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHealthLoopMarksDownAndResyncsUntilUpSucceeds: failed probes mark the
// registry degraded; once etcd answers, Up runs at each answer until it
// succeeds, and not again while healthy.
func TestHealthLoopMarksDownAndResyncsUntilUpSucceeds(t *testing.T) {
	var mu sync.Mutex
	probes, downs, ups := 0, 0, 0
	degraded := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		HealthLoop{
			Interval: time.Millisecond, Timeout: time.Second,
			Probe: func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				probes++
				if probes <= 3 {
					return errors.New("etcd does not answer")
				}
				return nil
			},
			Degraded: func() bool { mu.Lock(); defer mu.Unlock(); return degraded },
			Down:     func(error) { mu.Lock(); defer mu.Unlock(); downs++; degraded = true },
			Up: func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				ups++
				if ups == 1 {
					return errors.New("resync failed")
				}
				degraded = false
				return nil
			},
		}.Run(ctx)
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return probes >= 10 }, 5*time.Second, time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 3, downs, "one Down per failed probe")
	assert.Equal(t, 2, ups, "Up again after a failed resync, then not while healthy")
	assert.False(t, degraded)
}
