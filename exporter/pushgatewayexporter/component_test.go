package pushgatewayexporter

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

// TestDefaultConfigNeedsOnlyAJob checks that the default configuration fails
// validation only for the job, which has no sensible default, with a message
// that names the setting and the fix, and validates once a job is set (the
// generated tests in generated_component_test.go cover the config struct and
// the lifecycle).
func TestDefaultConfigNeedsOnlyAJob(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	err := confmap.Validate(cfg)
	require.ErrorIs(t, err, errNoJob)
	require.ErrorContains(t, err, "job: must not be empty; set it to")
	cfg.Job = "nightly-import"
	require.NoError(t, confmap.Validate(cfg))
}
