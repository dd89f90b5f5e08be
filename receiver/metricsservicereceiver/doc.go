//go:generate go tool mdatagen metadata.yaml

// Package metricsservicereceiver serves the metricsmodule MetricsService over
// gRPC: applications record metrics with RecordMetric and RecordBatchMetrics,
// and the receiver hands them, as pdata, to the next consumer of a metrics
// pipeline, acknowledging only after the pipeline accepted them.
package metricsservicereceiver // import "github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
