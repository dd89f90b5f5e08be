package metricsmanagementextension_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// specExample is the specification's CreateMetricsProvider example as JSON.
const specExample = `{"config": {"provider_id": "prod-prometheus", "name": "Production Prometheus",
	"type": "PROVIDER_TYPE_PROMETHEUS",
	"settings": {"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp"}}},
	"validate_config": true, "auto_start": true}`

func parseCreate(t *testing.T, js string) *pb.CreateProviderRequest {
	t.Helper()
	req := &pb.CreateProviderRequest{}
	require.NoError(t, protojson.Unmarshal([]byte(js), req))
	return req
}

// recordSpecExample records the specification's RecordMetric example n times.
func recordSpecExample(t *testing.T, c *testCollector, n int) {
	t.Helper()
	for range n {
		_, err := c.ingest.RecordMetric(context.Background(), &pb.RecordMetricRequest{
			Resource: &pb.Resource{Attributes: map[string]string{"service.name": "users-api"}},
			Metric: &pb.MetricData{
				Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1.0,
				Labels: map[string]string{"method": "GET", "path": "/api/v1/users"},
			},
		})
		require.NoError(t, err)
	}
}

// The specification's example, with an OTLP provider pointing at a second
// collector's OTLP receiver: the data recorded afterwards reaches it. The
// example itself is created verbatim too.
func TestSpecExampleThroughCollector(t *testing.T) {
	t.Parallel()
	sink := startOTLPSink(t, "")
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	hc, err := healthpb.NewHealthClient(c.mgmtConn).Check(ctx, &healthpb.HealthCheckRequest{Service: "metricsmodule.v1.MetricsManagementService"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.Status)
	assert.ElementsMatch(t, []string{
		"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
		"grpc.reflection.v1alpha.ServerReflection", "metricsmodule.v1.MetricsManagementService",
	}, listServices(t, c.mgmtConn))

	js := strings.NewReplacer(
		`"type": "PROVIDER_TYPE_PROMETHEUS"`, `"type": "PROVIDER_TYPE_OPENTELEMETRY"`,
		`"prod-prometheus"`, `"prod-otlp"`,
		`"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp"}`,
		`"opentelemetry": {"endpoint": "`+sink.addr+`"}}, "security": {"tls": {"insecure": true}`,
	).Replace(specExample)
	resp, err := c.mgmt.CreateMetricsProvider(ctx, parseCreate(t, js))
	require.NoError(t, err)
	assert.True(t, resp.GetCreated())
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, resp.GetProvider().GetState())
	assert.Equal(t, "otlp_grpc/providers/prod-otlp/g1/v1", resp.GetProvider().GetExporterId())

	recordSpecExample(t, c, 3)
	require.Eventually(t, func() bool { v, _ := sink.value("http_requests_total", "method", "GET"); return v == 3 },
		20*time.Second, 10*time.Millisecond, "the recorded counter reaches the provider's destination")

	// The example verbatim: the pushgateway exporter is compiled in, so it is
	// created and runs (its pushes go to "pushgateway:9091", a name the
	// in-process resolver of this test binary does not know: dns_test.go).
	resp, err = c.mgmt.CreateMetricsProvider(ctx, parseCreate(t, specExample))
	require.NoError(t, err)
	assert.Equal(t, "pushgateway/providers/prod-prometheus/g2/v1", resp.GetProvider().GetExporterId())
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, resp.GetProvider().GetState())
	again, err := c.mgmt.CreateMetricsProvider(ctx, parseCreate(t, specExample))
	require.NoError(t, err)
	assert.False(t, again.GetCreated(), "idempotent by provider id")

	// A custom debug provider gets the data too.
	dbg := &pb.ProviderConfig{
		ProviderId: "debug", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{
			ExporterType: "debug",
			Config:       mustStruct(t, map[string]any{"verbosity": "basic"}),
		}},
	}
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: dbg, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	recordSpecExample(t, c, 1)
	require.Eventually(t, func() bool {
		st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "debug"})
		return err == nil && st.GetStats().GetDatapointsSent() > 0
	}, 20*time.Second, 10*time.Millisecond)
	// The example's pushes failed on the name lookup, answered in-process.
	require.Eventually(t, func() bool {
		st, err := c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "prod-prometheus"})
		return err == nil && strings.Contains(st.GetStats().GetLastError(), errNoDNS.Error())
	}, 20*time.Second, 10*time.Millisecond, "the pushgateway provider's export fails on the in-process resolver")

	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 3, list.GetTotalCount())
	assert.Equal(t, map[string]int32{"PROVIDER_TYPE_OPENTELEMETRY": 1, "PROVIDER_TYPE_PROMETHEUS": 1, "PROVIDER_TYPE_CUSTOM": 1}, list.GetCounts().GetByType())
}

func TestStatusCodes(t *testing.T) {
	t.Parallel()
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	// INVALID_ARGUMENT with field violations
	bad := parseCreate(t, `{"config": {"provider_id": "Bad!", "type": "PROVIDER_TYPE_PROMETHEUS",
		"settings": {"prometheus": {"remote_write_url": "prometheus:9090"}}}}`)
	_, err := c.mgmt.CreateMetricsProvider(ctx, bad)
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), err)
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
				assert.NotEmpty(t, v.GetReason())
			}
		}
	}
	assert.ElementsMatch(t, []string{"config.provider_id", "config.settings.prometheus.remote_write_url"}, fields)

	// unknown key in a custom exporter config
	custom := &pb.ProviderConfig{
		ProviderId: "c", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: "debug", Config: mustStruct(t, map[string]any{"verbose": true})}},
	}
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: custom, ValidateConfig: true})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "verbose")

	// FAILED_PRECONDITION naming an exporter type that is not compiled in
	custom.GetSettings().GetCustom().ExporterType = "kafka"
	custom.GetSettings().GetCustom().Config = nil
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: custom, ValidateConfig: true})
	st = status.Convert(err)
	require.Equal(t, codes.FailedPrecondition, st.Code())
	require.Len(t, st.Details(), 1)
	pf := st.Details()[0].(*errdetails.PreconditionFailure)
	assert.Equal(t, "kafka", pf.GetViolations()[0].GetSubject())

	// NOT_FOUND, ALREADY_EXISTS, ABORTED
	_, err = c.mgmt.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "nope"})
	assert.Equal(t, codes.NotFound, status.Code(err))
	_, err = c.mgmt.DeleteMetricsProvider(ctx, &pb.DeleteProviderRequest{ProviderId: "nope"})
	assert.Equal(t, codes.NotFound, status.Code(err))
	p := otlpProvider("p", "127.0.0.1:1")
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: p})
	require.NoError(t, err)
	p.Name = "other"
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: p})
	assert.Equal(t, codes.AlreadyExists, status.Code(err))
	_, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: p, ExpectedVersion: 5})
	assert.Equal(t, codes.Aborted, status.Code(err))
	_, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "nope", Config: p})
	assert.Equal(t, codes.NotFound, status.Code(err))
}

// The specification's example against a real Pushgateway (Debian
// prometheus-pushgateway): the recorded counter is pushed under job "myapp".
func TestSpecExampleToPushgateway(t *testing.T) {
	t.Parallel()
	pg := testpeer.Start(t, testpeer.Config{
		Binary: "prometheus-pushgateway",
		Args: func(addr string) []string {
			return []string{"--web.listen-address=" + addr, "--persistence.file=", "--log.level=warn"}
		},
		ReadyPath: "/-/ready",
	})
	c := startCollector(t, t.TempDir(), "", "")
	js := strings.Replace(specExample, "http://pushgateway:9091", pg.URL(), 1)
	resp, err := c.mgmt.CreateMetricsProvider(context.Background(), parseCreate(t, js))
	require.NoError(t, err)
	require.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, resp.GetProvider().GetState())
	recordSpecExample(t, c, 2)
	require.Eventually(t, func() bool {
		body := httpGet(t, pg.URL()+"/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "http_requests_total{") && strings.Contains(line, `job="myapp"`) &&
				strings.Contains(line, `method="GET"`) && strings.HasSuffix(line, " 2") {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "the push gateway holds the pushed counter")
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The default config of `make run` (testdata/config.yaml) with the endpoints
// and directories moved: the extension and the providers exporter are on,
// and the specification's example (as an OTLP provider) gets the data.
func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	sink := startOTLPSink(t, "")
	dir := t.TempDir()
	overrides := `
receivers:
  metrics_service:
    prometheus_api:
      endpoint: ` + freeAddr(t) + `
  otlp:
    protocols:
      http:
        endpoint: ` + freeAddr(t) + `
extensions:
  metrics_store:
    store:
      path: ` + filepath.Join(dir, "tsdb") + `
  health_check:
    endpoint: ` + freeAddr(t) + `
processors:
  batch:
    timeout: 10ms
service:
  extensions: [metrics_store, file_storage, metrics_management]
`
	c := startCollector(t, filepath.Join(dir, "storage"), filepath.Join("..", "..", "testdata", "config.yaml"), overrides)
	js := strings.NewReplacer(
		`"type": "PROVIDER_TYPE_PROMETHEUS"`, `"type": "PROVIDER_TYPE_OPENTELEMETRY"`,
		`"prometheus": {"push_gateway_url": "http://pushgateway:9091", "job_name": "myapp"}`,
		`"opentelemetry": {"endpoint": "`+sink.addr+`"}}, "security": {"tls": {"insecure": true}`,
	).Replace(specExample)
	_, err := c.mgmt.CreateMetricsProvider(context.Background(), parseCreate(t, js))
	require.NoError(t, err)
	recordSpecExample(t, c, 2)
	require.Eventually(t, func() bool { v, _ := sink.value("http_requests_total", "method", "GET"); return v == 2 },
		20*time.Second, 10*time.Millisecond)
}

func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := grpc_reflection_v1.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&grpc_reflection_v1.ServerReflectionRequest{
		MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return s
}
