package metricsstoreprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
)

// storeHost is the host of the generated lifecycle test: a nop host with a
// started metrics_store extension over a temporary directory, shut down when
// the test ends.
func storeHost(t *testing.T) component.Host {
	t.Helper()
	f := metricsstoreextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*metricsstoreextension.Config)
	cfg.Store.Path = t.TempDir()
	ext, err := f.Create(context.Background(), extension.Settings{ID: defaultExtension, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return host{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{defaultExtension: ext}}
}

// TestDefaultConfigValidates checks that the factory's default configuration
// passes the collector's validation as it is, with no setting filled in (the
// generated tests in generated_component_test.go cover the config struct and
// the lifecycle).
func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, confmap.Validate(NewFactory().CreateDefaultConfig()))
}
