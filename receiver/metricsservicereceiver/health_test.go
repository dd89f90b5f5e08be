package metricsservicereceiver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// TestHealthIsNotServingWhileIngestIsRefusedForMemory: while the memory
// limiter refuses data, the health service says NOT_SERVING (so probes and
// load balancers see it), and SERVING again once data is accepted.
func TestHealthIsNotServingWhileIngestIsRefusedForMemory(t *testing.T) {
	sink := &switchSink{}
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), sink)
	require.NoError(t, err)
	now := time.Now()
	var ahead atomic.Int64 // the test's clock is now + ahead
	r.in.health.now = func() time.Time { return now.Add(time.Duration(ahead.Load())) }
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	conn := dial(t, r.addr())
	c := pb.NewMetricsServiceClient(conn)
	hc := healthpb.NewHealthClient(conn)
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: pb.MetricsService_ServiceDesc.ServiceName})
		require.NoError(t, err)
		return resp.Status
	}
	record := func() error {
		_, err := c.RecordMetric(context.Background(), &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}})
		return err
	}
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, check())

	// another refusal (exporter down) does not change health
	sink.refuse(errors.New("exporter queue is full"))
	assert.Equal(t, codes.Unavailable, status.Code(record()))
	r.syncHealth()
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, check())

	sink.refuse(errors.New("data refused due to high memory usage"))
	assert.Equal(t, codes.ResourceExhausted, status.Code(record()))
	require.Eventually(t, func() bool { return check() == healthpb.HealthCheckResponse_NOT_SERVING }, 10*time.Second, 10*time.Millisecond)

	sink.refuse(nil)
	require.NoError(t, record())
	ahead.Store(int64(refusalHold + time.Millisecond))
	require.Eventually(t, func() bool { return check() == healthpb.HealthCheckResponse_SERVING }, 10*time.Second, 10*time.Millisecond)
}
