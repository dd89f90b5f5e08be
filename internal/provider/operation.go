package provider

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Operation kinds and phases (ProviderOperation).
const (
	OpUpdate = "update"
	OpDelete = "delete"

	PhaseStarting   = "starting"
	PhaseVerifying  = "verifying"
	PhaseDraining   = "draining"
	PhaseStopping   = "stopping"
	PhaseSaving     = "saving"
	PhaseDone       = "done"
	PhaseRolledBack = "rolled_back"
	PhaseFailed     = "failed"
)

// Bounds of how long a blocking Update or Delete waits before it returns
// with the operation still running: it returns deadlineMargin before the
// caller's deadline (a fifth of the time left, between 50ms and 1s).
const (
	minDeadlineMargin = 50 * time.Millisecond
	maxDeadlineMargin = time.Second
)

// operation is a long-running change of a provider and its progress. Its
// fields are guarded by Engine.mu.
type operation struct {
	kind     string
	strategy pb.UpdateStrategy
	cleanup  pb.CleanupStrategy
	target   uint64
	started  time.Time
	updated  time.Time
	phase    string
	// percent goes from lo to hi over span after updated (time-based
	// progress of a verify period or a drain).
	lo, hi     uint32
	span       time.Duration
	done       bool
	failed     bool
	rolledBack bool
	message    string
}

// percent is the progress at now.
func (o *operation) percent(now time.Time) uint32 {
	if o.done {
		return 100
	}
	if o.span <= 0 || o.hi <= o.lo {
		return o.lo
	}
	f := float64(now.Sub(o.updated)) / float64(o.span)
	f = min(max(f, 0), 1)
	return o.lo + uint32(f*float64(o.hi-o.lo))
}

func (o *operation) toPB(now time.Time) *pb.ProviderOperation {
	if o == nil {
		return nil
	}
	return &pb.ProviderOperation{
		Kind: o.kind, Phase: o.phase, Percent: o.percent(now), Done: o.done,
		StartedAt: timestamppb.New(o.started), UpdatedAt: timestamppb.New(o.updated),
		Message: o.message, Failed: o.failed, RolledBack: o.rolledBack,
		TargetVersion: o.target, Strategy: o.strategy, CleanupStrategy: o.cleanup,
	}
}

// beginOpLocked starts tracking an operation on ps.
func (e *Engine) beginOpLocked(ps *providerState, o *operation) {
	now := e.now()
	o.started, o.updated, o.phase = now, now, PhaseStarting
	ps.oper = o
}

// opPhase moves ps's operation to a phase whose progress runs from lo to hi
// percent over span.
func (e *Engine) opPhase(ps *providerState, phase string, lo, hi uint32, span time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if o := ps.oper; o != nil && !o.done {
		o.phase, o.lo, o.hi, o.span, o.updated = phase, lo, hi, span, e.now()
	}
}

// opFinish ends ps's operation.
func (e *Engine) opFinish(ps *providerState, phase, message string, failed, rolledBack bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if o := ps.oper; o != nil && !o.done {
		o.phase, o.done, o.failed, o.rolledBack, o.message, o.updated = phase, true, failed, rolledBack, message, e.now()
	}
}

// opSnapshotLocked returns the API form of ps's operation (nil: none).
func (e *Engine) opSnapshotLocked(ps *providerState) *pb.ProviderOperation {
	return ps.oper.toPB(e.now())
}

// runDetached runs fn in the background, detached from the caller's
// context (a deadline or a cancellation never stops an operation half way),
// and waits for it until it ends, or at once with async, or until shortly
// before ctx's deadline. It reports whether fn finished. The caller holds
// ps.op; it is released when fn ends.
func (e *Engine) runDetached(ctx context.Context, ps *providerState, async bool, fn func(context.Context)) (bool, error) {
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		ps.op.Unlock()
		return false, fmt.Errorf("%w: the collector is shutting down", ErrUnavailable)
	}
	e.bg.Add(1)
	e.mu.Unlock()
	done := make(chan struct{})
	// Detached from the caller, but cut short when the engine's shutdown
	// deadline passes (baseCtx).
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(e.baseCtx, cancel)
	go func() {
		defer e.bg.Done()
		defer close(done)
		defer ps.op.Unlock()
		defer stop()
		defer cancel()
		fn(octx)
	}()
	if async {
		return false, nil
	}
	var timeout <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		margin := min(max(left/5, minDeadlineMargin), maxDeadlineMargin)
		t := time.NewTimer(max(left-margin, 0))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-done:
		return true, nil
	case <-timeout:
	case <-ctx.Done():
	}
	select {
	case <-done:
		return true, nil
	default:
		return false, nil
	}
}
