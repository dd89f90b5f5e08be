package providersexporter

import (
	"errors"

	"go.opentelemetry.io/collector/component"
)

// Config is the exporter configuration.
type Config struct {
	// Extension is the ID of the metrics_management extension whose
	// providers receive the data.
	Extension component.ID `mapstructure:"extension"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	if cfg.Extension.Type().String() == "" {
		return errors.New("extension: must name the metrics_management extension, e.g. metrics_management")
	}
	return nil
}
