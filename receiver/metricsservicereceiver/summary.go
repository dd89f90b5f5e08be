package metricsservicereceiver

import (
	"context"
	"time"

	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/internal/summary"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// newSummary returns the summary engine over the receiver's store (nil
// without a store), with the pipeline's recent refusals as its health.
func (r *metricsReceiver) newSummary() *summary.Engine {
	if r.store == nil {
		return nil
	}
	var st summary.Store = r.store
	if r.sink != nil && r.sink.Shared() != nil {
		// shared store: the fleet's series and labels from the backend
		st = sharedstore.NewSummaryView(r.store, r.sink.Shared().Config(), r.settings.Logger.Named("shared"))
	}
	return summary.New(st, summary.Config{
		SeriesLimit:     int64(r.cfg.Limits.MaxSeriesPerMetric),
		Recommendations: r.cfg.Recommendations,
		PipelineHealth: func(now time.Time) (bool, string) {
			n := r.in.pipelineErrors.recent(now, 5*time.Minute)
			return n > 0, r.in.pipelineErrors.message(n)
		},
	})
}

// GetMetricsSummary reports totals, top metrics, cardinality, store size,
// health, trends and recommendations (internal/summary).
func (s *metricsService) GetMetricsSummary(ctx context.Context, req *pb.GetMetricsSummaryRequest) (*pb.GetMetricsSummaryResponse, error) {
	if s.r.summary == nil {
		return nil, errNoStore("GetMetricsSummary")
	}
	resp, err := s.r.summary.Summarize(ctx, req)
	if err != nil {
		return nil, statusOf(err)
	}
	return resp, nil
}
