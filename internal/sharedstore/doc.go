// Package sharedstore is the shared store mode of a fleet of collectors:
// every node writes what it ingests to one Prometheus-compatible
// remote-write backend (VictoriaMetrics, Prometheus with its remote-write
// receiver, Mimir, ...), synchronously, before the batch is acknowledged,
// and answers reads from that backend's query API, so that every node
// answers for the whole fleet.
//
// The running totals a node builds from the increments it receives
// (the metrics_service receiver's cumulative counters, histograms and
// summaries) carry the node's identity (Config.InstanceLabel, by default
// collector_instance): each counts what that node received, and the
// fleet's total is their sum, as Prometheus sums the counters of the
// instances of one job. Series whose sender keeps the total (OTLP
// cumulative, Prometheus remote write) and gauges carry no identity: their
// points from any node are one series. Reads aggregate the label away (package reads:
// MergeSeries; PromQL: sum without (collector_instance) (...)).
package sharedstore // import "github.com/metricsmodule/metricsmodule/internal/sharedstore"
