package metricsservicereceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// The series cache's hits, misses and size are the receiver's telemetry,
// and its instruments are gone after Shutdown.
func TestTelemetryReportsSeriesCache(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	set := receivertest.NewNopSettings(metadata.Type)
	set.MeterProvider = mp
	r, err := newReceiver(cfg, set, new(consumertest.MetricsSink))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewMetricsServiceClient(conn)

	req := &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{
		{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"a": "1"}},
		{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Labels: map[string]string{"a": "2"}},
	}}
	for range 3 {
		resp, err := client.RecordBatchMetrics(context.Background(), req)
		require.NoError(t, err)
		require.EqualValues(t, 2, resp.AcceptedCount)
	}
	collect := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		out := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.Name != meterName {
				continue
			}
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						out[m.Name] += dp.Value
					}
				case metricdata.Gauge[int64]:
					for _, dp := range d.DataPoints {
						out[m.Name] += dp.Value
					}
				}
			}
		}
		return out
	}
	want := r.in.acc.SeriesCacheStats()
	require.Equal(t, map[string]int64{
		MetricSeriesCacheHits: int64(want.Hits), MetricSeriesCacheMisses: 2, MetricSeriesCacheSize: 2,
	}, collect())
	require.EqualValues(t, 4, want.Hits)

	require.NoError(t, r.Shutdown(context.Background()))
	require.Empty(t, collect(), "the instruments are unregistered at Shutdown")
}
