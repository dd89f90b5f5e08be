package prometheusremotewritereceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver/internal/metadata"
)

const (
	defaultEndpoint = "localhost:4323"
	defaultPath     = "/api/v1/write"
)

// NewFactory returns the factory of the prometheus_remote_write receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability))
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = defaultEndpoint
	// Remote write bodies are snappy-compressed (or, from some senders, not
	// compressed at all); another Content-Encoding is answered 415.
	srv.CompressionAlgorithms = []string{"", "snappy"}
	return &Config{ServerConfig: srv, Path: defaultPath}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(set, cfg.(*Config), next)
}
