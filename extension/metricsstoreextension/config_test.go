package metricsstoreextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.Store.Path = "/var/lib/metricsmodule/tsdb"
	custom.Store.Retention = 720 * time.Hour
	custom.Store.OutOfOrderWindow = 2 * time.Hour
	custom.Store.Histograms = store.HistogramsNative
	custom.Store.MaxExemplars = 5000
	custom.Stream.MaxSubscribers = 10
	custom.Stream.BufferSize = 50
	custom.Stream.MaxBufferBytes = 1 << 20
	custom.Stream.Replay.MaxBytes = 1 << 20
	custom.Stream.Replay.MaxAge = 5 * time.Minute
	custom.Stream.Replay.IdleTTL = time.Minute
	custom.Stream.Replay.Directory = "/var/lib/metricsmodule/replay"

	shared := createDefaultConfig().(*Config)
	sc := shared.Shared.GetOrInsertDefault()
	sc.WriteEndpoint = "http://127.0.0.1:8428/api/v1/write"
	sc.QueryEndpoint = "http://127.0.0.1:8428"
	sc.Instance = "node-a"
	sc.Headers = map[string]string{"X-Scope-OrgID": "team-a"}

	cluster := createDefaultConfig().(*Config)
	cluster.Stream.Cluster.Node = "collector-1"
	cluster.Stream.Cluster.NATS.URL = "nats://127.0.0.1:4222"
	cluster.Stream.Cluster.NATS.Subject = "fleet.stream"
	cluster.Stream.Cluster.NATS.StreamName = "FLEET"
	cluster.Stream.Cluster.NATS.MaxBytes = 100 << 20
	cluster.Stream.Cluster.NATS.MaxAge = 30 * time.Minute
	cluster.Stream.Cluster.NATS.PublishBufferBytes = 1 << 20
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr []string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "bad_stream"), wantErr: []string{"stream: max_subscribers: must be positive, got 0", "replay.idle_ttl: must be positive"}},
		{id: component.NewIDWithName(metadata.Type, "bad_store"), wantErr: []string{"store: retention: must be positive", "max_exemplars: must not be negative (0 keeps no exemplars), got -1"}},
		{id: component.NewIDWithName(metadata.Type, "cluster"), want: cluster},
		{id: component.NewIDWithName(metadata.Type, "bad_cluster"), wantErr: []string{
			"cluster.nats.stream_name: must not be empty", "cluster.nats.max_age: must be positive",
			"cluster.nats.replicas: must be 1 to 5, got 7", "replay.directory: not used in cluster mode",
		}},
		{id: component.NewIDWithName(metadata.Type, "unknown_key"), wantErr: []string{"max_subscriber"}},
		{id: component.NewIDWithName(metadata.Type, "shared"), want: shared},
		{id: component.NewIDWithName(metadata.Type, "bad_shared"), wantErr: []string{
			`shared: write_endpoint: "127.0.0.1:8428" is not an http(s) URL`, "query_endpoint: must be set",
			"instance: must be set to a name unique in the fleet", `instance_label: "node-id" is not a label name`,
		}},
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
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
			if len(tt.wantErr) > 0 {
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}
