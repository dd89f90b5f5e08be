package metricsservicereceiver

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/authz"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

// extHost is a host that returns its extensions.
type extHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h extHost) GetExtensions() map[component.ID]component.Component { return h.exts }

var (
	basicID  = component.MustNewIDWithName("basicauth", "server")
	bearerID = component.MustNewIDWithName("bearertokenauth", "promapi")
)

// startAuthExtensions starts a real basicauth (users ingester, reader,
// curator, admin; password "<user>-pw") and bearertokenauth (tokens
// reader-token, ingester-token) and returns a host that has them.
func startAuthExtensions(t *testing.T) extHost {
	t.Helper()
	ctx := context.Background()
	host := extHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{}}

	bf := basicauthextension.NewFactory()
	bcfg := bf.CreateDefaultConfig().(*basicauthextension.Config)
	bcfg.Htpasswd = &basicauthextension.HtpasswdSettings{Inline: "ingester:ingester-pw\nreader:reader-pw\ncurator:curator-pw\nadmin:admin-pw"}
	require.NoError(t, bcfg.Validate())
	basic, err := bf.Create(ctx, extensiontest.NewNopSettings(bf.Type()), bcfg)
	require.NoError(t, err)

	tf := bearertokenauthextension.NewFactory()
	tcfg := tf.CreateDefaultConfig().(*bearertokenauthextension.Config)
	tcfg.Tokens = []configopaque.String{"reader-token", "ingester-token"}
	require.NoError(t, tcfg.Validate())
	bearer, err := tf.Create(ctx, extensiontest.NewNopSettings(tf.Type()), tcfg)
	require.NoError(t, err)

	for id, ext := range map[component.ID]component.Component{basicID: basic, bearerID: bearer} {
		require.NoError(t, ext.Start(ctx, host))
		t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
		host.exts[id] = ext
	}
	return host
}

func secureAuthorization() authz.Config {
	return authz.Config{
		Roles: map[string][]authz.Family{
			"ingest-only": {authz.FamilyIngest},
			"read-only":   {authz.FamilyRead, authz.FamilyStream},
			"curator":     {authz.FamilyDefinitions},
			"admin":       {authz.FamilyAll},
		},
		Principals: map[string][]string{
			"ingester": {"ingest-only"},
			"reader":   {"read-only"},
			"curator":  {"curator"},
			"admin":    {"admin"},
		},
		Tokens: map[string]configopaque.String{"reader": "reader-token", "ingester": "ingester-token"},
	}
}

// startSecureReceiver starts a receiver whose gRPC server authenticates with
// basicauth and whose Prometheus API authenticates with bearertokenauth.
func startSecureReceiver(t *testing.T) (pb.MetricsServiceClient, *grpc.ClientConn, string) {
	t.Helper()
	host := startAuthExtensions(t)
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Auth = configoptional.Some(configauth.Config{AuthenticatorID: basicID})
	next, storeHost := storePipeline(t, t.TempDir(), nil, &switchSink{})
	for id, ext := range storeHost.GetExtensions() {
		host.exts[id] = ext
	}
	hc := confighttp.NewDefaultServerConfig()
	hc.NetAddr.Endpoint = "127.0.0.1:0"
	hc.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: bearerID}})
	cfg.PrometheusAPI = configoptional.Some(hc)
	cfg.Authorization = configoptional.Some(secureAuthorization())
	require.NoError(t, cfg.Validate())

	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	conn, err := grpc.NewClient(r.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewMetricsServiceClient(conn), conn, "http://" + r.httpLn.Addr().String()
}

// as returns a context that logs in as user with basic auth.
func as(user string) context.Context {
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + user + "-pw"))
	return grpcmd.AppendToOutgoingContext(context.Background(), "authorization", "Basic "+cred)
}

func TestAuthorizationOnMetricsService(t *testing.T) {
	c, conn, _ := startSecureReceiver(t)
	record := &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}}
	query := &pb.QueryMetricsRequest{Query: "jobs_total"}

	t.Run("no credentials is unauthenticated", func(t *testing.T) {
		_, err := c.RecordMetric(context.Background(), record)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		_, err = c.QueryMetrics(context.Background(), query)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	})
	t.Run("wrong password is unauthenticated", func(t *testing.T) {
		ctx := grpcmd.AppendToOutgoingContext(context.Background(), "authorization",
			"Basic "+base64.StdEncoding.EncodeToString([]byte("admin:nope")))
		_, err := c.RecordMetric(ctx, record)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	})
	t.Run("ingest-only may ingest but not query", func(t *testing.T) {
		_, err := c.RecordMetric(as("ingester"), record)
		require.NoError(t, err)
		_, err = c.RecordBatchMetrics(as("ingester"), &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{record.Metric}})
		require.NoError(t, err)
		_, err = c.QueryMetrics(as("ingester"), query)
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		msg := status.Convert(err).Message()
		assert.Contains(t, msg, `principal "ingester"`)
		assert.Contains(t, msg, `method family "read"`)
		assert.Contains(t, msg, "admin, read-only")
	})
	t.Run("read-only may query and stream but not ingest", func(t *testing.T) {
		_, err := c.QueryMetrics(as("reader"), query)
		require.NoError(t, err)
		_, err = c.GetMetricsSummary(as("reader"), &pb.GetMetricsSummaryRequest{})
		require.NoError(t, err)
		_, err = c.RecordMetric(as("reader"), record)
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

		ctx, cancel := context.WithCancel(as("ingester"))
		defer cancel()
		s, err := c.StreamMetrics(ctx, &pb.StreamMetricsRequest{})
		require.NoError(t, err)
		_, err = s.Recv()
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), `method family "stream"`)
	})
	t.Run("UnregisterMetric with delete_data needs destructive", func(t *testing.T) {
		_, err := c.RegisterMetric(as("curator"), &pb.RegisterMetricRequest{Definition: requestsDef()})
		require.NoError(t, err)
		_, err = c.RegisterMetric(as("reader"), &pb.RegisterMetricRequest{Definition: requestsDef()})
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

		for _, req := range []*pb.UnregisterMetricRequest{
			{Name: "http_requests_total", DeleteData: true},
			{Name: "http_requests_total", DeleteData: true, DryRun: true},
			{Name: "http_requests_total", DataRetention: durationpb.New(3600 * time.Second)},
		} {
			_, err = c.UnregisterMetric(as("curator"), req)
			require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), `method family "destructive"`)
			assert.Contains(t, status.Convert(err).Message(), "roles that allow it: admin")
		}
		// curator may unregister keeping the data; admin may delete it
		_, err = c.UnregisterMetric(as("curator"), &pb.UnregisterMetricRequest{Name: "http_requests_total", DryRun: true})
		require.NoError(t, err)
		_, err = c.UnregisterMetric(as("admin"), &pb.UnregisterMetricRequest{Name: "http_requests_total", DeleteData: true})
		require.NoError(t, err)
	})
	t.Run("health needs authentication only", func(t *testing.T) {
		hc := healthpb.NewHealthClient(conn)
		_, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		resp, err := hc.Check(as("ingester"), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
	})
}

func TestAuthorizationOnPrometheusAPI(t *testing.T) {
	_, _, base := startSecureReceiver(t)
	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape("up"), http.NoBody)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, _ := get("")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = get("forged-token")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body := get("ingester-token")
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, `principal \"ingester\"`)
	assert.Contains(t, body, `"errorType":"forbidden"`)
	code, body = get("reader-token")
	assert.Equal(t, http.StatusOK, code, body)
}

func TestClassifyMethod(t *testing.T) {
	tests := []struct {
		method string
		req    any
		want   authz.Family
		open   bool
	}{
		{method: pb.MetricsService_RecordMetric_FullMethodName, want: authz.FamilyIngest},
		{method: pb.MetricsService_RecordBatchMetrics_FullMethodName, want: authz.FamilyIngest},
		{method: pb.MetricsService_GetMetrics_FullMethodName, want: authz.FamilyRead},
		{method: pb.MetricsService_QueryMetrics_FullMethodName, want: authz.FamilyRead},
		{method: pb.MetricsService_GetMetricsSummary_FullMethodName, want: authz.FamilyRead},
		{method: pb.MetricsService_GetMetricMetadata_FullMethodName, want: authz.FamilyRead},
		{method: pb.MetricsService_StreamMetrics_FullMethodName, want: authz.FamilyStream},
		{method: pb.MetricsService_RegisterMetric_FullMethodName, want: authz.FamilyDefinitions},
		{method: pb.MetricsService_UnregisterMetric_FullMethodName, req: &pb.UnregisterMetricRequest{Name: "m"}, want: authz.FamilyDefinitions},
		{method: pb.MetricsService_UnregisterMetric_FullMethodName, req: &pb.UnregisterMetricRequest{Name: "m", DeleteData: true}, want: authz.FamilyDestructive},
		{method: pb.MetricsService_UnregisterMetric_FullMethodName, req: &pb.UnregisterMetricRequest{Name: "m", DataRetention: durationpb.New(60 * time.Second)}, want: authz.FamilyDestructive},
		{method: pb.MetricsService_UnregisterMetric_FullMethodName, req: nil, want: authz.FamilyDestructive},
		{method: "/metricsmodule.v1.MetricsService/SomethingNew", want: authz.FamilyDestructive},
		{method: "/grpc.health.v1.Health/Check", open: true},
		{method: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", open: true},
	}
	for _, tt := range tests {
		f, ok := classifyMethod(tt.method, tt.req)
		assert.Equal(t, !tt.open, ok, tt.method)
		assert.Equal(t, tt.want, f, tt.method)
	}
}
