// Package metricsclient is the Go SDK of the metricsmodule collector: typed
// instruments (Counter, Gauge, Histogram, Summary, Timer with label sets, in
// the spirit of Prometheus' client_golang) recorded in the background through
// MetricsService.RecordBatchMetrics, plus helpers for queries, streams,
// metric definitions and providers.
//
//	cl, err := metricsclient.New(ctx, "localhost:4320",
//		metricsclient.WithResource(map[string]string{"service.name": "checkout"}))
//	if err != nil { ... }
//	defer cl.Close(ctx) // flushes what is still buffered
//	requests := cl.Counter("http_requests_total", metricsclient.WithLabels("method", "code"))
//	requests.With("GET", "200").Inc()
//	latency := cl.Timer("http_request_duration_seconds", metricsclient.WithLabels("method"))
//	latency.With("GET").Observe(12 * time.Millisecond)
//
// # Recording
//
// Recording is cheap on the application side and never does I/O: counters
// and gauges aggregate in place (an atomic add or store per call, no
// allocation), histogram, summary and timer observations are appended to a
// bounded buffer (WithBufferSize). A background flusher sends what
// accumulated every flush interval (WithFlushInterval), or sooner when the
// buffer fills, in batches of at most WithBatchSize items: a counter series
// is one increment per flush, a gauge its last value, an observed series its
// observations.
//
// When the buffer is full, the backpressure choice applies (WithBackpressure):
// Block waits for the flusher to make room; DropAndCount drops the
// observation and counts it in Stats().Dropped.
//
// # Delivery
//
// Each batch gets an idempotency key (request_id) when it is built, and keeps
// it across its retries: the server remembers request ids for its dedup window
// (metrics_service dedup.window, 10m by default), so a batch whose answer was
// lost is applied exactly once even when it is sent again. Batches refused
// with UNAVAILABLE or RESOURCE_EXHAUSTED (and a lost connection, a deadline)
// are retried with exponential backoff for up to WithRetry's maxElapsed (1m,
// below the dedup window); other refusals are permanent and reported to
// WithErrorHandler. Batches are sent one at a time, in order.
//
// Close flushes what is buffered and waits for it to be acknowledged (or for
// its context to end) before closing the connection.
//
// An application instrumented with client_golang forwards its registry with
// RecordGatherer or GatherEvery.
//
// Importing the package registers the gRPC compressors a stream may use
// (gzip, snappy, zstd and lz4), see client/streamclient.
package metricsclient // import "github.com/metricsmodule/metricsmodule/client/metricsclient"
