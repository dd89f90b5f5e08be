package promapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
)

// Remote-read limits. They are Prometheus' own defaults
// (--storage.remote.read-sample-limit, -concurrent-limit,
// -max-bytes-in-frame): the sample limit and the concurrency are the query
// engine's (query.max_samples, query.max_concurrent), so a remote read can
// hold no more memory than a query.
const (
	// RemoteReadSampleLimit is the sample limit when there is no query
	// engine to take it from.
	RemoteReadSampleLimit = 50_000_000
	// RemoteReadConcurrency is the concurrency when there is no query
	// engine to take it from; further requests wait for a slot until their
	// context ends.
	RemoteReadConcurrency = 2
	// RemoteReadMaxBytesInFrame is the size of one frame of a
	// STREAMED_XOR_CHUNKS response.
	RemoteReadMaxBytesInFrame = 1 << 20
)

// routes registers the remote-read and federation endpoints on mux.
func (a *api) routes(mux *http.ServeMux) {
	samples, concurrency := RemoteReadSampleLimit, RemoteReadConcurrency
	if a.eng != nil {
		samples, concurrency = a.eng.Limits()
	}
	mux.Handle("/api/v1/read", snappyBody(newReadHandler(a.queryable(), samples, concurrency)))
	mux.HandleFunc("/federate", a.federate)
}

// maxReadRequestBytes bounds a remote-read request body, as Prometheus'
// decoder does (32 MiB).
const maxReadRequestBytes = 32 << 20

// snappyBody gives next a snappy-encoded body. Prometheus' read handler
// decodes snappy itself, but the collector's HTTP server (confighttp)
// already decompresses a "Content-Encoding: snappy" body and drops the
// header: a body without the header is encoded again.
func snappyBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "" {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxReadRequestBytes+1))
		if err != nil {
			http.Error(w, fmt.Sprintf("read remote-read request: %v", err), http.StatusBadRequest)
			return
		}
		if len(raw) > maxReadRequestBytes {
			http.Error(w, fmt.Sprintf("remote-read request is larger than %d bytes; split the queries over several requests", maxReadRequestBytes), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(snappy.Encode(nil, raw)))
		r.ContentLength = -1
		r.Header.Set("Content-Encoding", "snappy")
		next.ServeHTTP(w, r)
	})
}

// queryable is the store's, or the engine's when there is no store.
func (a *api) queryable() storage.Queryable {
	if a.st != nil {
		return a.st.Queryable()
	}
	return a.eng.Queryable()
}

// newReadHandler is Prometheus' remote-read handler (SAMPLES and
// STREAMED_XOR_CHUNKS responses) over q, without external labels, with
// sampleLimit samples per query of a SAMPLES response.
func newReadHandler(q storage.Queryable, sampleLimit, concurrency int) http.Handler {
	cfg := config.DefaultConfig
	return remote.NewReadHandler(slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		sampleAndChunk(q), func() config.Config { return cfg },
		sampleLimit, concurrency, RemoteReadMaxBytesInFrame)
}

// sampleAndChunk returns q when it already answers chunk queries (the
// TSDB does), otherwise q with chunk queries encoded from its samples.
func sampleAndChunk(q storage.Queryable) storage.SampleAndChunkQueryable {
	if sc, ok := q.(storage.SampleAndChunkQueryable); ok {
		return sc
	}
	return chunkAdapter{q}
}

type chunkAdapter struct{ storage.Queryable }

func (c chunkAdapter) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := c.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return chunkQuerier{q}, nil
}

type chunkQuerier struct{ storage.Querier }

func (c chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(c.Querier.Select(ctx, sortSeries, hints, ms...))
}
