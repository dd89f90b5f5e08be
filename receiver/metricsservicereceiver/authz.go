package metricsservicereceiver

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/config/configgrpc"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/metricsmodule/metricsmodule/internal/authz"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// methodFamilies are the families of the MetricsService methods whose family
// does not depend on the request.
var methodFamilies = map[string]authz.Family{
	pb.MetricsService_RecordMetric_FullMethodName:       authz.FamilyIngest,
	pb.MetricsService_RecordBatchMetrics_FullMethodName: authz.FamilyIngest,
	pb.MetricsService_GetMetrics_FullMethodName:         authz.FamilyRead,
	pb.MetricsService_QueryMetrics_FullMethodName:       authz.FamilyRead,
	pb.MetricsService_GetMetricsSummary_FullMethodName:  authz.FamilyRead,
	pb.MetricsService_GetMetricMetadata_FullMethodName:  authz.FamilyRead,
	pb.MetricsService_StreamMetrics_FullMethodName:      authz.FamilyStream,
	pb.MetricsService_RegisterMetric_FullMethodName:     authz.FamilyDefinitions,
}

// classifyMethod is the authz.Classifier of MetricsService: UnregisterMetric
// is destructive when it deletes data (delete_data, or data_retention, even
// as a dry run) and a definitions call otherwise; a MetricsService method
// missing from methodFamilies counts as destructive; health and reflection
// stay open.
func classifyMethod(method string, req any) (authz.Family, bool) {
	if f, ok := methodFamilies[method]; ok {
		return f, true
	}
	if method == pb.MetricsService_UnregisterMetric_FullMethodName {
		if r, ok := req.(*pb.UnregisterMetricRequest); ok && !r.GetDeleteData() && r.GetDataRetention() == nil {
			return authz.FamilyDefinitions, true
		}
		return authz.FamilyDestructive, true
	}
	if strings.HasPrefix(method, metricsServicePrefix) {
		return authz.FamilyDestructive, true
	}
	return "", false
}

var metricsServicePrefix = "/" + pb.MetricsService_ServiceDesc.ServiceName + "/"

// authorizer builds the Authorizer of the receiver (nil without an
// authorization block) and warns when server accepts anonymous callers.
func (r *metricsReceiver) authorizer(server string, authenticated bool) (*authz.Authorizer, error) {
	log := r.settings.Logger.With(zap.String("server", server))
	if !r.cfg.Authorization.HasValue() {
		if !authenticated {
			log.Warn("Server accepts anonymous calls to every method: set auth.authenticator and an authorization block (see README, Security)")
		}
		return nil, nil
	}
	if !authenticated {
		log.Warn("Server has no authenticator: every caller is anonymous and gets the roles of authorization.anonymous")
	}
	return authz.New(r.cfg.Authorization.Get())
}

// authzServerOptions are the gRPC interceptors that authorize MetricsService
// calls by method family (after the authenticator of auth.authenticator).
func (r *metricsReceiver) authzServerOptions() ([]configgrpc.ToServerOption, error) {
	a, err := r.authorizer("MetricsService", r.cfg.Auth.HasValue())
	if err != nil || a == nil {
		return nil, err
	}
	return []configgrpc.ToServerOption{
		configgrpc.WithGrpcServerOption(grpc.ChainUnaryInterceptor(a.UnaryServerInterceptor(classifyMethod))),
		configgrpc.WithGrpcServerOption(grpc.ChainStreamInterceptor(a.StreamServerInterceptor(classifyMethod))),
	}, nil
}

// authorizeHTTP wraps the Prometheus HTTP API handler: every path is in the
// read family.
func (r *metricsReceiver) authorizeHTTP(h http.Handler) (http.Handler, error) {
	a, err := r.authorizer("Prometheus HTTP API", r.cfg.PrometheusAPI.Get().Auth.HasValue())
	if err != nil {
		return nil, err
	}
	return a.HTTPMiddleware(authz.FamilyRead, h), nil
}
