// Package metadata holds the component type and stability of the processor,
// in the shape mdatagen generates (written by hand: see metadata.yaml).
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	// Type is the component type of the processor.
	Type = component.MustNewType("metrics_store")
	// ScopeName is the instrumentation scope of the processor's telemetry.
	ScopeName = "github.com/metricsmodule/metricsmodule/processor/metricsstoreprocessor"
)

const (
	// MetricsStability is the stability of the metrics signal.
	MetricsStability = component.StabilityLevelAlpha
)
