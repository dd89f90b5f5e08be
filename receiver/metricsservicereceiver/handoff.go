package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// Tap sees every batch the receiver hands to the pipeline (the embedded
// store, the stream hub). Stage reads the batch BEFORE the hand-off: once
// the next consumer has it, the receiver may no longer read it (a batch
// processor keeps it, a processor may mutate it). Stage returns what to do
// once the pipeline has answered.
type Tap interface {
	Stage(ctx context.Context, md pmetric.Metrics) (Staged, error)
}

// Staged is a tap's pending change for one batch.
type Staged interface {
	// Commit applies the change after the pipeline accepted the batch.
	Commit() error
	// Rollback discards it after the pipeline refused the batch.
	Rollback()
}

// handOff delivers one batch: the taps stage it, the next consumer gets it,
// then the taps commit (accepted) or roll back (refused). It runs inside the
// accumulator's transaction, so batches of one series reach the taps in the
// order the pipeline accepted them.
func (r *metricsReceiver) handOff(ctx context.Context, md pmetric.Metrics) error {
	staged := make([]Staged, 0, len(r.taps))
	rollback := func() {
		for _, s := range staged {
			s.Rollback()
		}
	}
	for _, t := range r.taps {
		s, err := t.Stage(ctx, md)
		if err != nil {
			rollback()
			return fmt.Errorf("stage batch: %w", err)
		}
		staged = append(staged, s)
	}
	n := md.DataPointCount()
	opCtx := r.obsrep.StartMetricsOp(ctx)
	err := r.next.ConsumeMetrics(opCtx, md)
	r.obsrep.EndMetricsOp(opCtx, dataFormat, n, err)
	if err != nil {
		rollback()
		r.pipelineErrors.add(time.Now(), err.Error())
		return fmt.Errorf("next consumer: %w", err)
	}
	var errs []error
	for _, s := range staged {
		errs = append(errs, s.Commit())
	}
	if err := errors.Join(errs...); err != nil {
		// The pipeline has the data; the ack stands. Say what a tap lost.
		r.settings.Logger.Warn("A tap failed to commit an accepted batch", zap.Error(err))
	}
	return nil
}
