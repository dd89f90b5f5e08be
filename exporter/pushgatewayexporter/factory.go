package pushgatewayexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/metadata"
)

// DefaultEndpoint is the Pushgateway URL unless configured.
const DefaultEndpoint = "http://localhost:9091"

// NewFactory returns the factory of the pushgateway exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Endpoint = DefaultEndpoint
	client.Timeout = exporterhelper.NewDefaultTimeoutConfig().Timeout
	queue := exporterhelper.NewDefaultQueueConfig()
	// One consumer keeps pushes in order: a push carries the whole state of
	// its groups, and an older snapshot must not overwrite a newer one.
	queue.NumConsumers = 1
	return &Config{
		ClientConfig:      client,
		QueueConfig:       configoptional.Some(queue),
		RetryConfig:       configretry.NewDefaultBackOffConfig(),
		Method:            MethodPut,
		AddMetricSuffixes: true,
		MetricExpiration:  5 * time.Minute,
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c := cfg.(*Config)
	exp := newExporter(c, set)
	return exporterhelper.NewMetrics(ctx, set, cfg, exp.pushMetrics,
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		// The timeout of one attempt is the client's timeout, applied by
		// exporterhelper to the context of each push.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: c.ClientConfig.Timeout}),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}
