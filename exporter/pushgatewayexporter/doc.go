//go:generate go tool mdatagen metadata.yaml

// Package pushgatewayexporter pushes metrics to a Prometheus Pushgateway in
// the text exposition format, under a job and grouping labels, with counters
// and histograms kept cumulative (delta input is accumulated).
package pushgatewayexporter // import "github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter"
