package sharedstore

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
)

// DefaultInstanceLabel is the label that carries a node's identity.
const DefaultInstanceLabel = "collector_instance"

// Config is the shared store of a fleet.
type Config struct {
	// WriteEndpoint is the backend's remote-write URL, e.g.
	// http://victoria:8428/api/v1/write or http://prometheus:9090/api/v1/write.
	WriteEndpoint string `mapstructure:"write_endpoint"`
	// QueryEndpoint is the backend's Prometheus HTTP API base URL, e.g.
	// http://victoria:8428 or http://mimir:8080/prometheus: reads go there.
	QueryEndpoint string `mapstructure:"query_endpoint"`
	// Headers are added to every write and query (e.g. X-Scope-OrgID).
	Headers map[string]string `mapstructure:"headers"`
	// Timeout bounds one remote write; a batch not accepted within it is
	// refused with a retryable error.
	Timeout time.Duration `mapstructure:"timeout"`
	// Instance is this node's identity in the fleet, unique per node (e.g.
	// ${env:HOSTNAME}): the metrics_service receiver sets InstanceLabel to
	// it on the running totals it builds (cumulative sums, histograms and
	// summaries), so that the totals of the nodes add up.
	Instance string `mapstructure:"instance"`
	// InstanceLabel is the label that carries Instance.
	InstanceLabel string `mapstructure:"instance_label"`
	// NativeHistograms says the backend keeps native histograms sent by
	// remote write. Off: a batch with one is refused, since some backends
	// (VictoriaMetrics 1.79) accept and drop them.
	NativeHistograms bool `mapstructure:"native_histograms"`
}

// DefaultConfig returns the defaults of the optional shared block.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, InstanceLabel: DefaultInstanceLabel}
}

// Validate checks the settings; messages name the field (relative to the
// shared block) and the fix.
func (c *Config) Validate() error {
	var errs []error
	if err := httpURL(c.WriteEndpoint); err != nil {
		errs = append(errs, fmt.Errorf("write_endpoint: %w, e.g. http://127.0.0.1:8428/api/v1/write", err))
	}
	if err := httpURL(c.QueryEndpoint); err != nil {
		errs = append(errs, fmt.Errorf("query_endpoint: %w, e.g. http://127.0.0.1:8428", err))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive, e.g. 10s"))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("instance: must be set to a name unique in the fleet, e.g. ${env:HOSTNAME}: each node's series carry it so that their running totals add up"))
	}
	if !model.LegacyValidation.IsValidLabelName(c.InstanceLabel) {
		errs = append(errs, fmt.Errorf("instance_label: %q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*); the default is %s", c.InstanceLabel, DefaultInstanceLabel))
	}
	return errors.Join(errs...)
}

func httpURL(s string) error {
	if s == "" {
		return errors.New("must be set")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
