package providersexporter

import (
	"github.com/stretchr/testify/require"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"

	"github.com/metricsmodule/metricsmodule/internal/provider"
)

// managementHost is the host of the generated lifecycle test: a nop host with
// a metrics_management extension whose router has no providers.
func managementHost(t *testing.T) component.Host {
	t.Helper()
	router := provider.NewEngine(provider.Settings{}).Router()
	return host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{defaultExtension: fakeManagement{router: router}}}
}

// TestDefaultConfigValidates checks that the factory's default configuration
// passes the collector's validation as it is, with no setting filled in (the
// generated tests in generated_component_test.go cover the config struct and
// the lifecycle).
func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, confmap.Validate(NewFactory().CreateDefaultConfig()))
}
