// Package reads answers the read methods of MetricsService, QueryMetrics and
// GetMetrics: it validates a request, runs it and returns the API answer, or
// an *Error (a refused field) or a *query.Error (a failed query), never a
// gRPC status; the receiver maps those in one place.
//
// QueryMetrics is a PromQL query through the query engine (package query).
// GetMetrics without an aggregation reads raw samples straight from the
// store, a page at a time in series order: one walk over the index entries
// of the matching series keeps the page_size smallest after the page
// cursor, then only their samples in the time range are read, so a page
// costs about its size plus one pass over the matching series' labels
// (page.go). An aggregation, and every read of a remote backend
// (query.remote.endpoint), is a PromQL query paged over its answer
// (promql.go). Both hold one of the query engine's evaluation slots
// (query.max_concurrent) for their work, bounded by query.timeout.
package reads
