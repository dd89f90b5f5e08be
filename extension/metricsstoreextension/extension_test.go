package metricsstoreextension

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/datapath"
)

func TestLifecycle(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Store.Path = t.TempDir()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	prov := ext.(datapath.Provider)
	assert.Nil(t, prov.Sink(), "no sink before Start")
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	require.NotNil(t, prov.Sink())
	require.NotNil(t, prov.Sink().Store())
	require.NotNil(t, prov.Sink().Hub())
	require.NoError(t, ext.Shutdown(context.Background()))
	assert.Nil(t, prov.Sink(), "no sink after Shutdown")
	require.NoError(t, ext.Shutdown(context.Background()), "Shutdown is idempotent")
}

func TestShutdownWithoutStart(t *testing.T) {
	f := NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestStartFailsOnBadStoreDirectory(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Store.Path = "/proc/metricsmodule-cannot-create"
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "store:")
	require.NoError(t, ext.Shutdown(context.Background()))
}
