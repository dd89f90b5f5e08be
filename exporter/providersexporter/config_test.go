package providersexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
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
		{id: component.NewID(metadata.Type), want: &Config{Extension: component.MustNewID("metrics_management")}},
		{id: component.NewIDWithName(metadata.Type, "other"), want: &Config{Extension: component.MustNewIDWithName("metrics_management", "ops")}},
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
