package metricsclient

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/client/metricstest"
)

func TestBlockWaitsForRoomAndLosesNothing(t *testing.T) {
	srv := metricstest.NewServer(t)
	resume := srv.Pause()
	defer resume()
	cl := NewFromConn(srv.Conn(), WithFlushInterval(time.Hour), WithBufferSize(4), WithBatchSize(2))
	h := cl.Histogram("h")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			h.Observe(float64(i))
		}
	}()
	// the flusher holds one batch at the paused server and the buffer is full: the recorder waits
	require.Eventually(t, func() bool { return cl.pending.Load() == 4 }, 5*time.Second, time.Millisecond)
	select {
	case <-done:
		t.Fatal("Observe returned with a full buffer under Block")
	default:
	}
	resume()
	<-done
	require.NoError(t, cl.Close(context.Background()))
	assert.Len(t, srv.Observations("h", nil), 20)
	assert.Zero(t, cl.Stats().Dropped)
}
