//go:generate go tool mdatagen metadata.yaml

// Package metricsstoreextension owns the embedded metrics store (Prometheus
// TSDB) and the stream hub of StreamMetrics. The metrics_store processor
// feeds them from any metrics pipeline; the metrics_service receiver answers
// reads and streams from them.
package metricsstoreextension // import "github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
