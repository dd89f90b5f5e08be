package providersexporter

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/exporter/providersexporter/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/provider"
)

type host struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

type fakeManagement struct {
	component.StartFunc
	component.ShutdownFunc
	router *provider.Router
}

func (f fakeManagement) ProviderRouter() *provider.Router { return f.router }

type otherExtension struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestStartFindsTheExtension(t *testing.T) {
	t.Parallel()
	f := NewFactory()
	cfg := f.CreateDefaultConfig()
	ctx := context.Background()
	id := component.MustNewID("metrics_management")

	tests := []struct {
		name    string
		ext     map[component.ID]component.Component
		wantErr string
	}{
		{"missing", nil, `extension "metrics_management" not found`},
		{"not a management extension", map[component.ID]component.Component{id: otherExtension{}}, "is not a metrics_management extension"},
		{"found", map[component.ID]component.Component{id: fakeManagement{router: provider.NewEngine(provider.Settings{}).Router()}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(metadata.Type), cfg)
			require.NoError(t, err)
			assert.False(t, exp.Capabilities().MutatesData)
			err = exp.Start(ctx, host{Host: componenttest.NewNopHost(), ext: tt.ext})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				require.NoError(t, exp.ConsumeMetrics(ctx, pmetric.NewMetrics()), "no providers: nothing to do")
			}
			require.NoError(t, exp.Shutdown(ctx))
		})
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	t.Parallel()
	f := NewFactory()
	exp, err := f.CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, exp.Shutdown(context.Background()))
}

func TestStartTurnsTheSpoolOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	engine := provider.NewEngine(provider.Settings{})
	require.NoError(t, engine.Start(ctx, componenttest.NewNopHost(), nil))
	t.Cleanup(func() { require.NoError(t, engine.Shutdown(ctx)) })
	h := host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{defaultExtension: fakeManagement{router: engine.Router()}}}
	dir := filepath.Join(t.TempDir(), "spool")

	f := NewFactory()
	start := func(sc SpoolConfig) error {
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.Spool = configoptional.Some(sc)
		exp, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(metadata.Type), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, exp.Shutdown(ctx)) })
		return exp.Start(ctx, h)
	}
	require.NoError(t, start(SpoolConfig{Directory: dir, MaxBytes: 1 << 20, Sync: "batch"}))
	assert.DirExists(t, dir)
	require.NoError(t, start(SpoolConfig{Directory: dir, MaxBytes: 1 << 20, Sync: "batch"}), "a second exporter with the same spool")
	require.ErrorContains(t, start(SpoolConfig{Directory: dir, MaxBytes: 1 << 21, Sync: "batch"}), "configure the spool on one providers exporter")
}
