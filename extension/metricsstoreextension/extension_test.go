package metricsstoreextension

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/internal/stream"
	"github.com/metricsmodule/metricsmodule/internal/testpeer"
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

func TestClusterModeStartsWhileNATSIsUnreachable(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Store.Path = t.TempDir()
	cfg.Stream.Cluster.Node = "n1"
	cfg.Stream.Cluster.NATS.URL = "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(testpeer.FreePort(t)))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	set := extensiontest.NewNopSettings(metadata.Type)
	set.MeterProvider = mp
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()), "an unreachable NATS degrades streams, it does not fail the start")
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	gauges := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && len(g.DataPoints) == 1 {
				gauges[m.Name] = g.DataPoints[0].Value
			}
		}
	}
	assert.Equal(t, map[string]int64{metricClusterHealthy: 0, metricClusterBuffered: 0},
		map[string]int64{metricClusterHealthy: gauges[metricClusterHealthy], metricClusterBuffered: gauges[metricClusterBuffered]})
	assert.Contains(t, gauges, metricClusterHealthy, "cluster telemetry is observed in cluster mode")
	st, on := ext.(interface {
		ClusterStatus() (stream.ClusterStatus, bool)
	}).ClusterStatus()
	require.True(t, on)
	assert.False(t, st.Healthy)
	assert.Contains(t, st.Message, "nats")
	require.NotNil(t, ext.(datapath.Provider).Sink().Hub())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, ext.Shutdown(ctx))
}

// The store's and the hub's gauges and counters go through the collector's
// MeterProvider while the extension runs.
func TestTelemetry(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Store.Path = t.TempDir()
	set := extensiontest.NewNopSettings(metadata.Type)
	set.MeterProvider = mp
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	names := func() map[string]bool {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		out := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				out[m.Name] = true
			}
		}
		return out
	}
	got := names()
	for _, n := range []string{metricHeadSeries, metricSamplesAppended, metricSamplesRejected, metricBlocks, metricDiskBytes, metricSubscriptions, metricStreams, metricStreamMemory} {
		assert.True(t, got[n], n)
	}
	require.NoError(t, ext.Shutdown(context.Background()))
	assert.Empty(t, names(), "nothing is observed after Shutdown")
}
