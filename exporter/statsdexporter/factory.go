package statsdexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/metadata"
	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/statsd"
)

// Defaults.
const (
	// DefaultEndpoint is the StatsD server unless configured.
	DefaultEndpoint = "localhost:8125"
	// DefaultMaxPacketSize fits a datagram in a 1500-byte Ethernet MTU
	// with room for IP/UDP headers and tunnels (the DogStatsD default).
	DefaultMaxPacketSize = 1432
)

// NewFactory returns the factory of the statsd exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	queue := exporterhelper.NewDefaultQueueConfig()
	// One consumer keeps batches in order, so that increments of cumulative
	// series are computed against the previous point.
	queue.NumConsumers = 1
	return &Config{
		Endpoint:      DefaultEndpoint,
		Transport:     TransportUDP,
		TagFormat:     string(statsd.TagFormatDogStatsD),
		SampleRate:    1,
		MaxPacketSize: DefaultMaxPacketSize,
		Histogram: HistogramConfig{
			Mode:            string(statsd.HistogramAggregates),
			Quantiles:       []float64{0.5, 0.9, 0.99},
			ObservationType: string(statsd.Timer),
		},
		MetricExpiration: 5 * time.Minute,
		TimeoutConfig:    exporterhelper.NewDefaultTimeoutConfig(),
		QueueConfig:      configoptional.Some(queue),
		RetryConfig:      configretry.NewDefaultBackOffConfig(),
	}
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c := cfg.(*Config)
	exp := newExporter(c, set)
	return exporterhelper.NewMetrics(ctx, set, cfg, exp.pushMetrics,
		exporterhelper.WithStart(exp.start),
		exporterhelper.WithShutdown(exp.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}
