package metricsstoreprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/metricsmodule/metricsmodule/processor/metricsstoreprocessor/internal/metadata"
)

// defaultExtension is the extension the processor writes to unless configured.
var defaultExtension = component.MustNewID("metrics_store")

// NewFactory returns the factory of the metrics_store processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{Extension: defaultExtension}
}

func createMetrics(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	return newProcessor(cfg.(*Config), set, next), nil
}
