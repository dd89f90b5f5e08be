// Package metadata holds the component type and stability of the extension,
// in the shape mdatagen generates (written by hand: see metadata.yaml).
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	// Type is the component type of the extension.
	Type = component.MustNewType("metrics_store")
	// ScopeName is the instrumentation scope of the extension's telemetry.
	ScopeName = "github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
)

const (
	// ExtensionStability is the stability of the extension.
	ExtensionStability = component.StabilityLevelAlpha
)
