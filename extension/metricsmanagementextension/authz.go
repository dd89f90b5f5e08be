package metricsmanagementextension

import (
	"strings"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/metricsmodule/metricsmodule/internal/authz"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// methodFamilies are the families of the MetricsManagementService methods.
var methodFamilies = map[string]authz.Family{
	pb.MetricsManagementService_CreateMetricsProvider_FullMethodName: authz.FamilyManagement,
	pb.MetricsManagementService_UpdateMetricsProvider_FullMethodName: authz.FamilyManagement,
	pb.MetricsManagementService_ListMetricsProviders_FullMethodName:  authz.FamilyManagement,
	pb.MetricsManagementService_GetProviderStats_FullMethodName:      authz.FamilyManagement,
	pb.MetricsManagementService_DeleteMetricsProvider_FullMethodName: authz.FamilyDestructive,
}

var managementServicePrefix = "/" + pb.MetricsManagementService_ServiceDesc.ServiceName + "/"

// classifyMethod is the authz.Classifier of MetricsManagementService: a
// method missing from methodFamilies counts as destructive; health and
// reflection stay open.
func classifyMethod(method string, _ any) (authz.Family, bool) {
	if f, ok := methodFamilies[method]; ok {
		return f, true
	}
	if strings.HasPrefix(method, managementServicePrefix) {
		return authz.FamilyDestructive, true
	}
	return "", false
}

// authzServerOptions are the gRPC interceptors that authorize
// MetricsManagementService calls by method family (after the authenticator
// of auth.authenticator); it warns when the server accepts anonymous calls.
func (x *managementExtension) authzServerOptions() ([]configgrpc.ToServerOption, error) {
	log := x.settings.Logger.With(zap.String("server", "MetricsManagementService"))
	if !x.cfg.Authorization.HasValue() {
		if !x.cfg.Auth.HasValue() {
			log.Warn("Server accepts anonymous calls to every method: set auth.authenticator and an authorization block (see README, Security)")
		}
		return nil, nil
	}
	if !x.cfg.Auth.HasValue() {
		log.Warn("Server has no authenticator: every caller is anonymous and gets the roles of authorization.anonymous")
	}
	a, err := authz.New(x.cfg.Authorization.Get())
	if err != nil {
		return nil, err
	}
	return []configgrpc.ToServerOption{
		configgrpc.WithGrpcServerOption(grpc.ChainUnaryInterceptor(a.UnaryServerInterceptor(classifyMethod))),
		configgrpc.WithGrpcServerOption(grpc.ChainStreamInterceptor(a.StreamServerInterceptor(classifyMethod))),
	}, nil
}
