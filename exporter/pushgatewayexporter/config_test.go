package pushgatewayexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		check   func(t *testing.T, cfg *Config)
		wantErr string
	}{
		{id: component.NewID(metadata.Type), wantErr: "job: must not be empty"},
		{
			id: component.NewIDWithName(metadata.Type, "custom"),
			check: func(t *testing.T, cfg *Config) {
				assert.Equal(t, "https://pushgateway.example:9091/prefix", cfg.ClientConfig.Endpoint)
				assert.Equal(t, "batch", cfg.Job)
				assert.Equal(t, "post", cfg.Method)
				assert.Equal(t, map[string]string{"env": "prod"}, cfg.GroupingLabels)
				assert.Equal(t, []string{"service.instance.id"}, cfg.GroupingFromResource)
				assert.Equal(t, "shop", cfg.Namespace)
				assert.False(t, cfg.AddMetricSuffixes)
				assert.True(t, cfg.ResourceToTelemetryConversion.Enabled)
				assert.Equal(t, BasicAuthConfig{Username: "pusher", Password: "s3cret"}, cfg.BasicAuth)
				assert.Equal(t, 10*time.Minute, cfg.MetricExpiration)
				assert.Equal(t, 3*time.Second, cfg.ClientConfig.Timeout)
				v, ok := cfg.ClientConfig.Headers.Get("X-Scope-OrgID")
				assert.True(t, ok)
				assert.Equal(t, configopaque.String("tenant-1"), v)
				assert.True(t, cfg.ClientConfig.TLS.InsecureSkipVerify)
				require.True(t, cfg.QueueConfig.HasValue())
				assert.Equal(t, int64(50), cfg.QueueConfig.Get().QueueSize)
				assert.False(t, cfg.RetryConfig.Enabled)
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "bearer"),
			check: func(t *testing.T, cfg *Config) {
				def := createDefaultConfig().(*Config)
				assert.Equal(t, configopaque.String("t0ken"), cfg.BearerToken)
				assert.Equal(t, MethodPut, cfg.Method)
				assert.True(t, cfg.AddMetricSuffixes)
				assert.Equal(t, 5*time.Minute, cfg.MetricExpiration)
				assert.Equal(t, 5*time.Second, cfg.ClientConfig.Timeout)
				assert.Equal(t, def.RetryConfig, cfg.RetryConfig)
				assert.Equal(t, def.QueueConfig, cfg.QueueConfig)
				assert.Equal(t, 1, cfg.QueueConfig.Get().NumConsumers)
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "readme"),
			check: func(t *testing.T, cfg *Config) {
				require.True(t, cfg.QueueConfig.Get().Batch.HasValue())
				assert.Equal(t, 10*time.Second, cfg.QueueConfig.Get().Batch.Get().FlushTimeout)
			},
		},
		{id: component.NewIDWithName(metadata.Type, "bad_url"), wantErr: `endpoint: "ht!tp://x" is not a valid URL`},
		{id: component.NewIDWithName(metadata.Type, "bad_scheme"), wantErr: `endpoint: "ftp://x" is not a valid URL: the scheme must be http or https`},
		{id: component.NewIDWithName(metadata.Type, "no_job"), wantErr: "job: must not be empty"},
		{id: component.NewIDWithName(metadata.Type, "bad_method"), wantErr: `method: "GET" is not one of PUT, POST`},
		{id: component.NewIDWithName(metadata.Type, "bad_grouping_label"), wantErr: `grouping_labels: "bad-name" is not a valid label name`},
		{id: component.NewIDWithName(metadata.Type, "job_grouping_label"), wantErr: `grouping_labels: "job" is set by the job setting`},
		{id: component.NewIDWithName(metadata.Type, "duplicate_grouping"), wantErr: `grouping_from_resource[0]: label "service_name" (from "service.name") is already set by grouping_labels`},
		{id: component.NewIDWithName(metadata.Type, "both_auth"), wantErr: "bearer_token: cannot be used together with basic_auth"},
		{id: component.NewIDWithName(metadata.Type, "bad_expiration"), wantErr: "metric_expiration: must be positive, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

// TestConfigFromMap builds a config the way the management extension does:
// from a plain map.
func TestConfigFromMap(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"endpoint":          "http://127.0.0.1:9091",
		"job":               "provider-job",
		"grouping_labels":   map[string]any{"instance": "a"},
		"basic_auth":        map[string]any{"username": "u", "password": "p"},
		"metric_expiration": "1m",
	}).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "provider-job", cfg.Job)

	err := confmap.NewFromStringMap(map[string]any{"push_gateway_url": "x"}).Unmarshal(createDefaultConfig())
	require.ErrorContains(t, err, "push_gateway_url")
}

func TestDefaultEndpointWithJobIsValid(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Job = "j"
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, DefaultEndpoint, cfg.ClientConfig.Endpoint)
}
