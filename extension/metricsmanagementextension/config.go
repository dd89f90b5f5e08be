package metricsmanagementextension

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/metricsmodule/metricsmodule/internal/authz"
)

// Config is the extension configuration.
type Config struct {
	// ServerConfig is the gRPC server of MetricsManagementService (endpoint,
	// TLS, auth, keepalive, ...): apart from the ingest server, so that
	// management can be firewalled and authenticated on its own.
	configgrpc.ServerConfig `mapstructure:",squash"`
	// Storage is the ID of a storage extension (e.g. file_storage) that keeps
	// providers, versions and backups across restarts. Unset: in memory only.
	Storage *component.ID `mapstructure:"storage"`
	// Registry bounds the provider registry.
	Registry RegistryConfig `mapstructure:"registry"`
	// ShutdownDrainTimeout bounds how long the providers' queues drain when
	// the collector stops.
	ShutdownDrainTimeout time.Duration `mapstructure:"shutdown_drain_timeout"`
	// Authorization maps principals to roles and roles to method families;
	// absent: every caller may call every method.
	Authorization configoptional.Optional[authz.Config] `mapstructure:"authorization"`
}

// RegistryConfig bounds the provider registry.
type RegistryConfig struct {
	// MaxProviders is the most providers.
	MaxProviders int `mapstructure:"max_providers"`
	// MaxVersions is the config history kept per provider (for rollback).
	MaxVersions int `mapstructure:"max_versions"`
	// MaxBackups is the most backups kept; the oldest go first.
	MaxBackups int `mapstructure:"max_backups"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set, e.g. localhost:4321"))
	}
	if cfg.Registry.MaxProviders <= 0 {
		errs = append(errs, fmt.Errorf("registry.max_providers: must be positive, got %d", cfg.Registry.MaxProviders))
	}
	if cfg.Registry.MaxVersions <= 0 {
		errs = append(errs, fmt.Errorf("registry.max_versions: must be positive, got %d", cfg.Registry.MaxVersions))
	}
	if cfg.Registry.MaxBackups <= 0 {
		errs = append(errs, fmt.Errorf("registry.max_backups: must be positive, got %d", cfg.Registry.MaxBackups))
	}
	if cfg.ShutdownDrainTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_drain_timeout: must be positive"))
	}
	return errors.Join(errs...)
}
