package metricsmanagementextension

import (
	"context"

	"github.com/metricsmodule/metricsmodule/internal/provider"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// managementService is the gRPC face of the engine: each method calls the
// engine and maps its error to a status.
type managementService struct {
	pb.UnimplementedMetricsManagementServiceServer
	engine *provider.Engine
}

func (s *managementService) CreateMetricsProvider(ctx context.Context, req *pb.CreateProviderRequest) (*pb.CreateProviderResponse, error) {
	resp, err := s.engine.Create(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *managementService) UpdateMetricsProvider(ctx context.Context, req *pb.UpdateProviderRequest) (*pb.UpdateProviderResponse, error) {
	resp, err := s.engine.Update(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *managementService) DeleteMetricsProvider(ctx context.Context, req *pb.DeleteProviderRequest) (*pb.DeleteProviderResponse, error) {
	resp, err := s.engine.Delete(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *managementService) ListMetricsProviders(ctx context.Context, req *pb.ListProvidersRequest) (*pb.ListProvidersResponse, error) {
	resp, err := s.engine.List(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *managementService) GetProviderStats(ctx context.Context, req *pb.GetProviderStatsRequest) (*pb.GetProviderStatsResponse, error) {
	resp, err := s.engine.Stats(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}
