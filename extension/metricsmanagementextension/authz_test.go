package metricsmanagementextension

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/authz"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// extHost is a host that returns its extensions.
type extHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h extHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// startSecureExtension starts the extension behind a real basicauth
// (users reader, operator, admin; password "<user>-pw").
func startSecureExtension(t *testing.T) pb.MetricsManagementServiceClient {
	t.Helper()
	ctx := context.Background()
	basicID := component.MustNewIDWithName("basicauth", "mgmt")
	host := extHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{}}
	bf := basicauthextension.NewFactory()
	bcfg := bf.CreateDefaultConfig().(*basicauthextension.Config)
	bcfg.Htpasswd = &basicauthextension.HtpasswdSettings{Inline: "reader:reader-pw\noperator:operator-pw\nadmin:admin-pw"}
	basic, err := bf.Create(ctx, extensiontest.NewNopSettings(bf.Type()), bcfg)
	require.NoError(t, err)
	require.NoError(t, basic.Start(ctx, host))
	t.Cleanup(func() { require.NoError(t, basic.Shutdown(context.Background())) })
	host.exts[basicID] = basic

	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Auth = configoptional.Some(configauth.Config{AuthenticatorID: basicID})
	cfg.Authorization = configoptional.Some(authz.Config{
		Roles: map[string][]authz.Family{
			"read-only": {authz.FamilyRead},
			"operator":  {authz.FamilyManagement},
			"admin":     {authz.FamilyAll},
		},
		Principals: map[string][]string{"reader": {"read-only"}, "operator": {"operator"}, "admin": {"admin"}},
	})
	require.NoError(t, cfg.Validate())
	x := newExtension(cfg, extensiontest.NewNopSettings(metadata.Type))
	assert.Contains(t, x.Dependencies(), basicID, "the authenticator starts first")
	require.NoError(t, x.Start(ctx, host))
	t.Cleanup(func() { require.NoError(t, x.Shutdown(context.Background())) })
	conn, err := grpc.NewClient(x.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewMetricsManagementServiceClient(conn)
}

func as(user string) context.Context {
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + user + "-pw"))
	return grpcmd.AppendToOutgoingContext(context.Background(), "authorization", "Basic "+cred)
}

func TestAuthorizationOnManagementService(t *testing.T) {
	c := startSecureExtension(t)

	_, err := c.ListMetricsProviders(context.Background(), &pb.ListProvidersRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "no credentials: %v", err)

	_, err = c.ListMetricsProviders(as("reader"), &pb.ListProvidersRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), `principal "reader" may not call /metricsmodule.v1.MetricsManagementService/ListMetricsProviders (method family "management"): roles that allow it: admin, operator`)

	_, err = c.ListMetricsProviders(as("operator"), &pb.ListProvidersRequest{})
	require.NoError(t, err)
	_, err = c.GetProviderStats(as("operator"), &pb.GetProviderStatsRequest{ProviderId: "nope"})
	assert.Equal(t, codes.NotFound, status.Code(err), "authorized, then not found: %v", err)

	_, err = c.DeleteMetricsProvider(as("operator"), &pb.DeleteProviderRequest{ProviderId: "nope"})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), `method family "destructive"`)

	_, err = c.DeleteMetricsProvider(as("admin"), &pb.DeleteProviderRequest{ProviderId: "nope"})
	assert.Equal(t, codes.NotFound, status.Code(err), "authorized, then not found: %v", err)
}

func TestClassifyManagementMethod(t *testing.T) {
	for method, want := range map[string]authz.Family{
		pb.MetricsManagementService_CreateMetricsProvider_FullMethodName: authz.FamilyManagement,
		pb.MetricsManagementService_UpdateMetricsProvider_FullMethodName: authz.FamilyManagement,
		pb.MetricsManagementService_ListMetricsProviders_FullMethodName:  authz.FamilyManagement,
		pb.MetricsManagementService_GetProviderStats_FullMethodName:      authz.FamilyManagement,
		pb.MetricsManagementService_DeleteMetricsProvider_FullMethodName: authz.FamilyDestructive,
		"/metricsmodule.v1.MetricsManagementService/Future":              authz.FamilyDestructive,
	} {
		f, ok := classifyMethod(method, nil)
		assert.True(t, ok, method)
		assert.Equal(t, want, f, method)
	}
	_, ok := classifyMethod("/grpc.health.v1.Health/Check", nil)
	assert.False(t, ok)
}
