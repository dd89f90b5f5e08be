package provider

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// fakeResolver resolves names from a map, in process.
func fakeResolver(names map[string][]string) func(context.Context, string) ([]string, error) {
	return func(_ context.Context, host string) ([]string, error) {
		if a, ok := names[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
}

func grpcHealthServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func pushgatewayProvider(url string) *pb.ProviderConfig {
	return &pb.ProviderConfig{
		ProviderId: "pg", Type: pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
		Settings: &pb.ProviderSettings{Prometheus: &pb.PrometheusSettings{PushGatewayUrl: url, JobName: "j"}},
	}
}

func otlpGRPCProvider(endpoint string) *pb.ProviderConfig {
	return &pb.ProviderConfig{
		ProviderId: "og", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{Endpoint: endpoint}},
		Security: &pb.SecurityConfig{Tls: &pb.TlsSettings{Insecure: true}},
	}
}

func statsdProvider(addr string) *pb.ProviderConfig {
	return &pb.ProviderConfig{
		ProviderId: "sd", Type: pb.ProviderType_PROVIDER_TYPE_STATSD,
		Settings: &pb.ProviderSettings{Statsd: &pb.StatsdSettings{Address: addr}},
	}
}

// probe_destination resolves (in process), refuses a loop, connects and
// checks the protocol, and reports each step; a dry run creates nothing.
func TestProbeDestination(t *testing.T) {
	t.Parallel()
	closed := closedPort(t)
	_, closedPortNum, _ := net.SplitHostPort(closed)
	ok := refusingServer(t, http.StatusOK)
	_, okPort, _ := net.SplitHostPort(ok[len("http://"):])
	failing := refusingServer(t, http.StatusInternalServerError)
	grpcAddr := grpcHealthServer(t)
	udpConn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer udpConn.Close()
	// The collector's own endpoint, reached through a name that resolves to it.
	self := closedPort(t)
	_, selfPort, _ := net.SplitHostPort(self)

	tests := []struct {
		name      string
		pc        *pb.ProviderConfig
		reachable bool
		lastStep  string
		detail    string
	}{
		{"pushgateway up", pushgatewayProvider("http://pg.test:" + okPort), true, StepHTTP, "HTTP status 200"},
		{"name does not resolve", pushgatewayProvider("http://pushgateway:9091"), false, StepResolve, "(dns)"},
		{"nothing listens", pushgatewayProvider("http://" + closed), false, StepConnect, "(connection_refused)"},
		{"server refuses", pushgatewayProvider(failing), false, StepHTTP, "HTTP status 500"},
		{"loop into this collector", pushgatewayProvider("http://me.test:" + selfPort), false, StepLoop, "own endpoint"},
		{"otlp grpc health", otlpGRPCProvider(grpcAddr), true, StepGRPCHealth, "SERVING"},
		{"otlp grpc nothing listens", otlpGRPCProvider("127.0.0.1:" + closedPortNum), false, StepConnect, "refused"},
		{"statsd udp listener", statsdProvider(udpConn.LocalAddr().String()), true, StepUDP, "no refusal"},
		{"statsd udp closed", statsdProvider("127.0.0.1:" + closedPortNum), false, StepUDP, "refused"},
	}
	e := NewEngine(Settings{
		TelemetrySettings: componenttest.NewNopTelemetrySettings(),
		LookupHost:        fakeResolver(map[string][]string{"pg.test": {"127.0.0.1"}, "me.test": {"127.0.0.1"}}),
		Policy:            DestinationPolicy{SelfEndpoints: []string{"127.0.0.1:" + selfPort}},
	})
	host := distribution()
	for _, f := range []exporter.Factory{
		fakeFactory("pushgateway", func() component.Config { return &pushgatewayConfig{} }),
		fakeFactory("statsd", func() component.Config { return &statsdConfig{} }),
	} {
		host.factories[f.Type()] = f
	}
	require.NoError(t, e.Start(ctx, host, nil))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.Create(ctx, &pb.CreateProviderRequest{Config: tt.pc, DryRun: true, ProbeDestination: true})
			require.NoError(t, err)
			p := resp.GetProbe()
			require.NotEmpty(t, p.GetSteps())
			last := p.GetSteps()[len(p.GetSteps())-1]
			assert.Equal(t, tt.reachable, p.GetReachable(), "%v", p.GetSteps())
			assert.Equal(t, tt.lastStep, last.GetName(), "%v", p.GetSteps())
			assert.Contains(t, last.GetDetail(), tt.detail)
			if !tt.reachable {
				var found bool
				for _, iss := range resp.GetValidationIssues() {
					found = found || iss.GetField() == "probe_destination"
				}
				assert.True(t, found, "a failed probe is a warning")
			}
		})
	}
	list, err := e.List(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Empty(t, list.GetProviders(), "probing creates nothing")
}

// A running provider whose destination name resolves to this collector's
// own endpoint is UNHEALTHY with the reason loop (reported, the destination
// policy could not see through the name), and its traffic fails over.
func TestRunningProviderIntoItselfIsReported(t *testing.T) {
	t.Parallel()
	self := closedPort(t)
	_, selfPort, _ := net.SplitHostPort(self)
	e := NewEngine(Settings{
		TelemetrySettings: componenttest.NewNopTelemetrySettings(),
		LookupHost:        fakeResolver(map[string][]string{"collector.test": {"127.0.0.1"}}),
		Policy:            DestinationPolicy{SelfEndpoints: []string{self}},
	})
	host := distribution()
	f := fakeFactory("pushgateway", func() component.Config { return &pushgatewayConfig{} })
	host.factories[f.Type()] = f
	require.NoError(t, e.Start(ctx, host, nil))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(ctx)) })
	standby, name := newSink(t, "standby")
	sb := sinkProvider("standby", name)
	sb.Filter = &pb.MetricFilter{Names: []string{"none"}}
	create(t, e, sb)
	pc := pushgatewayProvider("http://collector.test:" + selfPort)
	pc.Failover = &pb.FailoverSettings{FailoverProviderId: "standby"}
	create(t, e, pc)
	var st *pb.GetProviderStatsResponse
	eventually(t, func() bool {
		var err error
		st, err = e.Stats(ctx, &pb.GetProviderStatsRequest{ProviderId: "pg"})
		require.NoError(t, err)
		return st.GetHealth() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY
	}, "the loop is reported")
	assert.Contains(t, st.GetStats().GetLastError(), "own receiver")
	assert.EqualValues(t, 1, st.GetStats().GetFailuresByReason()[ReasonLoop])
	require.NoError(t, e.Router().ConsumeMetrics(ctx, gauges("m", 0, 4)))
	eventually(t, func() bool { return standby.pointCount() == 4 }, "the traffic fails over")
}
