package provider

import (
	"context"
	"sort"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// RegistryHealth returns the state of the registry backend.
func (e *Engine) RegistryHealth() RegistryHealth {
	switch {
	case e.etcd != nil:
		return e.etcd.health()
	case e.storageBacked:
		return RegistryHealth{Backend: "storage"}
	}
	return RegistryHealth{Backend: "memory"}
}

// knownRevLocked is the etcd mod revision of provider id as this node last
// read or wrote it (0: this node knows no such provider).
func (e *Engine) knownRevLocked(id string) int64 {
	ps := e.providers[id]
	if ps == nil || ps.removed {
		return 0
	}
	return ps.rec.modRev
}

// issueGenerationLocked issues the generation of a new provider: from the
// fleet-wide counter in etcd, else from this engine's counter.
func (e *Engine) issueGenerationLocked(ctx context.Context) (uint64, error) {
	if e.etcd != nil {
		g, err := e.etcd.nextGeneration(ctx)
		if err != nil {
			return 0, err
		}
		e.gen = max(e.gen, g)
		return g, nil
	}
	e.gen++
	return e.gen, nil
}

// providerIDs returns the ids of the providers in memory.
func (e *Engine) providerIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, 0, len(e.providers))
	for id, ps := range e.providers {
		if !ps.removed {
			ids = append(ids, id)
		}
	}
	return ids
}

// syncBackups replaces the backups in memory with those read from etcd.
func (e *Engine) syncBackups(bs []*backupRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.backups = map[string]*backupRecord{}
	e.backupIDs = e.backupIDs[:0]
	for _, b := range bs {
		e.backups[b.ID] = b
		e.backupIDs = append(e.backupIDs, b.ID)
	}
	e.sortBackupsLocked()
}

func (e *Engine) sortBackupsLocked() {
	sort.SliceStable(e.backupIDs, func(i, j int) bool {
		return e.backups[e.backupIDs[i]].CreatedAt.Before(e.backups[e.backupIDs[j]].CreatedAt)
	})
}

// remoteBackup applies a backup written (b) or deleted (nil) by any node.
func (e *Engine) remoteBackup(id string, b *backupRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b == nil {
		e.dropBackupLocked(id)
		return
	}
	if _, ok := e.backups[id]; !ok {
		e.backupIDs = append(e.backupIDs, id)
	}
	e.backups[id] = b
	e.sortBackupsLocked()
}

// reconcile brings provider id to its state in etcd (rr.rec nil: deleted),
// after any operation in progress on it. A changed config starts the new
// exporter before the old one stops and drains, so the node never stops
// exporting during a fleet-wide update.
func (e *Engine) reconcile(id string, rr *remoteRec) {
	e.mu.Lock()
	ps := e.providers[id]
	if e.stopping {
		e.mu.Unlock()
		return
	}
	if ps == nil || ps.removed {
		e.mu.Unlock()
		if rr.rec != nil {
			e.adopt(rr.rec)
		}
		return
	}
	e.mu.Unlock()

	ps.op.Lock()
	defer ps.op.Unlock()
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return
	}
	if ps.removed {
		_, again := e.providers[id]
		e.mu.Unlock()
		if rr.rec != nil && !again {
			e.adopt(rr.rec)
		}
		return
	}
	if rr.rev < ps.rec.modRev {
		e.mu.Unlock()
		return // older than what this node wrote or read
	}
	force := e.etcd.takeForced(id)
	if !force && rr.rev == ps.rec.modRev {
		e.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(e.baseCtx, defaultDrainTimeout)
	defer cancel()
	if rr.rec == nil || rr.rec.Generation != ps.generation {
		// Deleted on another node (or deleted and created again).
		ps.removed = true
		delete(e.providers, id)
		if ps.timer != nil && ps.timer.Stop() {
			e.bg.Done()
		}
		old := []*sender{ps.primary, ps.shadow}
		ps.primary, ps.shadow = nil, nil
		e.publishLocked()
		e.mu.Unlock()
		drained, dropped := e.stopAll(ctx, old, true)
		dropped += e.discardSpool(ps)
		e.log.Info("Provider deleted by another node: stopped here", zap.String("provider_id", id),
			zap.Uint64("drained", drained), zap.Uint64("dropped", dropped))
		if rr.rec != nil {
			e.adopt(rr.rec)
		}
		return
	}
	r := rr.rec
	cfg, err := r.current()
	if err != nil {
		e.mu.Unlock()
		e.log.Error("Skipping an unreadable provider written by another node", zap.String("provider_id", id), zap.Error(err))
		return
	}
	want := r.Running && !r.Deleting
	changed := force || r.Version != ps.rec.Version || !proto.Equal(cfg, ps.cfg)
	ps.rec, ps.cfg = r, cfg
	ps.stats.setHealthConfig(cfg.GetHealthCheck())
	switch {
	case r.DeleteAt != nil:
		e.scheduleLocked(ps, *r.DeleteAt)
	case ps.timer != nil:
		if ps.timer.Stop() {
			e.bg.Done()
		}
		ps.timer = nil
	}
	running := ps.primary != nil
	e.mu.Unlock()

	switch {
	case want && (changed || !running):
		s, b, err := e.startSender(ctx, cfg, ps.generation, r.Version, ps.stats)
		if err != nil {
			// The old exporter (if any) keeps running: better the last config than none.
			e.log.Error("Provider changed by another node failed to start here", zap.String("provider_id", id), zap.Error(err))
			if !running {
				e.fail(ps, err)
			}
			return
		}
		e.mu.Lock()
		old := []*sender{ps.primary, ps.shadow}
		ps.shadow = nil
		e.runLocked(ps, s, b)
		e.mu.Unlock()
		e.stopAll(ctx, old, true)
		e.log.Info("Provider changed by another node: running here", zap.String("provider_id", id), zap.Uint64("version", r.Version))
	case !want && running:
		e.mu.Lock()
		old := []*sender{ps.primary, ps.shadow}
		ps.primary, ps.shadow, ps.gap = nil, nil, false
		ps.state = pb.ProviderState_PROVIDER_STATE_STOPPED
		if r.Deleting {
			ps.state = pb.ProviderState_PROVIDER_STATE_DRAINING
		}
		e.publishLocked()
		e.mu.Unlock()
		e.stopAll(ctx, old, true)
		e.log.Info("Provider stopped by another node: stopped here", zap.String("provider_id", id))
	}
}

// adopt starts a provider another node created.
func (e *Engine) adopt(r *record) {
	if _, err := e.restore(e.baseCtx, r); err != nil {
		e.log.Error("Could not start a provider created by another node", zap.String("provider_id", r.ID), zap.Error(err))
		return
	}
	e.log.Info("Provider created by another node: running here", zap.String("provider_id", r.ID), zap.Uint64("version", r.Version))
}

// takeForced reports and clears whether id's local state may differ from
// its record (a write of this node failed after the exporter changed).
func (s *etcdStore) takeForced(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.forced[id]
	delete(s.forced, id)
	return f
}
