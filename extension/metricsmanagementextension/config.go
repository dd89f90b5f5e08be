package metricsmanagementextension

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"

	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/metricsmodule/metricsmodule/internal/authz"
	"github.com/metricsmodule/metricsmodule/internal/etcdconf"
	"github.com/metricsmodule/metricsmodule/internal/provider"
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
	// RegistryBackend is where the registry lives: "storage" (default: the
	// storage extension named by storage, or memory) or "etcd" (shared by a
	// fleet of collectors; see etcd).
	RegistryBackend string `mapstructure:"registry_backend"`
	// Etcd is the etcd cluster of registry_backend: etcd.
	Etcd EtcdConfig `mapstructure:"etcd"`
	// ShutdownDrainTimeout bounds how long the providers' queues drain when
	// the collector stops.
	ShutdownDrainTimeout time.Duration `mapstructure:"shutdown_drain_timeout"`
	// DestinationPolicy says where providers may send or listen and which
	// files they may name. The defaults refuse link-local and cloud metadata
	// destinations, binding every interface, exporting into this
	// collector's own receivers, and every file setting.
	DestinationPolicy DestinationPolicyConfig `mapstructure:"destination_policy"`
	// Authorization maps principals to roles and roles to method families;
	// absent: every caller may call every method.
	Authorization configoptional.Optional[authz.Config] `mapstructure:"authorization"`
	// StatusPage serves an HTML status page of the providers (zpages
	// style, no external assets); off unless the block is present.
	StatusPage configoptional.Optional[confighttp.ServerConfig] `mapstructure:"status_page"`
}

// DestinationPolicyConfig is the destination policy of providers.
type DestinationPolicyConfig struct {
	// AllowLinkLocal allows link-local destinations (169.254.0.0/16,
	// fe80::/10) and cloud metadata services (169.254.169.254,
	// metadata.google.internal, ...). Default false.
	AllowLinkLocal bool `mapstructure:"allow_link_local"`
	// AllowUnspecifiedBind allows a listening provider (scrape endpoint)
	// to bind every interface (0.0.0.0, ::, ":port"). Default false.
	AllowUnspecifiedBind bool `mapstructure:"allow_unspecified_bind"`
	// AllowSelf allows destinations that are this collector's own
	// listening endpoints (an export loop). Default false.
	AllowSelf bool `mapstructure:"allow_self"`
	// SelfEndpoints are more endpoints of this collector (host:port), added
	// to those learned from the receivers' effective config at start.
	SelfEndpoints []string `mapstructure:"self_endpoints"`
	// FileDirs are the absolute directories that TLS and other file
	// settings may name (symlinks resolved). Default none: every file
	// setting is refused.
	FileDirs []string `mapstructure:"file_dirs"`
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

// Registry backends.
const (
	BackendStorage = "storage"
	BackendEtcd    = "etcd"
)

// EtcdConfig is the etcd cluster that keeps the provider registry of a
// fleet of collectors (the block the metrics_service receiver's
// definitions.etcd shares).
type EtcdConfig = etcdconf.Config

var _ component.Config = (*Config)(nil)

// engine returns the engine's form of the policy.
func (p DestinationPolicyConfig) engine() provider.DestinationPolicy {
	return provider.DestinationPolicy{
		AllowLinkLocal:       p.AllowLinkLocal,
		AllowUnspecifiedBind: p.AllowUnspecifiedBind,
		AllowSelf:            p.AllowSelf,
		SelfEndpoints:        p.SelfEndpoints,
		FileDirs:             p.FileDirs,
	}
}

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
	switch cfg.RegistryBackend {
	case "", BackendStorage:
	case BackendEtcd:
		if len(cfg.Etcd.Endpoints) == 0 {
			errs = append(errs, errors.New("etcd.endpoints: must list the etcd client URLs with registry_backend: etcd, e.g. [http://127.0.0.1:2379]"))
		}
		if cfg.Storage != nil {
			errs = append(errs, errors.New("storage: the registry is in etcd with registry_backend: etcd; remove storage (or use registry_backend: storage)"))
		}
		if cfg.Etcd.DialTimeout <= 0 || cfg.Etcd.RequestTimeout <= 0 || cfg.Etcd.HealthInterval <= 0 {
			errs = append(errs, errors.New("etcd.dial_timeout, etcd.request_timeout, etcd.health_interval: must be positive"))
		}
		if t := cfg.Etcd.LeaseTTL; t != 0 && (t < time.Second || t%time.Second != 0) {
			errs = append(errs, fmt.Errorf("etcd.lease_ttl: %s is not a whole number of seconds of at least 1s (etcd leases count seconds), e.g. 10s", t))
		}
	default:
		errs = append(errs, fmt.Errorf("registry_backend: %q is not a backend; use storage or etcd", cfg.RegistryBackend))
	}
	if cfg.ShutdownDrainTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_drain_timeout: must be positive"))
	}
	for i, d := range cfg.DestinationPolicy.FileDirs {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("destination_policy.file_dirs[%d]: %q must be an absolute directory", i, d))
		} else if filepath.Clean(d) == string(filepath.Separator) {
			errs = append(errs, fmt.Errorf("destination_policy.file_dirs[%d]: the root directory would allow every file; name the directories of the certificates", i))
		}
	}
	for i, ep := range cfg.DestinationPolicy.SelfEndpoints {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			errs = append(errs, fmt.Errorf("destination_policy.self_endpoints[%d]: %q is not host:port: %w", i, ep, err))
		}
	}
	return errors.Join(errs...)
}
