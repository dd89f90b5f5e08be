// Package e2e runs the distribution's collector in-process, with the same
// factories as builder-config.yaml, for end-to-end tests.
package e2e

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/zpagesextension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/metricsmodule/metricsmodule/converter/authcheckconverter"
	"github.com/metricsmodule/metricsmodule/exporter/providersexporter"
	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter"
	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter"
	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension"
	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/processor/metricsstoreprocessor"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver"
)

// ComponentImports are the import paths of the components below; a test
// checks that builder-config.yaml names the same ones.
var ComponentImports = []string{
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension",
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage",
	"go.opentelemetry.io/collector/exporter/debugexporter",
	"go.opentelemetry.io/collector/exporter/otlpexporter",
	"go.opentelemetry.io/collector/exporter/otlphttpexporter",
	"go.opentelemetry.io/collector/extension/zpagesextension",
	"go.opentelemetry.io/collector/processor/batchprocessor",
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor",
	"go.opentelemetry.io/collector/receiver/otlpreceiver",
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver",
	"github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver",
	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter",
	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter",
	"github.com/metricsmodule/metricsmodule/exporter/providersexporter",
	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension",
	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension",
	"github.com/metricsmodule/metricsmodule/processor/metricsstoreprocessor",
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter",
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter",
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension",
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension",
	// the confmap converter of the manifest (ConverterFactories)
	"github.com/metricsmodule/metricsmodule/converter/authcheckconverter",
}

// ConverterFactories are the confmap converters of the distribution.
func ConverterFactories() []confmap.ConverterFactory {
	return []confmap.ConverterFactory{authcheckconverter.NewFactory()}
}

// Components returns the factories of the distribution.
func Components() (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		healthcheckextension.NewFactory(), filestorage.NewFactory(), zpagesextension.NewFactory(),
		metricsmanagementextension.NewFactory(), metricsstoreextension.NewFactory(), basicauthextension.NewFactory(), bearertokenauthextension.NewFactory(),
	); err != nil {
		return f, err
	}
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		metricsservicereceiver.NewFactory(), otlpreceiver.NewFactory(), prometheusremotewritereceiver.NewFactory(),
	); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		batchprocessor.NewFactory(), memorylimiterprocessor.NewFactory(), metricsstoreprocessor.NewFactory(),
	); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		debugexporter.NewFactory(), otlpexporter.NewFactory(), otlphttpexporter.NewFactory(),
		pushgatewayexporter.NewFactory(), statsdexporter.NewFactory(),
		providersexporter.NewFactory(), prometheusremotewriteexporter.NewFactory(), prometheusexporter.NewFactory(),
	); err != nil {
		return f, err
	}
	return f, nil
}
