// Package metadata holds the component type and stability of the receiver,
// in the shape mdatagen generates (written by hand: see metadata.yaml).
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	// Type is the component type of the receiver.
	Type = component.MustNewType("metrics_service")
	// ScopeName is the instrumentation scope of the receiver's telemetry and
	// of the metrics it emits.
	ScopeName = "github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
)

const (
	// MetricsStability is the stability of the metrics signal.
	MetricsStability = component.StabilityLevelAlpha
)
