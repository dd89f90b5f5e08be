//go:generate go tool mdatagen metadata.yaml

// Package metricsstoreprocessor keeps every batch of its pipeline in the
// metrics_store extension (store and stream hub) before passing it on, and
// makes it readable only once the rest of the pipeline accepted it. Place it
// before the batch processor: then an acknowledged request is readable as
// soon as the receiver answers.
package metricsstoreprocessor // import "github.com/metricsmodule/metricsmodule/processor/metricsstoreprocessor"
