// Package metadata holds the component type and stability of the receiver,
// in the shape mdatagen generates (written by hand: see metadata.yaml).
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	// Type is the component type of the receiver.
	Type = component.MustNewType("prometheus_remote_write")
	// ScopeName is the instrumentation scope of the receiver's telemetry.
	ScopeName = "github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver"
)

const (
	// MetricsStability is the stability of the metrics signal.
	MetricsStability = component.StabilityLevelAlpha
)
