package providersexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/metricsmodule/metricsmodule/exporter/providersexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "other"), want: &Config{Extension: component.MustNewIDWithName("metrics_management", "ops"), Spool: createDefaultConfig().(*Config).Spool}},
		{id: component.NewIDWithName(metadata.Type, "spool"), want: &Config{Extension: defaultExtension,
			Spool: configoptional.Some(SpoolConfig{Directory: "/var/lib/otelcol/spool", MaxBytes: 1 << 30, Sync: "batch"})}},
		{id: component.NewIDWithName(metadata.Type, "spool_always"), want: &Config{Extension: defaultExtension,
			Spool: configoptional.Some(SpoolConfig{Directory: "/var/lib/otelcol/spool", MaxBytes: 1 << 20, Sync: "always"})}},
		{id: component.NewIDWithName(metadata.Type, "spool_no_directory"), wantErr: "spool.directory: must be set"},
		{id: component.NewIDWithName(metadata.Type, "spool_bad_sync"), wantErr: `spool.sync: "sometimes" is not one of batch, always`},
		{id: component.NewIDWithName(metadata.Type, "spool_zero_bytes"), wantErr: "spool.max_bytes: must be positive"},
		{id: component.NewIDWithName(metadata.Type, "no_extension"), wantErr: "'extension' id must not be empty"},
		{id: component.NewIDWithName(metadata.Type, "unknown_key"), wantErr: "extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateEmptyExtension(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, (&Config{}).Validate(), "extension: must name the metrics_management extension")
}
