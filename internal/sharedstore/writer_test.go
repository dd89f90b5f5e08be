package sharedstore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// backend is a fake remote-write endpoint answering with code.
type backend struct {
	mu   sync.Mutex
	code int
	got  []prompb.WriteRequest
	hdr  http.Header
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	dec, err := snappy.Decode(nil, raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(dec); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, req)
	b.hdr = r.Header.Clone()
	if b.code != 0 {
		http.Error(w, "nope", b.code)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func newTestWriter(t *testing.T, url string) *Writer {
	t.Helper()
	c := validConfig()
	c.WriteEndpoint = url
	c.Headers = map[string]string{"X-Scope-OrgID": "team"}
	c.Timeout = 5 * time.Second
	w, err := NewWriter(c, zap.NewNop())
	require.NoError(t, err)
	return w
}

func TestWriteSendsTheStagedSamplesAndMetadata(t *testing.T) {
	be := &backend{}
	srv := httptest.NewServer(be)
	defer srv.Close()
	w := newTestWriter(t, srv.URL)

	b := w.NewBatch()
	b.Sample(labels.FromStrings("__name__", "req_total", "collector_instance", "node-a", "method", "GET"), 1000, 3, nil, nil, metadata.Metadata{Type: "counter", Unit: "1"})
	b.Sample(labels.FromStrings("__name__", "lat_bucket", "le", "+Inf"), 1000, 2, nil, nil, metadata.Metadata{Type: "histogram"})
	b.Sample(labels.FromStrings("__name__", "temp"), 1000, 20, nil, nil, metadata.Metadata{})
	require.NoError(t, w.Write(context.Background(), b))

	require.Len(t, be.got, 1)
	req := be.got[0]
	require.Len(t, req.Timeseries, 3)
	assert.Equal(t, []prompb.Label{{Name: "__name__", Value: "req_total"}, {Name: "collector_instance", Value: "node-a"}, {Name: "method", Value: "GET"}},
		req.Timeseries[0].Labels)
	assert.Equal(t, []prompb.Sample{{Timestamp: 1000, Value: 3}}, req.Timeseries[0].Samples)
	assert.Equal(t, []prompb.Label{{Name: "__name__", Value: "temp"}}, req.Timeseries[2].Labels)
	assert.Equal(t, []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat"},
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "req_total", Unit: "1"},
	}, req.Metadata)
	assert.Equal(t, "team", be.hdr.Get("X-Scope-OrgID"))
	assert.Equal(t, "snappy", be.hdr.Get("Content-Encoding"))
	samples, refused := w.Stats()
	assert.Equal(t, int64(3), samples)
	assert.Equal(t, int64(0), refused)
}

func TestWriteErrorsSayWhetherToRetry(t *testing.T) {
	ls := labels.FromStrings("__name__", "m")
	tests := []struct {
		name      string
		code      int
		retryable bool
	}{
		{"bad data", http.StatusBadRequest, false},
		{"unauthorized", http.StatusUnauthorized, false},
		{"overloaded", http.StatusTooManyRequests, true},
		{"backend error", http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &backend{code: tt.code}
			srv := httptest.NewServer(be)
			defer srv.Close()
			w := newTestWriter(t, srv.URL)
			b := w.NewBatch()
			b.Sample(ls, 1, 1, nil, nil, metadata.Metadata{})
			err := w.Write(context.Background(), b)
			var we *WriteError
			require.ErrorAs(t, err, &we)
			assert.Equal(t, tt.code, we.StatusCode)
			assert.Equal(t, tt.retryable, we.Retryable)
			assert.Contains(t, err.Error(), "nope")
			_, refused := w.Stats()
			assert.Equal(t, int64(1), refused)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		w := newTestWriter(t, url)
		b := w.NewBatch()
		b.Sample(ls, 1, 1, nil, nil, metadata.Metadata{})
		var we *WriteError
		require.ErrorAs(t, w.Write(context.Background(), b), &we)
		assert.True(t, we.Retryable)
		assert.Zero(t, we.StatusCode)
		assert.Contains(t, we.Error(), "did not accept the batch")
	})
}

func TestEmptyBatchIsNotSent(t *testing.T) {
	be := &backend{}
	srv := httptest.NewServer(be)
	defer srv.Close()
	w := newTestWriter(t, srv.URL)
	require.NoError(t, w.Write(context.Background(), w.NewBatch()))
	assert.Empty(t, be.got)
}

// TestNativeHistogramsAreRefusedUnlessTheBackendKeepsThem: a backend that
// answers OK and drops native histograms would break "OK means kept".
func TestNativeHistogramsAreRefusedUnlessTheBackendKeepsThem(t *testing.T) {
	be := &backend{}
	srv := httptest.NewServer(be)
	defer srv.Close()
	h := &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
	w := newTestWriter(t, srv.URL)
	b := w.NewBatch()
	b.Sample(labels.FromStrings("__name__", "lat"), 1, 0, h, nil, metadata.Metadata{Type: "histogram"})
	var we *WriteError
	require.ErrorAs(t, w.Write(context.Background(), b), &we)
	assert.False(t, we.Retryable)
	assert.Contains(t, we.Error(), "shared.native_histograms")
	assert.Empty(t, be.got, "not sent")

	c := w.Config()
	c.NativeHistograms = true
	w2, err := NewWriter(c, zap.NewNop())
	require.NoError(t, err)
	b = w2.NewBatch()
	b.Sample(labels.FromStrings("__name__", "lat"), 1, 0, h, nil, metadata.Metadata{Type: "histogram"})
	require.NoError(t, w2.Write(context.Background(), b))
	require.Len(t, be.got, 1)
	assert.Len(t, be.got[0].Timeseries[0].Histograms, 1)
}

// TestAnOutageIsLoggedOnceAndItsEnd: the writer logs when the backend stops
// accepting batches and when it accepts them again, not per batch.
func TestAnOutageIsLoggedOnceAndItsEnd(t *testing.T) {
	be := &backend{code: http.StatusServiceUnavailable}
	srv := httptest.NewServer(be)
	defer srv.Close()
	core, logs := observer.New(zap.InfoLevel)
	c := validConfig()
	c.WriteEndpoint = srv.URL
	w, err := NewWriter(c, zap.New(core))
	require.NoError(t, err)
	write := func() error {
		b := w.NewBatch()
		b.Sample(labels.FromStrings("__name__", "m"), 1, 1, nil, nil, metadata.Metadata{})
		return w.Write(context.Background(), b)
	}
	require.Error(t, write())
	require.Error(t, write())
	be.mu.Lock()
	be.code = 0
	be.mu.Unlock()
	require.NoError(t, write())
	require.NoError(t, write())
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	assert.Equal(t, []string{
		"The shared store does not accept batches: writes are refused until it does",
		"The shared store accepts batches again",
	}, msgs)
}
