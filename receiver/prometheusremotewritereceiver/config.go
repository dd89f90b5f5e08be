package prometheusremotewritereceiver

import (
	"errors"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// Config is the receiver configuration.
type Config struct {
	// ServerConfig is the HTTP server (endpoint, TLS, auth, max_request_body_size, ...).
	confighttp.ServerConfig `mapstructure:",squash"`
	// Path is the URL path remote write requests are posted to.
	Path string `mapstructure:"path"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set (e.g. localhost:4323)"))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, errors.New(`path: must start with "/" (default /api/v1/write)`))
	}
	return errors.Join(errs...)
}
