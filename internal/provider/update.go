package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Update changes a provider (UpdateMetricsProvider). Every change is a new
// config version; the strategy says how the running exporter is replaced.
func (e *Engine) Update(ctx context.Context, req *pb.UpdateProviderRequest) (resp *pb.UpdateProviderResponse, err error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	var scrub *scrubber
	defer func() {
		err = scrub.err(err)
		scrubIssues(scrub, resp.GetValidationIssues())
		if resp != nil {
			resp.Message = scrub.str(resp.GetMessage())
		}
	}()
	if iss := validateID("provider_id", req.GetProviderId()); iss != nil {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{iss}}
	}
	ps, err := e.get(req.GetProviderId())
	if err != nil {
		return nil, err
	}
	if !ps.op.TryLock() {
		return nil, fmt.Errorf("%w: another operation on provider %q is in progress; retry when it is done", ErrFailedPrecondition, req.GetProviderId())
	}
	// The lock goes to the detached operation once it starts.
	locked := true
	defer func() {
		if locked {
			ps.op.Unlock()
		}
	}()

	e.mu.Lock()
	cur, rec, state, removed := proto.Clone(ps.cfg).(*pb.ProviderConfig), ps.rec, ps.state, ps.removed
	e.mu.Unlock()
	id := rec.ID
	switch {
	case removed:
		return nil, fmt.Errorf("%w: provider %q", ErrNotFound, id)
	case state == pb.ProviderState_PROVIDER_STATE_DRAINING || state == pb.ProviderState_PROVIDER_STATE_DELETING:
		return nil, fmt.Errorf("%w: provider %q is being deleted (%s)", ErrFailedPrecondition, id, state)
	case req.GetExpectedVersion() != 0 && req.GetExpectedVersion() != rec.Version:
		return nil, fmt.Errorf("%w: provider %q is at version %d, not the expected %d; read it again and retry", ErrAborted, id, rec.Version, req.GetExpectedVersion())
	}

	strategy := req.GetStrategy()
	if strategy == pb.UpdateStrategy_UPDATE_STRATEGY_UNSPECIFIED {
		strategy = pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING
	}
	var reqIssues []*pb.ValidationIssue
	reqIssues = appendNonNil(reqIssues, validateEnum("strategy", strategy))
	reqIssues = appendNonNil(reqIssues, validateDuration("drain_timeout", req.GetDrainTimeout(), false))
	reqIssues = appendNonNil(reqIssues, validateDuration("verify_period", req.GetVerifyPeriod(), false))
	if len(reqIssues) > 0 {
		return nil, &ValidationError{Issues: reqIssues}
	}
	next, note, err := updateConfig(req, cur, rec, strategy)
	if err != nil {
		return nil, err
	}
	scrub = newScrubber(next, cur)
	issues := validateConfig(next)
	if hasErrors(issues) {
		return nil, &ValidationError{Issues: issues}
	}
	if err := e.checkPolicy(next); err != nil {
		return nil, err
	}
	b, err := buildConfig(e.factories, next)
	if err != nil {
		return nil, withWarnings(err, issues)
	}
	issues = append(issues, b.warnings...)
	issues = append(issues, e.failoverWarnings(next)...)
	resp = &pb.UpdateProviderResponse{PreviousVersion: rec.Version, ValidationIssues: issues, Strategy: strategy}
	provider := func() *pb.Provider {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.toProviderLocked(ps)
	}
	if req.GetValidateOnly() {
		resp.Provider, resp.Message = provider(), "the config is valid; nothing was changed (validate_only)"
		return resp, nil
	}
	same := proto.Equal(next, cur)
	running := state == pb.ProviderState_PROVIDER_STATE_RUNNING
	failed := state == pb.ProviderState_PROVIDER_STATE_FAILED
	recreate := strategy == pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE
	// A STOPPED provider is started by RECREATE only; a FAILED one by any update.
	start := running || failed || recreate
	if same && !recreate && !failed {
		resp.Provider, resp.Message = provider(), fmt.Sprintf("the config equals version %d; nothing was changed", rec.Version)
		return resp, nil
	}

	// The new version, saved with the backup (if asked) once applied.
	version := rec.Version
	if !same {
		version = rec.Last + 1
	}
	var backup *backupRecord
	var evicted []string
	if req.GetBackup() {
		e.mu.Lock()
		backup, evicted = e.addBackupLocked(ps, fmt.Sprintf("before update to version %d", version))
		e.mu.Unlock()
		resp.BackupId = backup.ID
	}
	drain := durationOr(req.GetDrainTimeout(), defaultDrainTimeout)
	verify := durationOr(req.GetVerifyPeriod(), defaultVerifyPeriod)

	e.mu.Lock()
	e.beginOpLocked(ps, &operation{kind: OpUpdate, strategy: strategy, target: version})
	e.mu.Unlock()
	var (
		final    *pb.UpdateProviderResponse
		finalErr error
	)
	base := resp
	run := func(ctx context.Context) {
		final, finalErr = e.applyUpdate(ctx, ps, updateJob{
			next: next, cur: cur, b: b, version: version, same: same, start: start, running: running,
			strategy: strategy, note: note, backup: backup, scrub: scrub, evicted: evicted, drain: drain, verify: verify, resp: base,
		})
	}
	locked = false
	finished, err := e.runDetached(ctx, ps, req.GetAsync(), run)
	if err != nil {
		if backup != nil {
			e.mu.Lock()
			e.dropBackupLocked(backup.ID)
			e.mu.Unlock()
		}
		return nil, err
	}
	if finished {
		return final, finalErr
	}
	// Still running: the caller gets the operation to follow.
	e.mu.Lock()
	defer e.mu.Unlock()
	early := &pb.UpdateProviderResponse{
		PreviousVersion: base.GetPreviousVersion(), BackupId: base.GetBackupId(), ValidationIssues: base.GetValidationIssues(),
		Strategy: strategy, Provider: e.toProviderLocked(ps), Operation: e.opSnapshotLocked(ps),
	}
	early.Message = fmt.Sprintf("the %s update to version %d is in progress (%s); follow operation in ListMetricsProviders or GetProviderStats",
		shortStrategy(strategy), version, early.GetOperation().GetPhase())
	return early, nil
}

// updateJob is an update that passed validation, to apply.
type updateJob struct {
	next, cur            *pb.ProviderConfig
	b                    *built
	version              uint64
	same, start, running bool
	strategy             pb.UpdateStrategy
	note                 string
	backup               *backupRecord
	scrub                *scrubber
	evicted              []string
	drain, verify        time.Duration
	resp                 *pb.UpdateProviderResponse
}

// applyUpdate runs the strategy of an update and records its outcome; the
// caller holds ps.op. It ends ps's operation.
func (e *Engine) applyUpdate(ctx context.Context, ps *providerState, j updateJob) (resp *pb.UpdateProviderResponse, err error) {
	resp = j.resp
	next, cur, b, version, strategy, note := j.next, j.cur, j.b, j.version, j.strategy, j.note
	id := ps.rec.ID
	defer func() {
		switch {
		case err != nil:
			e.opFinish(ps, PhaseFailed, j.scrub.str(err.Error()), true, resp.GetRolledBack())
		case resp.GetRolledBack():
			e.opFinish(ps, PhaseRolledBack, j.scrub.str(resp.GetMessage()), false, true)
		default:
			e.opFinish(ps, PhaseDone, j.scrub.str(resp.GetMessage()), false, false)
		}
		if err != nil || resp == nil {
			return
		}
		e.mu.Lock()
		resp.Operation = e.opSnapshotLocked(ps)
		e.mu.Unlock()
	}()
	var out outcome
	switch {
	case !j.start:
		out = outcome{applied: true, message: fmt.Sprintf("version %d saved; the provider stays STOPPED", version)}
	case !j.running:
		out = e.startStopped(ctx, ps, next, version)
	case strategy == pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE:
		out = e.recreate(ctx, ps, cur, next, version, j.drain)
	case strategy == pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN:
		out = e.blueGreen(ctx, ps, next, version, j.verify, j.drain)
	default:
		out = e.rolling(ctx, ps, next, version, j.drain)
	}
	e.opPhase(ps, PhaseSaving, 99, 99, 0)

	// Record the outcome: a new version (applied, or kept for the record).
	e.mu.Lock()
	nrec := ps.rec.clone()
	now := e.now()
	if !j.same {
		if note == "" {
			note = "updated (" + shortStrategy(strategy) + ")"
		}
		if !out.applied {
			note += ": not applied: " + out.message
		}
		v, verr := newVersion(version, next, now, note, out.applied)
		if verr != nil {
			e.mu.Unlock()
			return nil, verr
		}
		nrec.addVersion(v, e.set.MaxVersions)
	}
	if out.applied {
		nrec.Version = version
		if j.start {
			nrec.Running = true
		}
	}
	nrec.UpdatedAt = now
	var setB []*backupRecord
	if j.backup != nil {
		setB = []*backupRecord{j.backup}
	}
	if err := e.store.apply(ctx, e.changeLocked([]*record{nrec}, nil, setB, j.evicted)); err != nil {
		if j.backup != nil {
			e.dropBackupLocked(j.backup.ID)
		}
		e.mu.Unlock()
		return nil, err
	}
	ps.rec = nrec
	if out.applied {
		ps.cfg = proto.Clone(next).(*pb.ProviderConfig)
		ps.exporterType = b.exporterType.String()
		ps.exporterID = exporterID(b.exporterType, id, ps.generation, version).String()
		ps.stats.setHealthConfig(next.GetHealthCheck())
		e.publishLocked()
	}
	resp.Provider = e.toProviderLocked(ps)
	e.mu.Unlock()

	resp.RolledBack, resp.Message = out.rolledBack, out.message
	e.log.Info("Updated provider", zap.String("provider_id", id), zap.String("strategy", strategy.String()),
		zap.Uint64("version", resp.Provider.GetVersion()), zap.Bool("applied", out.applied), zap.String("message", out.message))
	if out.err != nil {
		return nil, out.err
	}
	return resp, nil
}

// updateConfig returns the config an update asks for: the request's, a
// version from the history, or (RECREATE without config) the current one.
func updateConfig(req *pb.UpdateProviderRequest, cur *pb.ProviderConfig, rec *record, strategy pb.UpdateStrategy) (*pb.ProviderConfig, string, error) {
	id := rec.ID
	switch {
	case req.GetRollbackToVersion() != 0 && req.GetConfig() != nil:
		return nil, "", &ValidationError{Issues: []*pb.ValidationIssue{issue("rollback_to_version", "conflict",
			"config and rollback_to_version are exclusive", "set one of them")}}
	case req.GetRollbackToVersion() != 0:
		v := rec.find(req.GetRollbackToVersion())
		if v == nil {
			return nil, "", &ValidationError{Issues: []*pb.ValidationIssue{issue("rollback_to_version", "unknown_version",
				fmt.Sprintf("version %d is not in the history of %q (kept: %s)", req.GetRollbackToVersion(), id, versionList(rec)), "")}}
		}
		pc, err := v.config()
		if err != nil {
			return nil, "", err
		}
		return pc, fmt.Sprintf("rollback to version %d", v.Version), nil
	case req.GetConfig() != nil:
		next := proto.Clone(req.GetConfig()).(*pb.ProviderConfig)
		if req.GetUpdateMask() != nil {
			pid := next.GetProviderId()
			merged, err := applyMask(proto.Clone(cur).(*pb.ProviderConfig), next, req.GetUpdateMask())
			if err != nil {
				return nil, "", err
			}
			next = merged
			next.ProviderId = pid
		}
		if next.GetProviderId() == "" {
			next.ProviderId = id
		} else if next.GetProviderId() != id {
			return nil, "", &ValidationError{Issues: []*pb.ValidationIssue{issue("config.provider_id", "conflict",
				fmt.Sprintf("config.provider_id %q differs from provider_id %q", next.GetProviderId(), id), "leave it empty or equal")}}
		}
		unredact(next, cur)
		return next, "", nil
	case req.GetUpdateMask() != nil:
		return nil, "", &ValidationError{Issues: []*pb.ValidationIssue{issue("config", "required",
			"update_mask needs config to take the named fields from", "set config with the new values")}}
	case strategy == pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE:
		return cur, "", nil
	}
	return nil, "", &ValidationError{Issues: []*pb.ValidationIssue{issue("config", "required",
		"config or rollback_to_version must be set", "or strategy RECREATE alone to restart the provider")}}
}

func versionList(rec *record) string {
	s := ""
	for i, v := range rec.Versions {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(v.Version)
	}
	return s
}

func shortStrategy(s pb.UpdateStrategy) string {
	switch s {
	case pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE:
		return "RECREATE"
	case pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN:
		return "BLUE_GREEN"
	}
	return "ROLLING"
}

// outcome is what a strategy did.
type outcome struct {
	applied, rolledBack bool
	message             string
	// err fails the call (the outcome is recorded first).
	err error
}

func (e *Engine) setState(ps *providerState, st pb.ProviderState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps.state = st
}

// startStopped starts a STOPPED (with RECREATE) or FAILED provider with next.
func (e *Engine) startStopped(ctx context.Context, ps *providerState, next *pb.ProviderConfig, version uint64) outcome {
	e.setState(ps, pb.ProviderState_PROVIDER_STATE_STARTING)
	s, b, err := e.startSender(ctx, next, ps.generation, version, ps.stats)
	if err != nil {
		e.fail(ps, err)
		return outcome{message: "the exporter did not start: " + err.Error(), err: err}
	}
	e.mu.Lock()
	ps.cfg = proto.Clone(next).(*pb.ProviderConfig)
	e.runLocked(ps, s, b)
	e.mu.Unlock()
	return outcome{applied: true, message: fmt.Sprintf("version %d started", version)}
}

// rolling starts the new exporter, switches the traffic to it atomically and
// drains the old one: nothing is lost.
func (e *Engine) rolling(ctx context.Context, ps *providerState, next *pb.ProviderConfig, version uint64, drain time.Duration) outcome {
	s, b, err := e.startSender(ctx, next, ps.generation, version, ps.stats)
	if err != nil {
		return outcome{message: "the new exporter did not start: " + err.Error(), err: err}
	}
	e.mu.Lock()
	old := ps.primary
	ps.cfg = proto.Clone(next).(*pb.ProviderConfig)
	e.runLocked(ps, s, b) // publishes before old retires
	ps.state = pb.ProviderState_PROVIDER_STATE_UPDATING
	e.mu.Unlock()
	e.opPhase(ps, PhaseDraining, 20, 98, drain)
	drained, dropped := e.retireOld(ctx, old, drain)
	e.settle(ps)
	return outcome{applied: true, message: fmt.Sprintf("version %d took over; the old exporter drained %d data points, dropped %d", version, drained, dropped)}
}

// recreate stops the old exporter (draining it), then starts the new one.
// Data arriving in between is dropped and counted. If the new one does not
// start, the old config is started again.
func (e *Engine) recreate(ctx context.Context, ps *providerState, cur, next *pb.ProviderConfig, version uint64, drain time.Duration) outcome {
	e.mu.Lock()
	old := ps.primary
	ps.primary, ps.gap, ps.state = nil, true, pb.ProviderState_PROVIDER_STATE_UPDATING
	e.publishLocked()
	e.mu.Unlock()
	e.opPhase(ps, PhaseDraining, 0, 80, drain)
	_, dropped := e.retireOld(ctx, old, drain)
	e.opPhase(ps, PhaseStarting, 80, 80, 0)
	s, b, err := e.startSender(ctx, next, ps.generation, version, ps.stats)
	if err == nil {
		e.mu.Lock()
		ps.cfg = proto.Clone(next).(*pb.ProviderConfig)
		e.runLocked(ps, s, b)
		e.mu.Unlock()
		return outcome{applied: true, message: fmt.Sprintf("version %d started after the old exporter stopped (dropped %d data points)", version, dropped)}
	}
	// Put the previous version back.
	e.mu.Lock()
	prev := ps.rec.Version
	e.mu.Unlock()
	s, b, err2 := e.startSender(ctx, cur, ps.generation, prev, ps.stats)
	if err2 != nil {
		e.mu.Lock()
		ps.gap = false
		e.publishLocked()
		e.mu.Unlock()
		e.fail(ps, err2)
		return outcome{message: "the new exporter did not start and the previous one did not restart", err: errors.Join(err, err2)}
	}
	e.mu.Lock()
	e.runLocked(ps, s, b)
	e.mu.Unlock()
	return outcome{
		rolledBack: true, message: "the new exporter did not start; version " + fmt.Sprint(prev) + " was restarted: " + err.Error(),
		err: fmt.Errorf("%w; version %d was restarted", err, prev),
	}
}

// blueGreen starts the candidate beside the running exporter; it receives a
// copy of the traffic until it has been healthy for verify, then takes over
// and the old one drains. A candidate that turns unhealthy, or exported
// nothing of what it got, is stopped and the update is rolled back.
func (e *Engine) blueGreen(ctx context.Context, ps *providerState, next *pb.ProviderConfig, version uint64, verify, drain time.Duration) outcome {
	cstats := newStats(next.GetHealthCheck(), e.now, e.providerLogger(ps.rec.ID).With(zap.String("candidate", fmt.Sprintf("v%d", version))))
	s, b, err := e.startSender(ctx, next, ps.generation, version, cstats)
	if err != nil {
		return outcome{message: "the candidate exporter did not start: " + err.Error(), err: err}
	}
	e.mu.Lock()
	ps.shadow, ps.state = s, pb.ProviderState_PROVIDER_STATE_UPDATING
	e.publishLocked()
	e.mu.Unlock()
	ps.stats.note(fmt.Sprintf("blue-green: verifying version %d for %s", version, verify))
	e.opPhase(ps, PhaseVerifying, 10, 80, verify)

	ok, why := e.verify(s, cstats, verify)
	if !ok {
		e.mu.Lock()
		ps.shadow = nil
		e.publishLocked()
		e.mu.Unlock()
		_, _, _ = s.stop(ctx, false)
		e.settle(ps)
		ps.stats.note(fmt.Sprintf("blue-green: version %d rolled back: %s", version, why))
		return outcome{rolledBack: true, message: fmt.Sprintf("version %d failed verification and was rolled back: %s", version, why)}
	}
	e.mu.Lock()
	old := ps.primary
	ps.shadow = nil
	s.stats.Store(ps.stats)
	ps.cfg = proto.Clone(next).(*pb.ProviderConfig)
	ps.replacing = old // the candidate had a copy of what the spool holds now: the old destination gets it
	e.runLocked(ps, s, b)
	ps.replacing = nil
	ps.state = pb.ProviderState_PROVIDER_STATE_UPDATING
	e.mu.Unlock()
	e.opPhase(ps, PhaseDraining, 80, 98, drain)
	drained, dropped := e.retireOld(ctx, old, drain)
	e.settle(ps)
	ps.stats.note(fmt.Sprintf("blue-green: version %d promoted (%s)", version, why))
	return outcome{applied: true, message: fmt.Sprintf("version %d verified (%s) and promoted; the old exporter drained %d data points, dropped %d", version, why, drained, dropped)}
}

// verify watches a blue-green candidate for the verify period.
func (e *Engine) verify(s *sender, st *Stats, period time.Duration) (bool, string) {
	deadline := time.NewTimer(period)
	defer deadline.Stop()
	poll := time.NewTicker(verifyPoll)
	defer poll.Stop()
	unhealthy := func() (bool, string) {
		if st.Health() != pb.HealthStatus_HEALTH_STATUS_UNHEALTHY {
			return false, ""
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return true, "unhealthy: " + st.tracker.reason
	}
	for {
		select {
		case <-e.quit:
			return false, "the collector is shutting down"
		case <-poll.C:
			if bad, why := unhealthy(); bad {
				return false, why
			}
		case <-deadline.C:
			if bad, why := unhealthy(); bad {
				return false, why
			}
			switch h := st.Health(); {
			case h == pb.HealthStatus_HEALTH_STATUS_DEGRADED:
				st.mu.Lock()
				defer st.mu.Unlock()
				return false, "degraded: " + st.tracker.reason
			case st.sent.Load() == 0 && (s.accepted.Load() > 0 || st.exportErrors.Load() > 0):
				return false, "no export completed during the verify period"
			case st.sent.Load() == 0:
				return true, "no data arrived during the verify period"
			default:
				return true, fmt.Sprintf("%d data points exported without errors", st.sent.Load())
			}
		}
	}
}

// retireOld drains and stops a replaced exporter.
func (e *Engine) retireOld(ctx context.Context, old *sender, drain time.Duration) (drained, dropped uint64) {
	if old == nil {
		return 0, 0
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	defer context.AfterFunc(e.baseCtx, cancel)() // the engine's shutdown deadline cuts it short
	drained, dropped, err := old.stop(dctx, true)
	if sp := old.spool.Load(); sp != nil {
		sp.endDrain(old) // what old did not send goes to the new consumer
	}
	if err != nil {
		e.log.Warn("Stopping the replaced exporter failed", zap.String("provider_id", old.cfg.providerID), zap.Error(err))
	}
	if dropped > 0 {
		e.log.Warn("The replaced exporter dropped data points", zap.String("provider_id", old.cfg.providerID), zap.Uint64("datapoints", dropped))
	}
	return drained, dropped
}

// settle puts ps back to RUNNING (or DELETING when scheduled) after an update.
func (e *Engine) settle(ps *providerState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case ps.primary == nil:
	case ps.rec.DeleteAt != nil:
		ps.state = pb.ProviderState_PROVIDER_STATE_DELETING
	default:
		ps.state = pb.ProviderState_PROVIDER_STATE_RUNNING
	}
}
