//go:generate go tool mdatagen metadata.yaml

// Package providersexporter is the last exporter of a metrics pipeline that
// feeds the dynamic providers of the metrics_management extension: it hands
// every batch to the extension's routing table, a lock-free snapshot of the
// running providers, so any receiver's data can reach them.
package providersexporter // import "github.com/metricsmodule/metricsmodule/exporter/providersexporter"
