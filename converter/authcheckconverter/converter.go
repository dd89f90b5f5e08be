// Package authcheckconverter is a confmap converter that fails the
// configuration (so `otelcol-metrics validate` and the start of the
// collector) when an `auth.authenticator` of a server names no server
// authenticator, instead of the collector failing when that server starts.
// It changes nothing in the configuration.
package authcheckconverter

import (
	"context"

	"go.opentelemetry.io/collector/confmap"

	"github.com/metricsmodule/metricsmodule/internal/authz"
)

// NewFactory returns the factory of the converter.
func NewFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter { return converter{} })
}

type converter struct{}

// Convert checks the authenticators of conf and leaves conf unchanged.
func (converter) Convert(_ context.Context, conf *confmap.Conf) error {
	return authz.CheckAuthenticators(conf.ToStringMap())
}
