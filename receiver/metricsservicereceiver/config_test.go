package metricsservicereceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.NetAddr.Endpoint = "0.0.0.0:5320"
	custom.Aggregation.CounterTemporality = convert.TemporalityDelta
	custom.Aggregation.Histogram.Kind = convert.HistogramExponential
	custom.Aggregation.Histogram.MaxSize = 80
	custom.Aggregation.SeriesTTL = 10 * time.Minute
	custom.Limits.MaxLabels = 8
	custom.Limits.MaxBatchSize = 500
	custom.Dedup = DedupConfig{Window: time.Minute, MaxEntries: 10, MaxBytes: 1 << 20, MaxRequestIDBytes: 64, Persist: true, Path: "/var/lib/metricsmodule/dedup.journal"}

	defs := createDefaultConfig().(*Config)
	defs.Definitions.Mode, defs.Definitions.BackupDir = registry.ModeStrict, "/var/lib/metricsmodule/backups"
	fleet := createDefaultConfig().(*Config)
	fleet.Definitions.Backend = DefinitionsBackendEtcd
	fleet.Definitions.Etcd.Endpoints = []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}
	fleet.Definitions.Etcd.Prefix = "/fleet-a/"
	fleet.Definitions.Etcd.LeaseTTL = 5 * time.Second
	deprecated := createDefaultConfig().(*Config)
	deprecated.Definitions = defs.Definitions
	deprecated.deprecatedRegistryKey = true

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "bad_temporality"), wantErr: `counter_temporality: "sometimes" is not one of cumulative, delta`},
		{id: component.NewIDWithName(metadata.Type, "bad_buckets"), wantErr: "histogram.buckets: bounds must be increasing"},
		{id: component.NewIDWithName(metadata.Type, "bad_batch"), wantErr: "limits.max_batch_size: must be positive, got 0"},
		{id: component.NewIDWithName(metadata.Type, "no_endpoint"), wantErr: "endpoint: must be set"},
		{id: component.NewIDWithName(metadata.Type, "bad_request_id"), wantErr: "dedup.max_request_id_bytes: must be positive, got 0"},
		{id: component.NewIDWithName(metadata.Type, "bad_dedup_bytes"), wantErr: "dedup.max_bytes: must not be negative, got -1"},
		{id: component.NewIDWithName(metadata.Type, "dedup_path_not_persisted"), wantErr: "dedup.path: is set while dedup.persist is false"},
		{id: component.NewIDWithName(metadata.Type, "bad_rules"), wantErr: "rules: evaluation_interval: must be positive, got 0s (Prometheus' default is 1m)\nalertmanagers[0]: \"alertmanager:9093\" is not an http(s) URL with a host; use e.g. http://127.0.0.1:9093"},
		{id: component.NewIDWithName(metadata.Type, "rules_with_remote"), wantErr: "rules.files: rules are evaluated over the local store and cannot be combined with query.remote.endpoint"},
		{id: component.NewIDWithName(metadata.Type, "definitions"), want: defs},
		{id: component.NewIDWithName(metadata.Type, "registry_deprecated"), want: deprecated},
		{id: component.NewIDWithName(metadata.Type, "bad_definitions_mode"), wantErr: `definitions.mode: "sometimes" is not one of open, strict`},
		{id: component.NewIDWithName(metadata.Type, "definitions_etcd"), want: fleet},
		{id: component.NewIDWithName(metadata.Type, "definitions_etcd_no_endpoints"), wantErr: "definitions.etcd.endpoints: must list the etcd client URLs"},
		{id: component.NewIDWithName(metadata.Type, "definitions_etcd_and_path"), wantErr: "definitions.storage, definitions.path: the definitions are in etcd"},
		{id: component.NewIDWithName(metadata.Type, "definitions_etcd_bad_lease"), wantErr: "definitions.etcd.lease_ttl: 1.5s is not a whole number of seconds"},
		{id: component.NewIDWithName(metadata.Type, "rules_leader_without_etcd"), wantErr: "rules.run_on: leader elects the evaluating node on the etcd cluster of definitions.etcd"},
		{id: component.NewIDWithName(metadata.Type, "definitions_bad_backend"), wantErr: `definitions.backend: "zookeeper" is not a backend; use local or etcd`},
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

func TestUnknownKeyIsAnError(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.NewFromStringMap(map[string]any{"aggregation": map[string]any{"temporality": "delta"}}).Unmarshal(cfg)
	require.ErrorContains(t, err, "temporality")
}

func TestRegistryAndDefinitionsTogetherIsAnError(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "registry_and_definitions").String())
	require.NoError(t, err)
	err = sub.Unmarshal(createDefaultConfig())
	require.ErrorContains(t, err, "registry: is the deprecated name of definitions; set only definitions")
}
