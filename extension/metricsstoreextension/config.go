package metricsstoreextension

import (
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
)

// Config is the extension configuration.
type Config struct {
	// Store is the embedded time-series store.
	Store store.Config `mapstructure:"store"`
	// Stream bounds StreamMetrics: subscribers, buffers and replay logs.
	Stream stream.Config `mapstructure:"stream"`
	// Shared, when present, is the fleet's shared store: every batch is
	// also written to a Prometheus-compatible remote-write backend before it
	// is acknowledged, and the metrics_service receiver answers reads from
	// the backend's query API (ARCHITECTURE.md, Fleet).
	Shared configoptional.Optional[sharedstore.Config] `mapstructure:"shared"`
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
	if cfg.Shared.HasValue() {
		if err := cfg.Shared.Get().Validate(); err != nil {
			return fmt.Errorf("shared: %w", err)
		}
	}
	return nil
}
