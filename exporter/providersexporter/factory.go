package providersexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/metricsmodule/metricsmodule/exporter/providersexporter/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/provider"
)

// defaultExtension is the ID of the management extension unless configured.
var defaultExtension = component.MustNewID("metrics_management")

// NewFactory returns the factory of the providers exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Extension: defaultExtension,
		Spool:     configoptional.Default(SpoolConfig{MaxBytes: provider.DefaultSpoolMaxBytes, Sync: string(provider.SpoolSyncBatch)}),
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	e := &providersExporter{cfg: cfg.(*Config), logger: set.Logger}
	// No queue, retry or timeout here: each provider queues, retries and
	// times out on its own, and the routing never blocks.
	return exporterhelper.NewMetrics(ctx, set, cfg, e.consume,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
	)
}
