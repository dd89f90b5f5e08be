package promapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
)

// Remote-read limits. They are Prometheus' own defaults
// (--storage.remote.read-sample-limit, -concurrent-limit,
// -max-bytes-in-frame); they are constants, not configuration.
const (
	// RemoteReadSampleLimit is the most samples one query of a SAMPLES
	// remote-read response may hold (the same default as query.max_samples);
	// above it the request is refused with 400.
	RemoteReadSampleLimit = 50_000_000
	// RemoteReadConcurrency is the most remote-read requests served at
	// once; further requests wait for a slot until their context ends.
	RemoteReadConcurrency = 10
	// RemoteReadMaxBytesInFrame is the size of one frame of a
	// STREAMED_XOR_CHUNKS response.
	RemoteReadMaxBytesInFrame = 1 << 20
)

// routes registers the remote-read and federation endpoints on mux.
func (a *api) routes(mux *http.ServeMux) {
	mux.Handle("/api/v1/read", newReadHandler(a.queryable(), RemoteReadSampleLimit))
	mux.HandleFunc("/federate", a.federate)
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
func newReadHandler(q storage.Queryable, sampleLimit int) http.Handler {
	cfg := config.DefaultConfig
	return remote.NewReadHandler(slog.New(slog.DiscardHandler), prometheus.NewRegistry(),
		sampleAndChunk(q), func() config.Config { return cfg },
		sampleLimit, RemoteReadConcurrency, RemoteReadMaxBytesInFrame)
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
