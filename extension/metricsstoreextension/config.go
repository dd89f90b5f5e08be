package metricsstoreextension

import (
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
)

// Config is the extension configuration.
type Config struct {
	// Store is the embedded time-series store.
	Store store.Config `mapstructure:"store"`
	// Stream bounds StreamMetrics: subscribers, buffers and replay logs.
	Stream stream.Config `mapstructure:"stream"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	if err := cfg.Store.Validate(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := cfg.Stream.Validate(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}
