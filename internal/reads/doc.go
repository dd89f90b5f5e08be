// Package reads answers the read methods of MetricsService, QueryMetrics and
// GetMetrics: it validates a request, runs it and returns the API answer, or
// an *Error (a refused field or a read over a configured bound) or a
// *query.Error (a failed query), never a gRPC status; the receiver maps
// those in one place.
//
// QueryMetrics is a PromQL query through the query engine (package query).
// GetMetrics without an aggregation reads raw samples straight from the
// store, a page at a time in key order (the metric name, then the other
// labels): from the page cursor, metric name by metric name, the labels of
// the matching series in the store's index go through a bounded heap that
// keeps the page_size smallest keys, and only those series' samples in the
// time range are read, so a page costs its own series plus the index
// entries of the names it touches, wherever it lies (page.go, walk.go,
// samples.go). An aggregation, and every read of a remote backend
// (query.remote.endpoint), is a PromQL query paged over its answer
// (promql.go). Both hold one of the query engine's evaluation slots
// (query.max_concurrent) for their work, bounded by query.timeout.
package reads
