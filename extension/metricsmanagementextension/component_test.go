package metricsmanagementextension

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

// TestDefaultConfigValidates checks that the factory's default configuration
// passes the collector's validation as it is, with no setting filled in (the
// generated tests in generated_component_test.go cover the config struct and
// the lifecycle).
func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, confmap.Validate(NewFactory().CreateDefaultConfig()))
}
