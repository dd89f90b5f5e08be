package metricsservicereceiver

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// storageHost is a host with one file_storage extension.
type storageHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// TestDefinitionsInStorageExtension keeps the definitions in file_storage
// (definitions.storage) and reads them back after a restart of both.
func TestDefinitionsInStorageExtension(t *testing.T) {
	dir := t.TempDir()
	id := component.MustNewID("file_storage")
	run := func(register bool) []*pb.MetricMetadata {
		f := filestorage.NewFactory()
		cfg := f.CreateDefaultConfig().(*filestorage.Config)
		cfg.Directory = dir
		ext, err := f.Create(context.Background(), extension.Settings{ID: id, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, cfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
		defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
		host := storageHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{id: ext}}

		rcfg := createDefaultConfig().(*Config)
		rcfg.NetAddr.Endpoint = "127.0.0.1:0"
		rcfg.Definitions.Storage = &id
		set := receivertest.NewNopSettings(metadata.Type)
		set.ID = component.NewID(metadata.Type) // stable, as in a collector: it names the storage client
		r, err := newReceiver(rcfg, set, &switchSink{})
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), host))
		defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
		conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		c := pb.NewMetricsServiceClient(conn)
		if register {
			_, err := c.RegisterMetric(context.Background(), &pb.RegisterMetricRequest{Definition: requestsDef()})
			require.NoError(t, err)
		}
		md, err := c.GetMetricMetadata(context.Background(), &pb.GetMetricMetadataRequest{})
		require.NoError(t, err)
		return md.Metadata
	}
	require.Len(t, run(true), 1)
	got := run(false)
	require.Len(t, got, 1, "the definition comes back from file_storage")
	assert.Equal(t, "http_requests_total", got[0].Definition.Name)
}
