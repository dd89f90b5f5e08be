package metricsservicereceiver

import (
	"context"
	"iter"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// storeResumer gives the accumulator the stored total of a counter series it
// starts (after a restart, or after its idle state was dropped), so a
// counter's total survives both. It asks the store for the series the
// record's point becomes, with the store's own name translation.
type storeResumer struct {
	st     *store.Store
	logger *zap.Logger
	warned *atomic.Bool // a read error was logged (once: not per series)
}

var _ convert.Resumer = storeResumer{}

// ResumeCounter implements convert.Resumer.
func (r storeResumer) ResumeCounter(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (total float64, last, first int64, ok bool) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rattrs := rm.Resource().Attributes()
	for k, v := range res {
		rattrs.PutStr(k, v)
	}
	pm := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	pm.SetName(m.Name)
	pm.SetUnit(m.Unit)
	sum := pm.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	attrs := dp.Attributes()
	for k, v := range labels {
		attrs.PutStr(k, v)
	}
	smp, ok, err := r.st.LastSample(context.Background(), md)
	if err != nil {
		// the series starts from zero, as without a store
		if r.warned.CompareAndSwap(false, true) {
			r.logger.Warn("Could not read the stored total of a counter series; it starts from zero (logged once)",
				zap.String("metric", m.Name), zap.Error(err))
		}
		return 0, 0, 0, false
	}
	if !ok {
		return 0, 0, 0, false
	}
	ms := int64(time.Millisecond)
	return smp.Value, smp.Last * ms, smp.First * ms, true
}
