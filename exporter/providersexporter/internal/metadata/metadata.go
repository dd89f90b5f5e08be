// Package metadata holds the component type and stability of the exporter,
// in the shape mdatagen generates (written by hand: see metadata.yaml).
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	// Type is the component type of the exporter.
	Type = component.MustNewType("providers")
	// ScopeName is the instrumentation scope of the exporter's telemetry.
	ScopeName = "github.com/metricsmodule/metricsmodule/exporter/providersexporter"
)

const (
	// MetricsStability is the stability of the metrics signal.
	MetricsStability = component.StabilityLevelAlpha
)
