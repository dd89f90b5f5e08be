// Package query answers PromQL queries: over the embedded store with the real
// Prometheus engine (limits, statistics, a step-aligned results cache), or,
// when a remote endpoint is configured, through a Prometheus-compatible HTTP
// API (Prometheus, Mimir, Thanos, VictoriaMetrics).
//
// Every query is governed before and during evaluation. Before: the parsed
// expression is walked along the engine's evaluation grids (cost.go) and
// refused over max_range_steps, max_subquery_steps or max_subquery_points
// with a *LimitError naming the key, the value and the fix; evaluation times
// must lie in [MinTime, MaxTime]. During: at most max_concurrent queries
// evaluate, max_queued more wait until their deadline (limiter.go), and the
// engine runs with the caller's context bounded by the query's timeout.
//
// Why the subquery bounds come first: the Prometheus v0.316 engine allocates
// 16 bytes of per-step statistics for every subquery step before evaluating
// it, and walks them in loops that do not check the context; the
// step-invariant copy loop (vector(1) inside a subquery) checks only
// max_samples; range-vector functions over a subquery check the context once
// per series, so a series' work is bounded by max_subquery_points (about
// 1 s for quantile_over_time at the default on this project's 2-core VM).
package query
