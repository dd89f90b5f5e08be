package metricsservicereceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// DefaultEndpoint is where the receiver listens unless configured.
const DefaultEndpoint = "localhost:4320"

// NewFactory returns the factory of the metrics_service receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	server := configgrpc.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	cc := convert.DefaultConfig()
	return &Config{
		ServerConfig: server,
		Aggregation: AggregationConfig{
			CounterTemporality:   cc.CounterTemporality,
			HistogramTemporality: cc.HistogramTemporality,
			Histogram:            cc.Histogram,
			Summary:              cc.Summary,
			SeriesTTL:            cc.SeriesTTL,
		},
		Limits: LimitsConfig{Limits: cc.Limits, MaxBatchSize: 10_000},
		Dedup:  DedupConfig{Window: 10 * time.Minute, MaxEntries: 100_000},
	}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(cfg.(*Config), set, next)
}
