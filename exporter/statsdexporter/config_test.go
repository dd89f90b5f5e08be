package statsdexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.Endpoint = "statsd.example:9125"
	custom.Transport = TransportTCP
	custom.Prefix = "shop."
	custom.TagFormat = "graphite"
	custom.SampleRate = 0.25
	custom.MaxPacketSize = 8932
	custom.Histogram = HistogramConfig{Mode: "observations", Quantiles: []float64{0.5, 0.999}, ObservationType: "d"}
	custom.ResourceToTelemetryConversion.Enabled = true
	custom.MetricExpiration = time.Hour
	custom.TimeoutConfig.Timeout = 2 * time.Second
	custom.QueueConfig.Get().QueueSize = 10
	custom.RetryConfig.Enabled = false

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "no_endpoint"), wantErr: "endpoint: must be set to host:port"},
		{id: component.NewIDWithName(metadata.Type, "bad_endpoint"), wantErr: `endpoint: "localhost" is not host:port`},
		{id: component.NewIDWithName(metadata.Type, "bad_port"), wantErr: `endpoint: "localhost:99999" has no valid port`},
		{id: component.NewIDWithName(metadata.Type, "bad_transport"), wantErr: `transport: "quic" is not one of udp, tcp`},
		{id: component.NewIDWithName(metadata.Type, "bad_prefix"), wantErr: `prefix: "a:b" holds ":"`},
		{id: component.NewIDWithName(metadata.Type, "bad_tag_format"), wantErr: `tag_format: "xml" is not one of none, dogstatsd, influxdb, graphite`},
		{id: component.NewIDWithName(metadata.Type, "zero_sample_rate"), wantErr: "sample_rate: must be in (0, 1], got 0"},
		{id: component.NewIDWithName(metadata.Type, "big_sample_rate"), wantErr: "sample_rate: must be in (0, 1], got 1.5"},
		{id: component.NewIDWithName(metadata.Type, "small_packet"), wantErr: "max_packet_size: must be between 64 and 65507, got 10"},
		{id: component.NewIDWithName(metadata.Type, "bad_mode"), wantErr: `histogram.mode: "buckets" is not one of aggregates, observations`},
		{id: component.NewIDWithName(metadata.Type, "bad_quantile"), wantErr: "histogram.quantiles[0]: 1.5 is not in [0, 1]"},
		{id: component.NewIDWithName(metadata.Type, "bad_observation_type"), wantErr: `histogram.observation_type: "x" is not one of ms, h, d`},
		{id: component.NewIDWithName(metadata.Type, "bad_expiration"), wantErr: "metric_expiration: must be positive, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

// TestConfigFromMap builds a config the way the management extension does:
// from a plain map.
func TestConfigFromMap(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"endpoint":    "127.0.0.1:8125",
		"prefix":      "provider",
		"tag_format":  "influxdb",
		"sample_rate": 0.5,
		"histogram":   map[string]any{"mode": "observations"},
	}).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "influxdb", cfg.TagFormat)

	err := confmap.NewFromStringMap(map[string]any{"tags": "x"}).Unmarshal(createDefaultConfig())
	require.ErrorContains(t, err, "tags")
}
