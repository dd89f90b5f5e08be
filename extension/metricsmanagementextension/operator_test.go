package metricsmanagementextension_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The specification's pushgateway provider, through the API, against a
// destination where nothing listens and one that refuses every push: with
// the pushgateway exporter's default retry_on_failure (first retry after
// 5s, for 5 minutes), the provider is UNHEALTHY after its first failed
// attempt, with the error, its count, reason and time in the API.
func TestUnreachableAndRefusingDestinationsTurnUnhealthy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer refusing.Close()

	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()
	for _, tt := range []struct{ id, url, reason string }{
		{"unreachable", "http://" + closed, "connection_refused"},
		{"refusing", refusing.URL, "http_5xx"},
	} {
		_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: &pb.ProviderConfig{
			ProviderId: tt.id, Name: tt.id, Type: pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
			Settings: &pb.ProviderSettings{Prometheus: &pb.PrometheusSettings{PushGatewayUrl: tt.url, JobName: "myapp", Timeout: durationpb.New(2 * time.Second)}},
		}, ValidateConfig: true, AutoStart: true})
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = c.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: tt.id, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
		})
	}
	recordSpecExample(t, c, 1)
	for _, tt := range []struct{ id, reason string }{{"unreachable", "connection_refused"}, {"refusing", "http_5xx"}} {
		var st *pb.GetProviderStatsResponse
		require.Eventually(t, func() bool {
			st, err = c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: tt.id})
			require.NoError(t, err)
			return st.GetHealth() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY
		}, 5*time.Second, 10*time.Millisecond, "%s: UNHEALTHY within one attempt (timeout 2s) and a check", tt.id)
		assert.Positive(t, st.GetStats().GetFailuresByReason()[tt.reason], "%s: %v %s", tt.id, st.GetStats().GetFailuresByReason(), st.GetStats().GetLastError())
		assert.NotNil(t, st.GetStats().GetLastErrorTime())
		assert.Zero(t, st.GetStats().GetExportErrors(), "still retrying")
	}
	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	for _, p := range list.GetProviders() {
		assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, p.GetHealth())
		assert.NotEmpty(t, p.GetLastError())
		assert.Positive(t, p.GetErrorCount())
	}
}

// The README's blue-green update under a 1s client deadline: the call
// returns before the deadline, the update completes and is observable to
// its end, and the partial update (update_mask) keeps the name.
func TestBlueGreenUpdateUnderClientDeadline(t *testing.T) {
	t.Parallel()
	sinkA, sinkB := startOTLPSink(t, ""), startOTLPSink(t, "")
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()
	p := otlpProvider("prod", sinkA.addr)
	p.Name = "Production"
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: p, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)

	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.mgmt.UpdateMetricsProvider(dctx, &pb.UpdateProviderRequest{
		ProviderId: "prod", Strategy: pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, VerifyPeriod: durationpb.New(2 * time.Second),
		Config:     &pb.ProviderConfig{Settings: otlpProvider("", sinkB.addr).GetSettings()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"settings.opentelemetry.endpoint"}},
	})
	require.NoError(t, err, "no DeadlineExceeded: %v", status.Code(err) == codes.DeadlineExceeded)
	assert.False(t, resp.GetOperation().GetDone())
	assert.Equal(t, "verifying", resp.GetOperation().GetPhase())

	var op *pb.ProviderOperation
	require.Eventually(t, func() bool {
		st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "prod"})
		require.NoError(t, err)
		op = st.GetOperation()
		return op.GetDone()
	}, 30*time.Second, 10*time.Millisecond, "the update runs to its end")
	assert.Equal(t, "done", op.GetPhase(), op.GetMessage())
	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	got := list.GetProviders()[0]
	assert.Equal(t, uint64(2), got.GetVersion())
	assert.Equal(t, "Production", got.GetConfig().GetName(), "the partial update keeps the name")
	assert.Equal(t, sinkB.addr, got.GetConfig().GetSettings().GetOpentelemetry().GetEndpoint())
}
