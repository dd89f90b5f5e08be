package fleet

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension"
	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/test/e2e"
)

// TestFleetRecipeWithEveryOverlayResolves: the README's full recipe (the
// default config, fleet-node, fleet-streams, fleet-registry and fleet-spool) with its
// environment variables is a valid config; ETCD_ENDPOINTS lists every etcd
// member, comma-separated (one URL for a single etcd).
func TestFleetRecipeWithEveryOverlayResolves(t *testing.T) {
	for _, tt := range []struct {
		name, endpoints string
		want            []string
	}{
		{"three members", "http://127.0.0.1:2379,http://127.0.0.1:2479,http://127.0.0.1:2579",
			[]string{"http://127.0.0.1:2379", "http://127.0.0.1:2479", "http://127.0.0.1:2579"}},
		{"one etcd", "http://127.0.0.1:2379", []string{"http://127.0.0.1:2379"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NODE_NAME", "node-b")
			t.Setenv("PORT_PREFIX", "53")
			t.Setenv("METRICS_PORT", "5388")
			t.Setenv("SHARED_STORE", "http://127.0.0.1:8428")
			t.Setenv("NATS_URL", "nats://127.0.0.1:4222")
			t.Setenv("ETCD_ENDPOINTS", tt.endpoints)
			factories, err := e2e.Components()
			require.NoError(t, err)
			cp, err := otelcol.NewConfigProvider(otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
				URIs:              append(append([]string(nil), recipe...), spoolOverlay...),
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
			}})
			require.NoError(t, err)
			cfg, err := cp.Get(context.Background(), factories)
			require.NoError(t, err)
			require.NoError(t, confmap.Validate(cfg))
			mgmt := cfg.Extensions[component.MustNewID("metrics_management")].(*metricsmanagementextension.Config)
			assert.Equal(t, "etcd", mgmt.RegistryBackend)
			assert.Nil(t, mgmt.Storage)
			assert.Equal(t, tt.want, mgmt.Etcd.Endpoints)
			assert.Equal(t, "127.0.0.1:5321", mgmt.NetAddr.Endpoint)
			store := cfg.Extensions[component.MustNewID("metrics_store")].(*metricsstoreextension.Config)
			assert.Equal(t, "node-b", store.Stream.Cluster.Node)
			assert.Equal(t, "nats://127.0.0.1:4222", store.Stream.Cluster.NATS.URL)
			assert.Equal(t, "node-b", store.Shared.Get().Instance)
			assert.True(t, strings.HasSuffix(filepath.ToSlash(store.Store.Path), "data/node-b/tsdb"))
		})
	}
}
