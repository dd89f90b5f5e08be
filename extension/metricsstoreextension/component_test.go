package metricsstoreextension

import (
	"github.com/stretchr/testify/require"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
)

// tempStoreHost is the host of the generated lifecycle test. The default store
// path is relative to the working directory (the source tree in tests), so it
// first moves the store of cfg to a temporary directory.
func tempStoreHost(t *testing.T, cfg component.Config) component.Host {
	t.Helper()
	cfg.(*Config).Store.Path = t.TempDir()
	return componenttest.NewNopHost()
}

// TestDefaultConfigValidates checks that the factory's default configuration
// passes the collector's validation as it is, with no setting filled in (the
// generated tests in generated_component_test.go cover the config struct and
// the lifecycle).
func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, confmap.Validate(NewFactory().CreateDefaultConfig()))
}
