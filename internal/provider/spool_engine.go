package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// EnableSpool turns on the durable provider queue (the providers exporter's
// spool block) once the registry has loaded: every provider gets a spool
// under cfg.Directory/<provider_id> (pending batches of the last run are
// sent again), and the spool directories of providers the registry does not
// hold (deleted while the collector was down) are removed, with a log line.
// Calling it again with the same config does nothing; another config is
// refused.
func (e *Engine) EnableSpool(cfg SpoolConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrFailedPrecondition, err)
	}
	cfg = cfg.withDefaults()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.spoolCfg != nil {
		if *e.spoolCfg == cfg {
			return nil
		}
		return fmt.Errorf("%w: spool: already on with directory %q, max_bytes %d, sync %s; configure the spool on one providers exporter of the extension only",
			ErrFailedPrecondition, e.spoolCfg.Directory, e.spoolCfg.MaxBytes, e.spoolCfg.Sync)
	}
	if !e.started || e.stopping {
		return fmt.Errorf("%w: spool: the provider registry is not running; the metrics_management extension must start first", ErrUnavailable)
	}
	if err := os.MkdirAll(cfg.Directory, 0o700); err != nil {
		return fmt.Errorf("%w: spool.directory: %w", ErrFailedPrecondition, err)
	}
	des, err := os.ReadDir(cfg.Directory)
	if err != nil {
		return fmt.Errorf("%w: spool.directory: %w", ErrFailedPrecondition, err)
	}
	e.spoolCfg = &cfg
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		id := de.Name()
		if ps := e.providers[id]; ps != nil && !ps.removed {
			continue
		}
		dir := filepath.Join(cfg.Directory, id)
		e.log.Warn("Removing the spool of a provider the registry does not hold (deleted while the collector was down); its batches are dropped",
			zap.String("provider_id", id), zap.String("directory", dir), zap.Int64("bytes", dirBytes(dir)))
		if err := os.RemoveAll(dir); err != nil {
			e.log.Warn("Could not remove the spool", zap.String("directory", dir), zap.Error(err))
		}
	}
	for _, ps := range e.providers {
		if ps.removed {
			continue
		}
		e.openSpoolLocked(ps)
		if ps.primary != nil {
			e.attachSpoolLocked(ps, ps.primary)
		}
	}
	e.log.Info("Provider spool on: batches accepted for a provider are kept on disk until exported",
		zap.String("directory", cfg.Directory), zap.Int64("max_bytes", cfg.MaxBytes), zap.String("sync", string(cfg.Sync)),
		zap.Int("providers", len(e.providers)))
	return nil
}

// openSpoolLocked opens ps's spool when the spool is on and it has none. A
// spool that cannot be opened is logged; the provider runs without it.
func (e *Engine) openSpoolLocked(ps *providerState) {
	if e.spoolCfg == nil || ps.spool != nil || ps.removed {
		return
	}
	l := ps.cfg.GetLimits()
	cacheN := int(l.GetQueueSize())
	if cacheN <= 0 {
		cacheN = defaultQueueSize
	}
	log := e.providerLogger(ps.rec.ID)
	if err := claimSpoolDir(*e.spoolCfg, ps.rec.ID, ps.generation, !ps.legacyGen, log); err != nil {
		e.log.Error("The provider's spool could not be opened; it runs with its in-memory queue only",
			zap.String("provider_id", ps.rec.ID), zap.Error(err))
		return
	}
	sp, err := openSpool(*e.spoolCfg, ps.rec.ID, cacheN, int64(l.GetMaxQueueMemoryBytes()), log)
	if err != nil {
		e.log.Error("The provider's spool could not be opened; it runs with its in-memory queue only",
			zap.String("provider_id", ps.rec.ID), zap.Error(err))
		ps.stats.note("spool could not be opened: " + err.Error())
		return
	}
	if sp.truncated > 0 {
		ps.stats.note(fmt.Sprintf("spool: %d torn or corrupt record(s) cut at start (see the log)", sp.truncated))
	}
	ps.spool = sp
}

// generationFile names the provider generation a spool directory belongs to.
const generationFile = "GENERATION"

// claimSpoolDir makes the spool directory of provider id belong to
// generation: a directory left by an earlier provider with the same id (on
// an etcd registry, deleted and created again by another node while this
// one was down) is emptied, with a warning, so that its batches never go to
// the new provider's destination. When !trust (a generation issued at this
// start for a record older than generations) the directory is kept.
func claimSpoolDir(cfg SpoolConfig, id string, generation uint64, trust bool, log *zap.Logger) error {
	dir := filepath.Join(cfg.Directory, id)
	path := filepath.Join(dir, generationFile)
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		old, perr := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
		if perr == nil && old == generation {
			return nil
		}
		if perr == nil && trust && old != 0 {
			log.Warn("Removing the spool of an earlier provider with the same id (deleted and created again); its batches are dropped",
				zap.String("directory", dir), zap.Uint64("spool_generation", old), zap.Uint64("generation", generation),
				zap.Int64("bytes", dirBytes(dir)))
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.FormatUint(generation, 10)+"\n"), 0o600)
}

// attachSpoolLocked makes s, the provider's new primary sender, append to
// the provider's spool and send from it (pending batches included).
func (e *Engine) attachSpoolLocked(ps *providerState, s *sender) {
	if e.spoolCfg == nil {
		return
	}
	e.openSpoolLocked(ps)
	if ps.spool == nil {
		return
	}
	s.spool.Store(ps.spool)
	if old := ps.replacing; old != nil {
		ps.replacing = nil
		ps.spool.handOver(old, s)
		return
	}
	ps.spool.setConsumer(s)
}

// discardSpool removes the spool of a deleted provider after its drain; the
// batches still in it are counted as dropped. It returns their data points.
func (e *Engine) discardSpool(ps *providerState) uint64 {
	e.mu.Lock()
	sp, cfg := ps.spool, e.spoolCfg
	ps.spool = nil
	e.mu.Unlock()
	var points int64
	switch {
	case sp != nil:
		points = sp.discard()
	case cfg != nil:
		_ = os.RemoveAll(filepath.Join(cfg.Directory, ps.rec.ID))
	}
	if points > 0 {
		ps.stats.addDropped(int(points))
		e.log.Warn("Dropped the spooled data points of a deleted provider that its drain did not send",
			zap.String("provider_id", ps.rec.ID), zap.Int64("datapoints", points))
	}
	return uint64(max(points, 0))
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// queueLocked is ps's queue as the stats, status and telemetry show it: the
// primary sender's in-memory queue plus the provider's spool (its pending
// and in-flight batches, the memory they hold, its files).
func queueLocked(ps *providerState) queueInfo {
	q := queueInfo{capacity: int(ps.cfg.GetLimits().GetQueueSize())}
	if q.capacity == 0 {
		q.capacity = defaultQueueSize
	}
	if ps.primary != nil {
		q = ps.primary.queueInfo()
	}
	if ps.spool != nil {
		ss := ps.spool.stats()
		q.size += ss.batches
		q.bytes += ss.memBytes
		q.disk = ss.diskBytes
	}
	return q
}
