package providersexporter

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/metricsmodule/metricsmodule/internal/provider"
)

// Config is the exporter configuration.
type Config struct {
	// Extension is the ID of the metrics_management extension whose
	// providers receive the data.
	Extension component.ID `mapstructure:"extension"`
	// Spool, when set, keeps every batch a provider accepted on disk until
	// it is exported: the durable provider queue (off by default).
	Spool configoptional.Optional[SpoolConfig] `mapstructure:"spool"`
}

// SpoolConfig is the durable provider queue: one directory per provider
// under Directory, bounded by MaxBytes per provider.
type SpoolConfig struct {
	// Directory keeps the providers' spools (one sub-directory each).
	Directory string `mapstructure:"directory"`
	// MaxBytes bounds the spool of one provider; a batch that does not fit
	// is dropped and counted like a full queue.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// Sync is "batch" (written before the answer, fsynced per segment) or
	// "always" (fsynced before the answer).
	Sync string `mapstructure:"sync"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	if cfg.Extension.Type().String() == "" {
		return errors.New("extension: must name the metrics_management extension, e.g. metrics_management")
	}
	return nil
}

// Validate checks the spool block; messages name the field.
func (cfg *SpoolConfig) Validate() error {
	if cfg.MaxBytes == 0 {
		return errors.New("spool.max_bytes: must be positive: the bound of one provider's spool in bytes, e.g. 1073741824")
	}
	return cfg.engine().Validate()
}

func (cfg *SpoolConfig) engine() provider.SpoolConfig {
	return provider.SpoolConfig{Directory: cfg.Directory, MaxBytes: cfg.MaxBytes, Sync: provider.SpoolSync(cfg.Sync)}
}
