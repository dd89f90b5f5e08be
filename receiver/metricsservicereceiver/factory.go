package metricsservicereceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/etcdconf"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/rules"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

const (
	// DefaultEndpoint is where the receiver listens unless configured.
	DefaultEndpoint = "localhost:4320"
	// DefaultPrometheusAPIEndpoint is where the Prometheus HTTP API listens
	// when enabled without an endpoint.
	DefaultPrometheusAPIEndpoint = "localhost:4322"
)

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
	// As the otlpreceiver: large batches arrive in fewer reads.
	server.ReadBufferSize = 512 * 1024
	cc := convert.DefaultConfig()
	return &Config{
		ServerConfig: server,
		Aggregation: AggregationConfig{
			CounterTemporality:   cc.CounterTemporality,
			HistogramTemporality: cc.HistogramTemporality,
			Histogram:            cc.Histogram,
			Summary:              cc.Summary,
			SeriesTTL:            cc.SeriesTTL,
			SeriesCacheSize:      cc.SeriesCacheSize,
		},
		Limits: LimitsConfig{Limits: cc.Limits, MaxBatchSize: 10_000},
		Dedup:  DedupConfig{Window: 10 * time.Minute, MaxEntries: 100_000, MaxBytes: 64 << 20, MaxRequestIDBytes: 128, Persist: true},
		Query:  query.DefaultConfig(),
		Rules:  rules.DefaultConfig(),
		Definitions: DefinitionsConfig{
			Mode: registry.ModeOpen,
			Etcd: etcdconf.Default(),
		},
		PrometheusAPI: configoptional.Default(func() confighttp.ServerConfig {
			c := confighttp.NewDefaultServerConfig()
			c.NetAddr.Endpoint = DefaultPrometheusAPIEndpoint
			return c
		}()),
	}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(cfg.(*Config), set, next)
}
