package metricsservicereceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const dataFormat = "protobuf"

// metricsService implements MetricsService. Methods whose issue has not
// landed yet answer UNIMPLEMENTED through the embedded type, naming the method.
type metricsService struct {
	pb.UnimplementedMetricsServiceServer
	r *metricsReceiver
}

// RecordMetric records one data point.
func (s *metricsService) RecordMetric(ctx context.Context, req *pb.RecordMetricRequest) (*pb.RecordMetricResponse, error) {
	if err := s.checkRequestID(req.RequestId); err != nil {
		return nil, err
	}
	if req.RequestId == "" || s.r.in.dedupOne == nil || req.ValidateOnly {
		return s.recordOne(ctx, req)
	}
	resp, dup, err := s.r.in.dedupOne.Do(req.RequestId, func() (*pb.RecordMetricResponse, error) {
		return s.recordOne(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	if dup {
		resp = resp.CloneVT()
		resp.Duplicate = true
	}
	return resp, nil
}

// checkRequestID refuses a request_id longer than dedup.max_request_id_bytes:
// it is kept in memory (and the dedup journal) for the dedup window.
func (s *metricsService) checkRequestID(id string) error {
	if limit := s.r.cfg.Dedup.MaxRequestIDBytes; limit > 0 && len(id) > limit {
		return status.Errorf(codes.InvalidArgument,
			"request_id: %d bytes, the limit is %d (fix: use a shorter idempotency key such as a UUID, or raise dedup.max_request_id_bytes)", len(id), limit)
	}
	return nil
}

func (s *metricsService) recordOne(ctx context.Context, req *pb.RecordMetricRequest) (*pb.RecordMetricResponse, error) {
	start := time.Now()
	b := s.r.in.acc.Prepare([]*pb.MetricData{req.Metric}, req.Resource, true)
	if len(b.Issues) > 0 {
		s.r.countRefused(ctx, b.Issues)
		return nil, issuesStatus(b.Issues)
	}
	resp := &pb.RecordMetricResponse{SeriesId: b.SeriesID(0), RecordedAt: timestamppb.New(start)}
	if req.ValidateOnly {
		resp.Stats = &pb.ProcessingStats{ProcessingTime: durationpb.New(time.Since(start))}
		return resp, nil
	}
	out, err := s.r.apply(ctx, b, true)
	if err != nil {
		return nil, err
	}
	resp.Stats = &pb.ProcessingStats{
		ProcessingTime:     durationpb.New(time.Since(start)),
		DatapointsAccepted: uint64(out.DataPoints),
		SeriesCreated:      uint64(out.SeriesCreated),
	}
	return resp, nil
}

// RecordBatchMetrics records many data points, atomically or best effort.
func (s *metricsService) RecordBatchMetrics(ctx context.Context, req *pb.RecordBatchMetricsRequest) (*pb.RecordBatchMetricsResponse, error) {
	if n, limit := len(req.Metrics), s.r.cfg.Limits.MaxBatchSize; n > limit {
		return nil, status.Errorf(codes.InvalidArgument,
			"metrics: batch has %d items, the limit is %d (fix: split the batch, or raise limits.max_batch_size)", n, limit)
	}
	if len(req.Metrics) == 0 {
		return nil, status.Error(codes.InvalidArgument, "metrics: batch is empty (fix: send at least one metric)")
	}
	if err := s.checkRequestID(req.RequestId); err != nil {
		return nil, err
	}
	validateOnly := req.Options.GetValidateOnly()
	if req.RequestId == "" || s.r.in.dedupMany == nil || validateOnly {
		return s.recordBatch(ctx, req)
	}
	resp, dup, err := s.r.in.dedupMany.Do(req.RequestId, func() (*pb.RecordBatchMetricsResponse, error) {
		return s.recordBatch(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	if dup {
		resp = resp.CloneVT()
		resp.Duplicate = true
	}
	return resp, nil
}

func (s *metricsService) recordBatch(ctx context.Context, req *pb.RecordBatchMetricsRequest) (*pb.RecordBatchMetricsResponse, error) {
	start := time.Now()
	opts := req.Options
	atomic := opts.GetMode() != pb.BatchMode_BATCH_MODE_BEST_EFFORT
	// labels as received (no maps) when the server's codec decoded req
	b := s.r.in.acc.PrepareWire(req.Metrics, req.Resource, grpccodec.BatchLabels(ctx, req))
	defer b.Release()
	if len(b.Issues) > 0 {
		s.r.countRefused(ctx, b.Issues)
		if atomic {
			return nil, issuesStatus(b.Issues)
		}
	}
	resp := &pb.RecordBatchMetricsResponse{RecordedAt: timestamppb.New(start)}
	if opts.GetValidateOnly() {
		resp.AcceptedCount = uint32(b.Len() - len(b.Issues))
		resp.RejectedCount = uint32(len(b.Issues))
		resp.Results = batchResults(b, opts.GetReturnAllResults())
		resp.Stats = &pb.ProcessingStats{ProcessingTime: durationpb.New(time.Since(start)), DatapointsRejected: uint64(len(b.Issues))}
		return resp, nil
	}
	refusedBefore := len(b.Issues)
	out, err := s.r.apply(ctx, b, atomic)
	if err != nil {
		return nil, err
	}
	if n := len(b.Issues) - refusedBefore; n > 0 {
		s.r.countRefused(ctx, b.Issues[refusedBefore:])
	}
	resp.AcceptedCount = uint32(out.Accepted)
	resp.RejectedCount = uint32(len(b.Issues))
	resp.Results = batchResults(b, opts.GetReturnAllResults())
	resp.Stats = &pb.ProcessingStats{
		ProcessingTime:     durationpb.New(time.Since(start)),
		DatapointsAccepted: uint64(out.DataPoints),
		DatapointsRejected: uint64(len(b.Issues)),
		SeriesCreated:      uint64(out.SeriesCreated),
	}
	if b.Detached() {
		// nothing kept points into the request (and the answer quotes
		// none of it): its buffer can serve a later request
		grpccodec.Recycle(ctx, req)
	}
	return resp, nil
}

// batchResults lists the refused items, or every item when all is set.
func batchResults(b *convert.Batch, all bool) []*pb.MetricResult {
	var results []*pb.MetricResult
	if all {
		results = make([]*pb.MetricResult, 0, b.Len())
		next := 0
		for i := 0; i < b.Len(); i++ {
			if next < len(b.Issues) && b.Issues[next].Index == i {
				results = append(results, issueResult(b.Issues[next]))
				next++
				continue
			}
			results = append(results, &pb.MetricResult{Index: uint32(i), Accepted: true, SeriesId: b.SeriesID(i)})
		}
		return results
	}
	for _, iss := range b.Issues {
		results = append(results, issueResult(iss))
	}
	return results
}

func issueResult(iss *convert.Issue) *pb.MetricResult {
	return &pb.MetricResult{
		Index:   uint32(iss.Index),
		Code:    int32(issueCode(iss)),
		Message: iss.Error(),
		Issues:  []*pb.ValidationIssue{toValidationIssue(iss)},
	}
}

// apply runs the accumulator transaction around the hand-off of the pdata
// and maps a failure to a gRPC status.
func (r *metricsReceiver) apply(ctx context.Context, b *convert.Batch, atomic bool) (convert.Outcome, error) {
	out, err := r.in.acc.Apply(b, atomic, func(md pmetric.Metrics) error {
		return r.handOff(ctx, md)
	})
	if err != nil {
		return out, consumerStatus(err)
	}
	return out, nil
}

// countRefused reports refused items in the receiver's standard telemetry.
func (r *metricsReceiver) countRefused(ctx context.Context, issues []*convert.Issue) {
	opCtx := r.obsrep.StartMetricsOp(ctx)
	r.obsrep.EndMetricsOp(opCtx, dataFormat, len(issues), issues[0])
}
