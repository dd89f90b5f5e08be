package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Create creates a provider (CreateMetricsProvider). The request is checked
// against the destination policy before anything is built; errors and
// issues are scrubbed of the config's secrets.
func (e *Engine) Create(ctx context.Context, req *pb.CreateProviderRequest) (resp *pb.CreateProviderResponse, err error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	var scrub *scrubber
	defer func() {
		err = scrub.err(err)
		scrubIssues(scrub, resp.GetValidationIssues())
	}()
	pc, restored, err := e.createConfig(req)
	if err != nil {
		return nil, err
	}
	scrub = newScrubber(pc)
	issues := validateConfig(pc)
	if hasErrors(issues) {
		return nil, &ValidationError{Issues: issues}
	}
	if err := e.checkPolicy(pc); err != nil {
		return nil, err
	}
	b, buildErr := buildConfig(e.factories, pc)
	buildErr = scrub.err(buildErr)
	if buildErr != nil && (req.GetValidateConfig() || req.GetDryRun()) {
		return nil, withWarnings(buildErr, issues)
	}
	if buildErr != nil {
		issues = append(issues, warning("config", "not_buildable", buildErr.Error(), "the provider is FAILED until an update fixes it"))
	} else {
		issues = append(issues, b.warnings...)
	}
	issues = append(issues, e.failoverWarnings(pc)...)
	id := pc.GetProviderId()
	var probe *pb.DestinationProbe
	if req.GetProbeDestination() {
		probe = e.probe(ctx, pc, scrub)
		if !probe.GetReachable() {
			last := probe.GetSteps()[len(probe.GetSteps())-1]
			issues = append(issues, warning("probe_destination", "unreachable",
				fmt.Sprintf("the destination %s failed the %s check: %s", probe.GetEndpoint(), last.GetName(), last.GetDetail()),
				"check the address, that the destination runs, and the network path; the provider is created anyway"))
		}
	}

	if req.GetDryRun() {
		e.mu.Lock()
		gen := e.gen + 1 // the generation a creation would get
		e.mu.Unlock()
		exp, err := createExporter(ctx, e.set, b, exporterID(b.exporterType, id, gen, 1), id, scrub, nil)
		if err != nil {
			return nil, &ValidationError{Issues: append([]*pb.ValidationIssue{issue("config.settings", "create_failed", err.Error(), "")}, issues...)}
		}
		_ = exp.Shutdown(ctx)
		now := e.now()
		return &pb.CreateProviderResponse{
			Provider: &pb.Provider{
				Config: Redact(pc), State: pb.ProviderState_PROVIDER_STATE_STOPPED, Version: 1,
				CreatedAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now),
				ExporterType: b.exporterType.String(), ExporterId: exporterID(b.exporterType, id, gen, 1).String(), Generation: gen,
			},
			ValidationIssues: issues, DryRun: true, Probe: probe,
		}, nil
	}

	e.mu.Lock()
	if existing := e.providers[id]; existing != nil {
		defer e.mu.Unlock()
		switch {
		case existing.removed || existing.state == pb.ProviderState_PROVIDER_STATE_DRAINING:
			return nil, fmt.Errorf("%w: provider %q is being deleted; create it again when the deletion is done", ErrFailedPrecondition, id)
		case proto.Equal(existing.cfg, pc):
			return &pb.CreateProviderResponse{Provider: e.toProviderLocked(existing), ValidationIssues: issues, Probe: probe}, nil
		default:
			return nil, fmt.Errorf("%w: provider %q exists with another config (version %d); use UpdateMetricsProvider to change it",
				ErrAlreadyExists, id, existing.rec.Version)
		}
	}
	if len(e.providers) >= e.set.MaxProviders {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: the registry holds its maximum of %d providers", ErrFailedPrecondition, e.set.MaxProviders)
	}
	now := e.now()
	rec := &record{ID: id, Running: req.GetAutoStart(), CreatedAt: now, UpdatedAt: now}
	note := "created"
	if restored != nil {
		rec.Versions = restored.Record.clone().Versions
		rec.Last, rec.CreatedAt = restored.Record.Last, restored.Record.CreatedAt
		note = "restored from backup " + restored.ID
	}
	v, err := newVersion(rec.Last+1, pc, now, note, true)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	rec.Version = v.Version
	rec.addVersion(v, e.set.MaxVersions)
	gen, err := e.issueGenerationLocked(ctx)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	rec.Generation = gen
	ps := &providerState{
		rec: rec, cfg: proto.Clone(pc).(*pb.ProviderConfig), state: pb.ProviderState_PROVIDER_STATE_STOPPED,
		stats: newStats(pc.GetHealthCheck(), e.now, e.providerLogger(id)), generation: rec.Generation,
	}
	ps.stats.tel = e.tel.forProvider(id, rec.Generation)
	if b != nil {
		ps.exporterType = b.exporterType.String()
		ps.exporterID = exporterID(b.exporterType, id, ps.generation, rec.Version).String()
	}
	if err := e.store.apply(ctx, e.changeLocked([]*record{rec}, nil, nil, nil)); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	ps.op.Lock()
	defer ps.op.Unlock()
	e.providers[id] = ps
	if req.GetAutoStart() {
		ps.state = pb.ProviderState_PROVIDER_STATE_STARTING
	}
	e.mu.Unlock()
	e.log.Info("Created provider", zap.String("provider_id", id), zap.String("exporter", ps.exporterID), zap.Bool("auto_start", req.GetAutoStart()))

	if req.GetAutoStart() {
		if buildErr != nil {
			e.fail(ps, buildErr)
		} else if s, b, err := e.startSender(ctx, pc, ps.generation, rec.Version, ps.stats); err != nil {
			if req.GetValidateConfig() {
				// Nothing half applied: a validated provider that cannot start is not created.
				e.mu.Lock()
				delete(e.providers, id)
				perr := e.store.apply(ctx, e.changeLocked(nil, []string{id}, nil, nil))
				e.mu.Unlock()
				return nil, errors.Join(err, perr)
			}
			e.fail(ps, err)
		} else {
			e.mu.Lock()
			e.runLocked(ps, s, b)
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &pb.CreateProviderResponse{Provider: e.toProviderLocked(ps), ValidationIssues: issues, Created: true, Probe: probe}, nil
}

// createConfig returns the config to create: the request's, or a backup's.
func (e *Engine) createConfig(req *pb.CreateProviderRequest) (*pb.ProviderConfig, *backupRecord, error) {
	bid := req.GetRestoreBackupId()
	if bid == "" {
		if req.GetConfig() == nil {
			return nil, nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("config", "required", "config must be set", "")}}
		}
		return proto.Clone(req.GetConfig()).(*pb.ProviderConfig), nil, nil
	}
	e.mu.Lock()
	b := e.backups[bid]
	e.mu.Unlock()
	if b == nil {
		return nil, nil, fmt.Errorf("%w: backup %q", ErrNotFound, bid)
	}
	pc, err := b.Record.current()
	if err != nil {
		return nil, nil, err
	}
	if c := req.GetConfig(); c != nil {
		rename := c.GetProviderId()
		c = proto.Clone(c).(*pb.ProviderConfig)
		c.ProviderId = ""
		if !proto.Equal(c, &pb.ProviderConfig{}) {
			return nil, nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("config", "conflict",
				"config and restore_backup_id are exclusive", "set only config.provider_id to restore under another id")}}
		}
		if rename != "" {
			pc.ProviderId = rename
		}
	}
	return pc, b, nil
}

// scrubIssues removes secrets from the messages of issues.
func scrubIssues(s *scrubber, issues []*pb.ValidationIssue) {
	if s == nil {
		return
	}
	for _, iss := range issues {
		iss.Message, iss.Suggestion = s.str(iss.GetMessage()), s.str(iss.GetSuggestion())
	}
}

// checkPolicy checks pc against the destination policy.
func (e *Engine) checkPolicy(pc *pb.ProviderConfig) error {
	if v := e.policy.check(pc); len(v) > 0 {
		return &PolicyError{Violations: v}
	}
	return nil
}

// fail marks ps FAILED.
func (e *Engine) fail(ps *providerState, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps.state, ps.lastError = pb.ProviderState_PROVIDER_STATE_FAILED, err.Error()
	e.log.Error("Provider failed to start", zap.String("provider_id", ps.rec.ID), zap.Error(err))
}

func (e *Engine) failoverWarnings(pc *pb.ProviderConfig) []*pb.ValidationIssue {
	fo := pc.GetFailover().GetFailoverProviderId()
	if fo == "" {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.providers[fo]; !ok {
		return []*pb.ValidationIssue{warning("config.failover.failover_provider_id", "unknown_provider",
			fmt.Sprintf("provider %q does not exist (yet); failover works once it runs", fo), "")}
	}
	return nil
}

func withWarnings(err error, issues []*pb.ValidationIssue) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Issues = append(ve.Issues, issues...)
	}
	return err
}

// toProviderLocked is the API form of ps, secrets redacted.
func (e *Engine) toProviderLocked(ps *providerState) *pb.Provider {
	p := &pb.Provider{
		Config:       Redact(ps.cfg),
		State:        ps.state,
		Health:       ps.stats.Health(),
		Version:      ps.rec.Version,
		CreatedAt:    timestamppb.New(ps.rec.CreatedAt),
		UpdatedAt:    timestamppb.New(ps.rec.UpdatedAt),
		LastError:    ps.lastError,
		ExporterType: ps.exporterType,
		ExporterId:   ps.exporterID,
		ErrorCount:   ps.stats.failedAttempts.Load(),
		Operation:    e.opSnapshotLocked(ps),
		Generation:   ps.generation,
	}
	msg, at := ps.stats.lastErr()
	if p.LastError == "" {
		p.LastError = msg
	}
	if !at.IsZero() {
		p.LastErrorTime = timestamppb.New(at)
	}
	return p
}

// addBackupLocked saves a backup of ps's record and evicts the oldest
// backups beyond the limit.
func (e *Engine) addBackupLocked(ps *providerState, reason string) (b *backupRecord, evicted []string) {
	now := e.now()
	b = &backupRecord{
		ID:         fmt.Sprintf("%s-v%d-%s-%d", ps.rec.ID, ps.rec.Version, now.UTC().Format("20060102T150405Z"), e.seq.Add(1)),
		ProviderID: ps.rec.ID, CreatedAt: now, Reason: reason, Record: ps.rec.clone(),
	}
	e.backups[b.ID] = b
	e.backupIDs = append(e.backupIDs, b.ID)
	for len(e.backupIDs) > e.set.MaxBackups {
		evicted = append(evicted, e.backupIDs[0])
		delete(e.backups, e.backupIDs[0])
		e.backupIDs = e.backupIDs[1:]
	}
	return b, evicted
}

// dropBackupLocked forgets a backup that was not persisted.
func (e *Engine) dropBackupLocked(id string) {
	delete(e.backups, id)
	for i, b := range e.backupIDs {
		if b == id {
			e.backupIDs = append(e.backupIDs[:i], e.backupIDs[i+1:]...)
			break
		}
	}
}

func durationOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil || d.AsDuration() <= 0 {
		return def
	}
	return d.AsDuration()
}
