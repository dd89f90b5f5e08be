//go:generate go tool mdatagen metadata.yaml

// Package statsdexporter sends metrics to a StatsD server over UDP or TCP:
// counters as increments, gauges, and histograms as aggregates or weighted
// observations, with tags in the DogStatsD, InfluxDB or Graphite dialect.
package statsdexporter // import "github.com/metricsmodule/metricsmodule/exporter/statsdexporter"
