// Package datapath is where every pipeline's metrics are kept: the embedded
// store (reads) and the stream hub (StreamMetrics). A Sink stages a batch in
// both before the rest of the pipeline sees it and commits it only when the
// pipeline accepted it, so what is acknowledged is what is stored and
// streamed, and what is refused leaves nothing behind.
//
// The metrics_store extension owns a Sink; the metrics_store processor feeds
// it from any pipeline (OTLP, metrics_service, any receiver of the build);
// the metrics_service receiver reads from it.
package datapath
