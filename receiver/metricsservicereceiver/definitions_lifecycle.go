package metricsservicereceiver

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/definitions"
	"github.com/metricsmodule/metricsmodule/internal/registry"
)

// memKV keeps the registry in memory (no store, no storage extension).
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key], nil
}

func (k *memKV) Set(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string][]byte{}
	}
	k.m[key] = v
	return nil
}

func (*memKV) Close(context.Context) error { return nil }

// dataDir is the directory next to the store where registry files live.
func (r *metricsReceiver) dataDir() string {
	if r.store != nil {
		return filepath.Dir(filepath.Clean(r.store.Dir()))
	}
	return ""
}

// backupDir is where UnregisterMetric writes backups.
func (r *metricsReceiver) backupDir() string {
	if r.cfg.Definitions.BackupDir != "" {
		return r.cfg.Definitions.BackupDir
	}
	if d := r.dataDir(); d != "" {
		return filepath.Join(d, "backups")
	}
	return ""
}

// startRegistry opens the metric definitions and installs their checks.
func (r *metricsReceiver) startRegistry(ctx context.Context, host component.Host) error {
	rc := r.cfg.Definitions
	var kv registry.KV
	where := ""
	if rc.Backend == DefinitionsBackendEtcd {
		return r.startEtcdDefinitions(ctx, host)
	}
	switch {
	case rc.Storage != nil:
		ext, ok := host.GetExtensions()[*rc.Storage]
		if !ok {
			return fmt.Errorf("definitions.storage: extension %q is not configured", rc.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("definitions.storage: extension %q is not a storage extension", rc.Storage)
		}
		client, err := se.GetClient(ctx, component.KindReceiver, r.settings.ID, "registry")
		if err != nil {
			return fmt.Errorf("definitions.storage: %w", err)
		}
		kv, where = client, "storage extension "+rc.Storage.String()
	case rc.Path != "" || r.dataDir() != "":
		path := rc.Path
		if path == "" {
			path = filepath.Join(r.dataDir(), "registry.db")
		}
		b, err := registry.OpenBolt(path)
		if err != nil {
			return err
		}
		kv, where = b, path
	default:
		kv, where = &memKV{}, "memory (add the store block or definitions.path to keep definitions across restarts)"
	}
	reg, err := registry.Open(ctx, kv, rc.Mode)
	if err != nil {
		_ = kv.Close(ctx)
		return err
	}
	r.installRegistry(reg, where)
	return nil
}

// installRegistry makes reg the definitions in force and starts the
// deletion loop.
func (r *metricsReceiver) installRegistry(reg *registry.Registry, where string) {
	rc := r.cfg.Definitions
	// A definition's text is bounded by the record limits (limits.*).
	reg.SetLimits(r.cfg.Limits.Limits)
	r.defs.registry = reg
	r.defs.engine = &definitions.Engine{Dir: r.backupDir(), Definitions: reg, Seen: r.in.acc.Names}
	if r.store != nil {
		r.defs.engine.Store = r.store
	}
	if r.defs.fleet != nil {
		r.defs.engine.Backups = reg
	}
	r.in.acc.SetValidator(reg)
	if r.cfg.deprecatedRegistryKey {
		r.settings.Logger.Warn("The receiver's registry block is deprecated: rename it definitions (same settings)")
	}
	r.settings.Logger.Info("Opened metric definitions", zap.String("mode", string(rc.Mode)),
		zap.String("kept_in", where), zap.Int("metrics", len(reg.List(nil))))
	r.wg.Go(r.deletionLoop)
}

// deletionLoop deletes the data of unregistered metrics when their
// retention has passed.
func (r *metricsReceiver) deletionLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		r.runDueDeletions(time.Now())
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// runDueDeletions deletes the data of the metrics whose scheduled deletion
// is due. With definitions on etcd only the leader takes them (once for the
// fleet); every other node deletes its own copy of the data when it sees
// the leader's (DoneDeletions).
func (r *metricsReceiver) runDueDeletions(now time.Time) {
	if r.defs.registry == nil || r.store == nil {
		return
	}
	r.defs.deleting.Lock()
	defer r.defs.deleting.Unlock()
	due, err := r.defs.registry.DueDeletions(context.Background(), now)
	if err != nil {
		r.settings.Logger.Warn("Reading scheduled deletions failed", zap.Error(err))
	}
	due = append(due, r.defs.registry.DoneDeletions()...)
	for _, d := range due {
		if err := r.store.Delete(context.Background(), definitions.SeriesMatchers(d.Name)...); err != nil {
			r.settings.Logger.Warn("Deleting the data of an unregistered metric failed", zap.String("metric", d.Name), zap.Error(err))
			continue
		}
		r.settings.Logger.Info("Deleted the data of an unregistered metric", zap.String("metric", d.Name))
	}
}
