package metricsstoreprocessor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
)

// sharedBackend is a remote-write endpoint answering code (0: 204).
func sharedBackend(t *testing.T, code int) (url string, writes *atomic.Int32) {
	t.Helper()
	writes = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writes.Add(1)
		if code != 0 {
			http.Error(w, "refused by test", code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, writes
}

func withShared(url string) func(*metricsstoreextension.Config) {
	return func(c *metricsstoreextension.Config) {
		sc := c.Shared.GetOrInsertDefault()
		sc.WriteEndpoint = url + "/api/v1/write"
		sc.QueryEndpoint = url
		sc.Instance = "node-a"
	}
}

// TestSharedStoreKeepsTheBatchBeforeItIsPassedOn: in shared mode a batch
// is written to the backend (synchronously) and then passed on and stored.
func TestSharedStoreKeepsTheBatchBeforeItIsPassedOn(t *testing.T) {
	url, writes := sharedBackend(t, 0)
	sink := &consumertest.MetricsSink{}
	p, s := startWith(t, sink, withShared(url))
	require.NoError(t, p.ConsumeMetrics(context.Background(), gauge("queue_depth", 3, time.Now())))
	assert.Equal(t, int32(1), writes.Load())
	assert.Equal(t, 1, sink.DataPointCount())
	assert.Equal(t, 1, stored(t, s, "queue_depth"))
	samples, refused := s.Shared().Stats()
	assert.Equal(t, int64(1), samples)
	assert.Zero(t, refused)
}

// TestSharedStoreRefusalFailsTheBatch: a backend that does not accept the
// batch fails it (retryable or permanent, with the gRPC status receivers
// answer) and nothing is passed on or stored.
func TestSharedStoreRefusalFailsTheBatch(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		permanent bool
		want      codes.Code
	}{
		{"backend unavailable", http.StatusServiceUnavailable, false, codes.Unavailable},
		{"backend overloaded", http.StatusTooManyRequests, false, codes.Unavailable},
		{"bad data", http.StatusBadRequest, true, codes.InvalidArgument},
		{"wrong credentials", http.StatusUnauthorized, true, codes.FailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, writes := sharedBackend(t, tt.code)
			sink := &consumertest.MetricsSink{}
			p, s := startWith(t, sink, withShared(url))
			err := p.ConsumeMetrics(context.Background(), gauge("queue_depth", 3, time.Now()))
			require.Error(t, err)
			assert.Equal(t, tt.permanent, consumererror.IsPermanent(err))
			assert.Equal(t, tt.want, status.Code(err))
			assert.Contains(t, err.Error(), "refused by test")
			assert.Contains(t, err.Error(), "shared store")
			assert.Equal(t, int32(1), writes.Load())
			assert.Zero(t, sink.DataPointCount(), "nothing passed on")
			assert.Zero(t, stored(t, s, "queue_depth"), "nothing stored")
		})
	}
}
