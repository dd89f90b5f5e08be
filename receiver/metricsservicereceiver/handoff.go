package metricsservicereceiver

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
)

// handOff delivers one batch to the pipeline. The metrics_store processor in
// the pipeline keeps it in the store and the stream hub and makes it visible
// once the rest of the pipeline accepted it. handOff runs inside the
// accumulator's transaction, so batches of one series reach the store in the
// order the pipeline accepted them.
func (r *metricsReceiver) handOff(ctx context.Context, md pmetric.Metrics) error {
	n := md.DataPointCount()
	r.node.stamp(md)
	opCtx := r.obsrep.StartMetricsOp(ctx)
	var mark *datapath.Mark
	if r.sink != nil {
		opCtx, mark = datapath.WithMark(opCtx)
	}
	err := r.next.ConsumeMetrics(opCtx, md)
	r.obsrep.EndMetricsOp(opCtx, dataFormat, n, err)
	if err != nil {
		r.in.health.noteRefusal(err)
		r.in.pipelineErrors.add(time.Now(), err.Error())
		return fmt.Errorf("next consumer: %w", err)
	}
	if mark != nil && !mark.Stored() && r.in.unsyncedWarned.CompareAndSwap(false, true) {
		r.settings.Logger.Warn("Data acknowledged by metrics_service did not reach the metrics_store processor before the answer: " +
			"reads may not see a write right after its answer. Put metrics_store before batch (and any asynchronous processor) in the " +
			"pipeline of this receiver, or add it if the pipeline has none.")
	}
	return nil
}
