package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var secureConfig = filepath.Join("..", "..", "testdata", "config-secure.yaml")

// newCollector builds the distribution's collector (factories and
// converters as in builder-config.yaml) over the config URIs.
func newCollector(t *testing.T, uris ...string) *otelcol.Collector {
	t.Helper()
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelcol-metrics", Version: "e2e"},
		Factories: Components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:               uris,
			ProviderFactories:  []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory(), yamlprovider.NewFactory()},
			ConverterFactories: ConverterFactories(),
		}},
		SkipSettingGRPCLogger: true,
	})
	require.NoError(t, err)
	return col
}

// TestSecureConfigValidates is `otelcol-metrics validate --config
// testdata/config-secure.yaml` in-process.
func TestSecureConfigValidates(t *testing.T) {
	require.NoError(t, newCollector(t, "file:"+secureConfig).DryRun(context.Background()))
}

func TestValidateRefusesMisconfiguredAuthenticators(t *testing.T) {
	tests := []struct {
		name      string
		overrides string
		wantErr   string
	}{
		{
			name:      "unknown authenticator on the Prometheus API",
			overrides: `receivers: {metrics_service: {prometheus_api: {auth: {authenticator: basicauth/missing}}}}`,
			wantErr:   `receivers::metrics_service::prometheus_api::auth::authenticator: authenticator "basicauth/missing" is not configured under extensions`,
		},
		{
			name: "client-only authenticator on the management server",
			overrides: `
extensions:
  basicauth/client:
    client_auth: {username: u, password: p}
  metrics_management: {auth: {authenticator: basicauth/client}}
service:
  extensions: [health_check, file_storage, basicauth/metrics, basicauth/client, bearertokenauth/promapi, metrics_management]
`,
			wantErr: `extensions::metrics_management::auth::authenticator: extension "basicauth/client" is a client-only authenticator`,
		},
		{
			name:      "authenticator not enabled",
			overrides: `service: {extensions: [health_check, file_storage, bearertokenauth/promapi, metrics_management]}`,
			wantErr:   `authenticator "basicauth/metrics" is not enabled; add it to service::extensions`,
		},
		{
			name:      "unknown role",
			overrides: `receivers: {metrics_service: {authorization: {principals: {reader: [reeder]}}}}`,
			wantErr:   `principals.reader: role "reeder" is not defined under roles`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newCollector(t, "file:"+secureConfig, "yaml:"+tt.overrides).DryRun(context.Background())
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// basic returns a context that logs in with the example credentials of
// testdata/secure/htpasswd.example.
func basic(user string) context.Context {
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":example-" + user + "-password"))
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic "+cred)
}

// TestSecureConfigRuns starts testdata/config-secure.yaml (endpoints moved to
// free ports, credentials from the example files through the env vars) and
// checks each server refuses anonymous and unauthorized callers.
func TestSecureConfigRuns(t *testing.T) {
	secure, err := filepath.Abs(filepath.Join("..", "..", "testdata", "secure"))
	require.NoError(t, err)
	t.Setenv("METRICS_HTPASSWD_FILE", filepath.Join(secure, "htpasswd.example"))
	t.Setenv("METRICS_TOKEN_FILE", filepath.Join(secure, "tokens.example"))
	ingest, promAPI, mgmt := freePort(t), freePort(t), freePort(t)
	overrides := fmt.Sprintf(`
receivers:
  metrics_service:
    endpoint: %s
    prometheus_api: {endpoint: %s}
  otlp:
    protocols:
      grpc: {endpoint: %s}
      http: {endpoint: %s}
extensions:
  metrics_store:
    store: {path: %s}
  health_check: {endpoint: %s}
  file_storage: {directory: %s}
  metrics_management: {endpoint: %s}
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: error
`, ingest, promAPI, freePort(t), freePort(t), filepath.Join(t.TempDir(), "tsdb"), freePort(t), t.TempDir(), mgmt)
	col := newCollector(t, "file:"+secureConfig, "yaml:"+overrides)
	done := make(chan error, 1)
	go func() { done <- col.Run(context.Background()) }()
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return col.GetState() == otelcol.StateRunning
		}
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, otelcol.StateRunning, col.GetState(), "the collector did not start")
	t.Cleanup(func() {
		col.Shutdown()
		require.NoError(t, <-done)
	})

	dial := func(addr string) *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	ms := pb.NewMetricsServiceClient(dial(ingest))
	record := &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "jobs_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}}
	_, err = ms.RecordMetric(context.Background(), record)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	_, err = ms.RecordMetric(basic("ingester"), record)
	require.NoError(t, err)
	_, err = ms.QueryMetrics(basic("ingester"), &pb.QueryMetricsRequest{Query: "jobs_total"})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = ms.QueryMetrics(basic("reader"), &pb.QueryMetricsRequest{Query: "jobs_total"})
	require.NoError(t, err)
	_, err = ms.UnregisterMetric(basic("reader"), &pb.UnregisterMetricRequest{Name: "jobs_total", DeleteData: true})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	mc := pb.NewMetricsManagementServiceClient(dial(mgmt))
	_, err = mc.ListMetricsProviders(context.Background(), &pb.ListProvidersRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	_, err = mc.ListMetricsProviders(basic("reader"), &pb.ListProvidersRequest{})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = mc.ListMetricsProviders(basic("admin"), &pb.ListProvidersRequest{})
	require.NoError(t, err)

	get := func(token string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+promAPI+"/api/v1/query?query="+url.QueryEscape("jobs_total"), http.NoBody)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, get(""))
	assert.Equal(t, http.StatusOK, get("example-reader-token-change-me"))
	assert.Equal(t, http.StatusOK, get("example-admin-token-change-me"))
}
