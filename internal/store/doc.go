// Package store is the embedded time-series store: a Prometheus TSDB (WAL,
// head, blocks, retention) that receives every batch the pipeline accepted,
// translated with Prometheus' own OTLP translator, in the same all-or-nothing
// step as the hand-off to the pipeline.
package store
