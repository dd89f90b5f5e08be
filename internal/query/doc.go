// Package query answers PromQL queries: over the embedded store with the real
// Prometheus engine (limits, statistics, a step-aligned results cache), or,
// when a remote endpoint is configured, through a Prometheus-compatible HTTP
// API (Prometheus, Mimir, Thanos, VictoriaMetrics).
package query
