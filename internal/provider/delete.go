package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Delete removes a provider (DeleteMetricsProvider).
func (e *Engine) Delete(ctx context.Context, req *pb.DeleteProviderRequest) (*pb.DeleteProviderResponse, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	if iss := validateID("provider_id", req.GetProviderId()); iss != nil {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{iss}}
	}
	strategy := req.GetCleanupStrategy()
	if strategy == pb.CleanupStrategy_CLEANUP_STRATEGY_UNSPECIFIED {
		strategy = pb.CleanupStrategy_CLEANUP_STRATEGY_GRACEFUL
	}
	if iss := validateEnum("cleanup_strategy", strategy); iss != nil {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{iss}}
	}
	if iss := validateDuration("drain_timeout", req.GetDrainTimeout(), false); iss != nil {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{iss}}
	}
	var at time.Time
	if strategy == pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED {
		switch ts := req.GetScheduledTime(); {
		case ts == nil:
			return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("scheduled_time", "required", "scheduled_time must be set with CLEANUP_STRATEGY_SCHEDULED", "")}}
		case ts.CheckValid() != nil || !ts.AsTime().After(e.now()):
			return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("scheduled_time", "out_of_range", "scheduled_time must be in the future", "use IMMEDIATE or GRACEFUL to delete now")}}
		default:
			at = ts.AsTime()
		}
	}
	ps, err := e.get(req.GetProviderId())
	if err != nil {
		return nil, err
	}
	if !ps.op.TryLock() {
		return nil, fmt.Errorf("%w: another operation on provider %q is in progress (an update, or a deletion draining); retry when it is done",
			ErrFailedPrecondition, req.GetProviderId())
	}
	locked := true
	defer func() {
		if locked {
			ps.op.Unlock()
		}
	}()
	drain := durationOr(req.GetDrainTimeout(), defaultDrainTimeout)

	e.mu.Lock()
	if ps.removed {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: provider %q", ErrNotFound, req.GetProviderId())
	}
	id, state := ps.rec.ID, ps.state
	var q queueInfo
	var queued uint64
	if ps.primary != nil {
		q = ps.primary.queueInfo()
		queued = ps.primary.accepted.Load() - ps.primary.sentPoints.Load()
	}
	if ps.spool != nil {
		q = queueLocked(ps)
		queued = uint64(max(ps.spool.pointsPending(), 0))
	}
	e.mu.Unlock()

	if req.GetDryRun() {
		return &pb.DeleteProviderResponse{DryRun: true, State: state, Message: dryRunMessage(strategy, id, q, queued, drain, at)}, nil
	}
	resp := &pb.DeleteProviderResponse{}
	e.mu.Lock()
	var setB []*backupRecord
	var evicted []string
	if req.GetBackup() {
		b, ev := e.addBackupLocked(ps, "before deletion")
		setB, evicted, resp.BackupId = []*backupRecord{b}, ev, b.ID
	}
	if strategy == pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED {
		nrec := ps.rec.clone()
		nrec.DeleteAt, nrec.UpdatedAt = &at, e.now()
		if err := e.store.apply(ctx, e.changeLocked([]*record{nrec}, nil, setB, evicted)); err != nil {
			e.rollbackBackupsLocked(setB)
			e.mu.Unlock()
			return nil, err
		}
		ps.rec = nrec
		if ps.primary != nil {
			ps.state = pb.ProviderState_PROVIDER_STATE_DELETING
		}
		e.scheduleLocked(ps, at)
		resp.State, resp.ScheduledTime = ps.state, timestamppb.New(at)
		resp.Message = fmt.Sprintf("provider %q will be deleted gracefully at %s", id, at.UTC().Format(time.RFC3339))
		e.mu.Unlock()
		e.log.Info("Scheduled provider deletion", zap.String("provider_id", id), zap.Time("at", at))
		return resp, nil
	}
	if e.stopping {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: the collector is shutting down", ErrUnavailable)
	}
	// Stop taking data: out of the routing table first, then retire.
	old := []*sender{ps.primary, ps.shadow}
	ps.primary, ps.shadow, ps.gap = nil, nil, false
	if ps.timer != nil && ps.timer.Stop() {
		e.bg.Done()
	}
	e.publishLocked()
	for _, s := range old {
		s.markUnrouted() // the drain counts from here, not from when stop runs
	}
	background := strategy == pb.CleanupStrategy_CLEANUP_STRATEGY_BACKGROUND
	if background {
		nrec := ps.rec.clone()
		nrec.Deleting = true
		if err := e.store.apply(ctx, e.changeLocked([]*record{nrec}, nil, setB, evicted)); err != nil {
			e.log.Warn("Could not persist the deletion; it completes in memory", zap.String("provider_id", id), zap.Error(err))
		} else {
			ps.rec = nrec
		}
		setB, evicted = nil, nil
	}
	ps.state = pb.ProviderState_PROVIDER_STATE_DRAINING
	e.beginOpLocked(ps, &operation{kind: OpDelete, cleanup: strategy})
	ps.oper.phase, ps.oper.hi, ps.oper.span = PhaseDraining, 98, drain
	if strategy == pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE {
		ps.oper.phase, ps.oper.hi, ps.oper.span = PhaseStopping, 0, 0
	}
	e.mu.Unlock()

	if background {
		locked = false
		e.bg.Go(func() {
			defer ps.op.Unlock()
			dctx, cancel := context.WithTimeout(e.baseCtx, drain)
			defer cancel()
			drained, dropped := e.stopAll(dctx, old, true)
			dropped += e.discardSpool(ps)
			if err := e.remove(dctx, ps, nil, nil); err != nil {
				e.log.Error("Could not remove the provider from storage", zap.String("provider_id", id), zap.Error(err))
			}
			e.opFinish(ps, PhaseDone, fmt.Sprintf("provider %q deleted (BACKGROUND): %d data points drained, %d dropped", id, drained, dropped), false, false)
			e.log.Info("Deleted provider (background)", zap.String("provider_id", id), zap.Uint64("drained", drained), zap.Uint64("dropped", dropped))
		})
		resp.State = pb.ProviderState_PROVIDER_STATE_DRAINING
		resp.Message = fmt.Sprintf("provider %q stopped taking data; its queue drains in the background within %s", id, drain)
		e.mu.Lock()
		resp.Operation = e.opSnapshotLocked(ps)
		e.mu.Unlock()
		return resp, nil
	}
	graceful := strategy == pb.CleanupStrategy_CLEANUP_STRATEGY_GRACEFUL
	var finalErr error
	run := func(ctx context.Context) {
		dctx, cancel := context.WithTimeout(ctx, drain)
		defer cancel()
		resp.DrainedDatapoints, resp.DroppedDatapoints = e.stopAll(dctx, old, graceful)
		resp.DroppedDatapoints += e.discardSpool(ps)
		e.opPhase(ps, PhaseSaving, 99, 99, 0)
		if err := e.remove(ctx, ps, setB, evicted); err != nil {
			finalErr = err
			e.opFinish(ps, PhaseFailed, err.Error(), true, false)
			return
		}
		resp.Deleted, resp.State = true, pb.ProviderState_PROVIDER_STATE_UNSPECIFIED
		resp.Message = fmt.Sprintf("provider %q deleted (%s): %d data points drained, %d dropped", id, shortCleanup(strategy),
			resp.DrainedDatapoints, resp.DroppedDatapoints)
		e.opFinish(ps, PhaseDone, resp.Message, false, false)
		e.log.Info("Deleted provider", zap.String("provider_id", id), zap.String("strategy", strategy.String()),
			zap.Uint64("drained", resp.DrainedDatapoints), zap.Uint64("dropped", resp.DroppedDatapoints))
	}
	locked = false
	finished, err := e.runDetached(ctx, ps, req.GetAsync(), run)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if finished {
		if finalErr != nil {
			return nil, finalErr
		}
		resp.Operation = e.opSnapshotLocked(ps)
		return resp, nil
	}
	early := &pb.DeleteProviderResponse{
		BackupId: resp.GetBackupId(), State: pb.ProviderState_PROVIDER_STATE_DRAINING, Operation: e.opSnapshotLocked(ps),
		Message: fmt.Sprintf("provider %q stopped taking data; the %s deletion is in progress (%s); it is done when the provider is gone",
			id, shortCleanup(strategy), e.opSnapshotLocked(ps).GetPhase()),
	}
	return early, nil
}

func (e *Engine) rollbackBackupsLocked(bs []*backupRecord) {
	for _, b := range bs {
		e.dropBackupLocked(b.ID)
	}
}

// stopAll stops the given senders (nil ones are skipped).
func (e *Engine) stopAll(ctx context.Context, ss []*sender, graceful bool) (drained, dropped uint64) {
	for _, s := range ss {
		if s == nil {
			continue
		}
		d, x, err := s.stop(ctx, graceful)
		if err != nil {
			e.log.Warn("Stopping a provider's exporter failed", zap.String("provider_id", s.cfg.providerID), zap.Error(err))
		}
		drained += d
		dropped += x
	}
	return drained, dropped
}

// remove deletes ps from the registry and the storage.
func (e *Engine) remove(ctx context.Context, ps *providerState, setB []*backupRecord, evicted []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := ps.rec.ID
	if err := e.store.apply(ctx, e.changeLocked(nil, []string{id}, setB, evicted)); err != nil {
		e.rollbackBackupsLocked(setB)
		return err
	}
	ps.removed = true
	if e.providers[id] == ps {
		delete(e.providers, id)
	}
	return nil
}

// runScheduledDelete deletes a provider whose scheduled time has come. On
// etcd only the node that leads the fleet's once-only work runs it (the
// others stop their exporter when the deletion reaches them through the
// watch); a node that becomes the leader later runs what is due then
// (runDueScheduledDeletes).
func (e *Engine) runScheduledDelete(id string) {
	if e.etcd != nil && !e.etcd.leads() {
		e.log.Debug("Scheduled provider deletion due: the leader of the fleet runs it", zap.String("provider_id", id))
		return
	}
	ps, err := e.get(id)
	if err != nil {
		return
	}
	ps.op.Lock()
	defer ps.op.Unlock()
	e.mu.Lock()
	if ps.removed || e.stopping || ps.rec.DeleteAt == nil {
		e.mu.Unlock()
		return
	}
	old := []*sender{ps.primary, ps.shadow}
	ps.primary, ps.shadow, ps.timer = nil, nil, nil
	ps.state = pb.ProviderState_PROVIDER_STATE_DRAINING
	e.publishLocked()
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.baseCtx, defaultDrainTimeout)
	defer cancel()
	drained, dropped := e.stopAll(ctx, old, true)
	dropped += e.discardSpool(ps)
	if err := e.remove(ctx, ps, nil, nil); errors.Is(err, ErrAborted) {
		// etcd registry: another node's scheduled deletion removed it first.
		e.log.Info("Scheduled deletion done by another node", zap.String("provider_id", id), zap.Uint64("drained", drained))
		return
	} else if err != nil {
		e.log.Error("Could not remove the provider from storage", zap.String("provider_id", id), zap.Error(err))
	}
	e.log.Info("Deleted provider (scheduled)", zap.String("provider_id", id), zap.Uint64("drained", drained), zap.Uint64("dropped", dropped))
}

// runDueScheduledDeletes runs every scheduled deletion that is due (this
// node just became the leader).
func (e *Engine) runDueScheduledDeletes() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	now := e.now()
	for id, ps := range e.providers {
		if !ps.removed && ps.rec.DeleteAt != nil && !ps.rec.DeleteAt.After(now) {
			e.bg.Go(func() { e.runScheduledDelete(id) })
		}
	}
}

func shortCleanup(s pb.CleanupStrategy) string {
	switch s {
	case pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE:
		return "IMMEDIATE"
	case pb.CleanupStrategy_CLEANUP_STRATEGY_BACKGROUND:
		return "BACKGROUND"
	case pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED:
		return "SCHEDULED"
	}
	return "GRACEFUL"
}

func dryRunMessage(s pb.CleanupStrategy, id string, q queueInfo, queued uint64, drain time.Duration, at time.Time) string {
	switch s {
	case pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE:
		return fmt.Sprintf("would stop provider %q now and drop its %d queued batches (about %d data points)", id, q.size, queued)
	case pb.CleanupStrategy_CLEANUP_STRATEGY_BACKGROUND:
		return fmt.Sprintf("would stop provider %q taking data and drain its %d queued batches in the background within %s", id, q.size, drain)
	case pb.CleanupStrategy_CLEANUP_STRATEGY_SCHEDULED:
		return fmt.Sprintf("would delete provider %q gracefully at %s", id, at.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("would stop provider %q taking data and drain its %d queued batches (about %d data points) within %s", id, q.size, queued, drain)
}
