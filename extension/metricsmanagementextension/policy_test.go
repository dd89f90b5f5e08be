package metricsmanagementextension_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func errorInfo(t *testing.T, err error) (codes.Code, map[string]string) {
	t.Helper()
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info.GetMetadata()
		}
	}
	return st.Code(), nil
}

// The running collector refuses by default an export into its own OTLP
// receiver (learned from its config), the cloud metadata service and a
// scrape endpoint on every interface; with the policy keys set, they are
// accepted.
func TestDestinationPolicyInTheCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startCollector(t, t.TempDir(), "", "")
	_, port, err := net.SplitHostPort(c.otlpAddr)
	require.NoError(t, err)
	loop := otlpProvider("loop", "localhost:"+port)
	metadata := otlpProvider("metadata", "169.254.169.254:80")
	scrape := &pb.ProviderConfig{ProviderId: "scrape", Type: pb.ProviderType_PROVIDER_TYPE_PROMETHEUS,
		Settings: &pb.ProviderSettings{Prometheus: &pb.PrometheusSettings{ScrapeEndpoint: "0.0.0.0:0"}}}
	tests := []struct {
		pc         *pb.ProviderConfig
		class, key string
		field      string
	}{
		{loop, "self_endpoint", "destination_policy.allow_self", "config.settings.opentelemetry.endpoint"},
		{metadata, "cloud_metadata", "destination_policy.allow_link_local", "config.settings.opentelemetry.endpoint"},
		{scrape, "unspecified_bind", "destination_policy.allow_unspecified_bind", "config.settings.prometheus.scrape_endpoint"},
	}
	for _, tt := range tests {
		for _, validate := range []bool{true, false} {
			_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: tt.pc, ValidateConfig: validate, AutoStart: true})
			code, md := errorInfo(t, err)
			assert.Equal(t, codes.PermissionDenied, code, "%s: %v", tt.pc.GetProviderId(), err)
			assert.Equal(t, map[string]string{"field": tt.field, "class": tt.class, "config_key": tt.key}, md)
			assert.Contains(t, status.Convert(err).Message(), tt.key)
		}
	}
	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Zero(t, list.GetTotalCount())

	// The same collector with the policy open.
	open := startCollector(t, t.TempDir(), "", `
extensions:
  metrics_management:
    destination_policy:
      allow_self: true
      allow_link_local: true
      allow_unspecified_bind: true
`)
	_, port, err = net.SplitHostPort(open.otlpAddr)
	require.NoError(t, err)
	loop.GetSettings().GetOpentelemetry().Endpoint = "localhost:" + port
	for _, pc := range []*pb.ProviderConfig{loop, metadata, scrape} {
		_, err := open.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: pc})
		require.NoError(t, err, pc.GetProviderId())
	}
	list, err = open.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	var ids []string
	for _, p := range list.GetProviders() {
		ids = append(ids, p.GetConfig().GetProviderId())
	}
	assert.Equal(t, "loop,metadata,scrape", strings.Join(ids, ","))
}
