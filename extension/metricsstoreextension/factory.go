package metricsstoreextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
)

// NewFactory returns the factory of the metrics_store extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{
		Store:  store.DefaultConfig(),
		Stream: stream.DefaultConfig(),
		Shared: configoptional.Default(sharedstore.DefaultConfig()),
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set), nil
}
