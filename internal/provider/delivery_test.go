package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// closedPort returns 127.0.0.1:port where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// refusingServer answers every request with code.
func refusingServer(t *testing.T, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// hangingServer accepts requests and never answers them (until the client
// gives up).
func hangingServer(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
	return srv.URL
}

// otlpHTTPProvider exports with the real otlp_http exporter, retrying with
// a one-hour back-off: only the first attempt of each batch happens during
// the test, and its failure is visible only through the retry observation.
func otlpHTTPProvider(id, endpoint string) *pb.ProviderConfig {
	return &pb.ProviderConfig{
		ProviderId: id, Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{
			Endpoint: endpoint, Protocol: pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF, Timeout: durationpb.New(500 * time.Millisecond),
		}},
		Retry: &pb.RetryPolicy{
			Enabled: true, InitialInterval: durationpb.New(time.Hour), MaxInterval: durationpb.New(time.Hour),
			MaxElapsedTime: durationpb.New(2 * time.Hour),
		},
		Security: &pb.SecurityConfig{BearerToken: "s3cr3t-token-value"},
	}
}

// deleteNow removes a provider at once (its retrying export is cancelled).
func deleteNow(t *testing.T, e *Engine, id string) {
	t.Helper()
	_, err := e.Delete(ctx, &pb.DeleteProviderRequest{ProviderId: id, CleanupStrategy: pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE})
	require.NoError(t, err)
}

// A destination that is down or refuses makes the provider UNHEALTHY after
// its first failed attempt, while exporterhelper still retries (no export
// has returned yet), with the error, its count, reason and time in the API,
// secrets scrubbed; its traffic moves to the failover provider.
func TestHealthSeesFailedAttemptsWhileRetrying(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, endpoint, reason string
	}{
		{"connection refused", "http://" + closedPort(t), ReasonConnectionRefused},
		{"HTTP 503", refusingServer(t, http.StatusServiceUnavailable), ReasonHTTP5xx},
		{"no answer", hangingServer(t), ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEngine(t, distribution(), nil)
			standby, name := newSink(t, "standby")
			sb := sinkProvider("standby", name)
			sb.Filter = &pb.MetricFilter{Names: []string{"none"}}
			create(t, e, sb)
			pc := otlpHTTPProvider("p", tt.endpoint)
			pc.Failover = &pb.FailoverSettings{FailoverProviderId: "standby"}
			create(t, e, pc)
			t.Cleanup(func() { deleteNow(t, e, "p") })

			require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("load", 0, 10)))
			var st *pb.GetProviderStatsResponse
			// Documented bound: one attempt (at most the provider's timeout, 500ms here) plus the next check.
			require.Eventually(t, func() bool {
				var err error
				st, err = e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "p"})
				require.NoError(t, err)
				return st.GetHealth() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY
			}, 3*time.Second, 5*time.Millisecond, "UNHEALTHY after the first failed attempt")
			s := st.GetStats()
			assert.Zero(t, s.GetExportErrors(), "no export has returned: exporterhelper is still retrying")
			assert.GreaterOrEqual(t, s.GetFailedAttempts(), uint64(1))
			assert.NotEmpty(t, s.GetLastError())
			assert.NotContains(t, s.GetLastError(), "s3cr3t")
			assert.NotNil(t, s.GetLastErrorTime())
			assert.Positive(t, s.GetFailuresByReason()[tt.reason], "reasons: %v, last error: %s", s.GetFailuresByReason(), s.GetLastError())

			list, err := e.List(ctx, &pb.ListProvidersRequest{})
			require.NoError(t, err)
			for _, p := range list.GetProviders() {
				if p.GetConfig().GetProviderId() == "p" {
					assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, p.GetHealth())
					assert.GreaterOrEqual(t, p.GetErrorCount(), uint64(1))
					assert.NotNil(t, p.GetLastErrorTime())
					assert.NotEmpty(t, p.GetLastError())
				}
			}

			// Failover acts on it: new traffic goes to the standby.
			require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("load", 100, 10)))
			eventually(t, func() bool { return standby.pointCount() >= 10 }, "the standby takes the traffic")
		})
	}
}

func TestFailureReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"dns error", fmt.Errorf("post: %w", &net.DNSError{Err: "no such host", Name: "pushgateway", IsNotFound: true}), ReasonDNS},
		{"dns text", errors.New(`Post "http://pushgateway:9091": dial tcp: lookup pushgateway on 127.0.0.53:53: no such host`), ReasonDNS},
		{"refused errno", fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), ReasonConnectionRefused},
		{"refused text in a gRPC status", status.Error(codes.Unavailable, "connection error: dial tcp 127.0.0.1:1: connect: connection refused"), ReasonConnectionRefused},
		{"deadline", fmt.Errorf("send: %w", context.DeadlineExceeded), ReasonTimeout},
		{"tls", errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), ReasonTLS},
		{"otlp http 500", errors.New("error exporting items, request to http://x/v1/metrics responded with HTTP Status Code 500"), ReasonHTTP5xx},
		{"remote write 400", errors.New("Permanent error: remote write returned HTTP status 400 Bad Request; err = <nil>"), ReasonHTTP4xx},
		{"pushgateway 503", errors.New("push to http://127.0.0.1:1/metrics/job/myapp: 503 Service Unavailable: no"), ReasonHTTP5xx},
		{"grpc code", status.Error(codes.ResourceExhausted, "too much"), "grpc_resource_exhausted"},
		{"other", errors.New("something else"), ReasonOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, failureReason(tt.err))
		})
	}
}

// Deleting a provider and creating it again gives it a new generation, so
// its exporter ID (and internal telemetry) differs; the counter survives a
// restart through the storage.
func TestGenerationNeverReused(t *testing.T) {
	t.Parallel()
	store := newMemStorage()
	host := distribution()
	_, name := newSink(t, "a")
	e := NewEngine(Settings{TelemetrySettings: componenttest.NewNopTelemetrySettings(), LookupHost: noDNS})
	require.NoError(t, e.Start(ctx, host, store))
	first := create(t, e, sinkProvider("a", name)).GetProvider()
	assert.Equal(t, "sink/providers/a/g1/v1", first.GetExporterId())
	assert.Equal(t, uint64(1), first.GetGeneration())
	deleteNow(t, e, "a")
	second := create(t, e, sinkProvider("a", name)).GetProvider()
	assert.Equal(t, "sink/providers/a/g2/v1", second.GetExporterId())
	deleteNow(t, e, "a")
	require.NoError(t, e.Shutdown(ctx))

	e2 := newTestEngine(t, host, store)
	third := create(t, e2, sinkProvider("a", name)).GetProvider()
	assert.Equal(t, "sink/providers/a/g3/v1", third.GetExporterId(), "the counter is persisted")
	st, err := e2.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "a"})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), st.GetGeneration())
}
