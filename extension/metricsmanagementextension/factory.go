package metricsmanagementextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"

	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/provider"
)

// DefaultEndpoint is where the management server listens unless configured.
const DefaultEndpoint = "localhost:4321"

// DefaultStatusPageEndpoint is where the status page listens when
// status_page is present without an endpoint.
const DefaultStatusPageEndpoint = "localhost:4323"

// NewFactory returns the factory of the metrics_management extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	server := configgrpc.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	return &Config{
		ServerConfig: server,
		Registry: RegistryConfig{
			MaxProviders: provider.DefaultMaxProviders,
			MaxVersions:  provider.DefaultMaxVersions,
			MaxBackups:   provider.DefaultMaxBackups,
		},
		ShutdownDrainTimeout: provider.DefaultShutdownDrainTimeout,
		RegistryBackend:      BackendStorage,
		Etcd: EtcdConfig{
			Prefix:         provider.DefaultEtcdPrefix,
			DialTimeout:    provider.DefaultEtcdDialTimeout,
			RequestTimeout: provider.DefaultEtcdRequestTimeout,
			HealthInterval: provider.DefaultEtcdHealthInterval,
			LeaseTTL:       provider.DefaultEtcdLeaseTTL,
		},
		StatusPage: configoptional.Default(func() confighttp.ServerConfig {
			c := confighttp.NewDefaultServerConfig()
			c.NetAddr.Endpoint = DefaultStatusPageEndpoint
			return c
		}()),
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set), nil
}
