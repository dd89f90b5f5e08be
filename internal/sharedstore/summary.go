package sharedstore

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/summary"
)

// statusTTL is how long a fetched backend status answers summaries.
const statusTTL = 2 * time.Second

// SummaryView is the summary.Store of a node in shared mode: the fleet's
// series per metric name, label cardinality and series total from the
// backend's index; ingest rates, samples, refusals, metadata, blocks and
// disk from the node's own store (what this node ingested). When the
// backend does not answer, the node's own figures stand in (logged).
type SummaryView struct {
	summary.Store
	status *Status
	logger *zap.Logger

	mu      sync.Mutex
	fetched time.Time
	last    *TSDBStatus
	failed  bool
}

var _ summary.Store = (*SummaryView)(nil)

// NewSummaryView returns the view over the node's store local.
func NewSummaryView(local summary.Store, cfg Config, logger *zap.Logger) *SummaryView {
	return &SummaryView{Store: local, status: NewStatus(cfg), logger: logger}
}

// tsdb returns the backend's status, fetched at most every statusTTL; nil
// when the backend did not answer.
func (v *SummaryView) tsdb() *TSDBStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.last != nil && time.Since(v.fetched) < statusTTL {
		return v.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.status.cfg.Timeout)
	defer cancel()
	st, err := v.status.TSDB(ctx)
	if err != nil {
		if !v.failed {
			v.logger.Warn("The shared store's index statistics are unavailable: summaries show this node's own store", zap.Error(err))
		}
		v.failed = true
		return nil
	}
	if v.failed {
		v.logger.Info("The shared store's index statistics are available again")
	}
	v.failed, v.last, v.fetched = false, st, time.Now()
	return st
}

// SeriesPerMetric returns the backend's series per metric name.
func (v *SummaryView) SeriesPerMetric() map[string]int64 {
	if st := v.tsdb(); st != nil {
		out := make(map[string]int64, len(st.SeriesPerMetric))
		for k, n := range st.SeriesPerMetric {
			out[k] = n
		}
		return out
	}
	return v.Store.SeriesPerMetric()
}

// SeriesPerMetricMatching counts the backend's series matching ms.
func (v *SummaryView) SeriesPerMetricMatching(ctx context.Context, ms ...*labels.Matcher) (map[string]int64, error) {
	return v.status.SeriesPerMetricMatching(ctx, time.Now(), ms...)
}

// LabelCardinality returns the backend's distinct values per label name.
func (v *SummaryView) LabelCardinality() map[string]int64 {
	if st := v.tsdb(); st != nil {
		out := make(map[string]int64, len(st.LabelValues))
		for k, n := range st.LabelValues {
			out[k] = n
		}
		return out
	}
	return v.Store.LabelCardinality()
}

// HeadStats is the node's head with the backend's series total.
func (v *SummaryView) HeadStats(limit int) store.HeadStats {
	hs := v.Store.HeadStats(limit)
	if st := v.tsdb(); st != nil {
		hs.NumSeries = uint64(st.TotalSeries)
	}
	return hs
}
