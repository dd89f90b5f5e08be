package metricsservicereceiver

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/reads"
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

// errNoReads is the answer of read methods when neither the store nor a
// remote backend is configured.
func errNoReads(method string) error {
	return status.Errorf(codes.FailedPrecondition,
		"%s: reads are disabled: add the store block (or query.remote.endpoint) to the metrics_service receiver config", method)
}

// readsStatus maps a failed read to a gRPC status, in one place: a refused
// field is INVALID_ARGUMENT, a read over a configured bound
// RESOURCE_EXHAUSTED; query failures by their kind (a timeout
// DEADLINE_EXCEEDED, a busy engine RESOURCE_EXHAUSTED, a remote backend
// that did not answer UNAVAILABLE, a query the engine cannot evaluate
// INVALID_ARGUMENT); anything else INTERNAL.
func readsStatus(err error) error {
	var re *reads.Error
	if errors.As(err, &re) {
		if re.Kind == reads.KindTooLarge {
			return status.Error(codes.ResourceExhausted, re.Error())
		}
		return status.Error(codes.InvalidArgument, re.Error())
	}
	var qe *query.Error
	if !errors.As(err, &qe) {
		return status.Error(codes.Internal, err.Error())
	}
	switch qe.Kind {
	case query.KindBadQuery, query.KindExecution:
		return status.Error(codes.InvalidArgument, qe.Error())
	case query.KindTimeout:
		return status.Error(codes.DeadlineExceeded, qe.Error())
	case query.KindCanceled:
		return status.Error(codes.Canceled, qe.Error())
	case query.KindTooLarge, query.KindOverloaded:
		return status.Error(codes.ResourceExhausted, qe.Error())
	case query.KindUnavailable:
		return status.Error(codes.Unavailable, qe.Error())
	default:
		return status.Error(codes.Internal, qe.Error())
	}
}
