package metricsstoreprocessor

import (
	"errors"

	"go.opentelemetry.io/collector/component"
)

// Config is the processor configuration.
type Config struct {
	// Extension is the metrics_store extension to write to.
	Extension component.ID `mapstructure:"extension"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	if cfg.Extension == (component.ID{}) {
		return errors.New("extension: must name the metrics_store extension, e.g. metrics_store")
	}
	return nil
}
