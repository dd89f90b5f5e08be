package metricsmanagementextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	storage := component.MustNewIDWithName("file_storage", "providers")
	custom := createDefaultConfig().(*Config)
	custom.NetAddr.Endpoint = "0.0.0.0:5321"
	custom.Storage = &storage
	custom.Registry = RegistryConfig{MaxProviders: 10, MaxVersions: 5, MaxBackups: 20}
	custom.ShutdownDrainTimeout = 3 * time.Second
	policy := createDefaultConfig().(*Config)
	policy.DestinationPolicy = DestinationPolicyConfig{
		AllowLinkLocal: true, AllowUnspecifiedBind: true, AllowSelf: true,
		SelfEndpoints: []string{"localhost:9999"}, FileDirs: []string{"/etc/metricsmodule/certs"},
	}
	etcd := createDefaultConfig().(*Config)
	etcd.RegistryBackend = BackendEtcd
	etcd.Etcd = EtcdConfig{
		Endpoints: []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}, Prefix: "/fleet-a/",
		DialTimeout: 3 * time.Second, RequestTimeout: 4 * time.Second, HealthInterval: 500 * time.Millisecond,
		Username: "collector", Password: "s3cret", LeaseTTL: 10 * time.Second,
	}

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "no_endpoint"), wantErr: "endpoint: must be set"},
		{id: component.NewIDWithName(metadata.Type, "bad_registry"), wantErr: "registry.max_providers: must be positive, got 0\nregistry.max_versions: must be positive, got -1"},
		{id: component.NewIDWithName(metadata.Type, "bad_drain"), wantErr: "shutdown_drain_timeout: must be positive"},
		{id: component.NewIDWithName(metadata.Type, "unknown_key"), wantErr: "storage_extension"},
		{id: component.NewIDWithName(metadata.Type, "policy"), want: policy},
		{id: component.NewIDWithName(metadata.Type, "etcd"), want: etcd},
		{id: component.NewIDWithName(metadata.Type, "etcd_no_endpoints"), wantErr: "etcd.endpoints: must list the etcd client URLs"},
		{id: component.NewIDWithName(metadata.Type, "etcd_and_storage"), wantErr: "storage: the registry is in etcd"},
		{id: component.NewIDWithName(metadata.Type, "bad_backend"), wantErr: `registry_backend: "consul" is not a backend; use storage or etcd`},
		{id: component.NewIDWithName(metadata.Type, "bad_policy"), wantErr: `destination_policy.file_dirs[0]: "certs" must be an absolute directory
destination_policy.file_dirs[1]: the root directory would allow every file; name the directories of the certificates
destination_policy.self_endpoints[0]: "nohost" is not host:port`},
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

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "localhost:4321", cfg.NetAddr.Endpoint)
	assert.Nil(t, cfg.Storage)
	assert.Equal(t, RegistryConfig{MaxProviders: 100, MaxVersions: 50, MaxBackups: 200}, cfg.Registry)
	assert.Equal(t, 10*time.Second, cfg.ShutdownDrainTimeout)
	assert.Equal(t, DestinationPolicyConfig{}, cfg.DestinationPolicy, "the safe default: nothing allowed")
	require.NoError(t, confmap.Validate(cfg))
}
