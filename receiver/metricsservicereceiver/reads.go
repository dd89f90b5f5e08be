package metricsservicereceiver

import (
	"context"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// QueryMetrics runs a PromQL instant or range query (package reads).
func (s *metricsService) QueryMetrics(ctx context.Context, req *pb.QueryMetricsRequest) (*pb.QueryMetricsResponse, error) {
	if s.r.reads == nil {
		return nil, errNoReads("QueryMetrics")
	}
	resp, err := s.r.reads.QueryMetrics(ctx, req)
	if err != nil {
		return nil, readsStatus(err)
	}
	return resp, nil
}

// GetMetrics lists series a page at a time: raw samples of the matching
// series, or an aggregation over a step (package reads).
func (s *metricsService) GetMetrics(ctx context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	if s.r.reads == nil {
		return nil, errNoReads("GetMetrics")
	}
	resp, err := s.r.reads.GetMetrics(ctx, req)
	if err != nil {
		return nil, readsStatus(err)
	}
	return resp, nil
}
