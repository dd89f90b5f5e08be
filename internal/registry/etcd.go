package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/etcdconf"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdOptions select the etcd backend of OpenEtcd: the definitions of a
// fleet of collectors, one key per metric, written with compare-and-swap on
// the key's mod revision and followed by every node through a watch.
type EtcdOptions struct {
	// Client is the etcd client; the registry does not close it.
	Client *clientv3.Client
	// Prefix is the fleet's key prefix; the definitions are under
	// <Prefix>defs/ (m/<name>: a metric, d/<name>: its scheduled data
	// deletion, done/<name>: a deletion a node completed), the backups under
	// <Prefix>defs-backups/.
	Prefix string
	// Endpoints name the cluster in messages.
	Endpoints []string
	// RequestTimeout bounds every read and write (5s when 0).
	RequestTimeout time.Duration
	// HealthInterval is how often the registry checks etcd answers, and
	// how soon a degraded registry notices it is back (1s when 0).
	HealthInterval time.Duration
	// Logger logs state changes (nop when nil).
	Logger *zap.Logger
	// OnHealth is called when the registry becomes degraded or healthy.
	OnHealth func(Health)
}

// Health is the state of the registry's backend.
type Health struct {
	// Backend is "local" (storage extension, bbolt file or memory) or "etcd".
	Backend string
	// Degraded is set while etcd does not answer: checks use the last
	// known definitions and changes are refused.
	Degraded bool
	// Detail says why, and the fix.
	Detail string
	// Revision is the last etcd revision applied (etcd only).
	Revision int64
}

// ErrUnavailable is a change refused while the backend does not answer.
var ErrUnavailable = errors.New("the metric definitions store does not answer")

// ErrConflict is a change that lost a race with another node
// (errors.Is holds for *ConflictError).
var ErrConflict = errors.New("the definition was changed by another node")

// ConflictError is a write refused because another node changed the metric
// (or its scheduled deletion) since this node read it. This node's view
// already holds the current state: read it again and retry.
type ConflictError struct {
	// Metric is the metric that changed.
	Metric string
	// Version is its current version (0: it is not registered any more).
	Version uint64
	// Revision is the etcd mod revision of its current state.
	Revision int64
}

// Error names the metric, its current version and the fix.
func (e *ConflictError) Error() string {
	if e.Version == 0 {
		return fmt.Sprintf("%s: metric %q was unregistered or changed by another node since this node read it (etcd revision %d); "+
			"re-read it (GetMetricMetadata) and retry", ErrConflict.Error(), e.Metric, e.Revision)
	}
	return fmt.Sprintf("%s: metric %q was changed by another node since this node read it; it is now at version %d (etcd revision %d); "+
		"re-read it (GetMetricMetadata) and retry on version %d", ErrConflict.Error(), e.Metric, e.Version, e.Revision, e.Version)
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// etcdBackend keeps the definitions in etcd. Its maps are guarded by
// Registry.mu.
type etcdBackend struct {
	r      *Registry
	opts   EtcdOptions
	cli    *clientv3.Client
	prefix string
	log    *zap.Logger

	// revs is each key's mod revision as this node last read or wrote it;
	// a deleted key is kept as minus the revision of its deletion.
	revs map[string]int64
	// done are deletions another node completed, not yet taken by
	// DoneDeletions.
	done []Deletion
	// fence, when set, is added to DueDeletions' write (leadership).
	fence func() (clientv3.Cmp, bool)

	rev    atomic.Int64
	degErr atomic.Pointer[string]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// OpenEtcd opens the definitions kept in etcd and follows the changes of
// the other nodes until Close.
func OpenEtcd(ctx context.Context, opts EtcdOptions, mode Mode) (*Registry, error) {
	if mode != ModeOpen && mode != ModeStrict {
		return nil, fmt.Errorf("mode: %q is not one of open, strict", mode)
	}
	if opts.Client == nil {
		return nil, errors.New("etcd: no client")
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	p := opts.Prefix
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	r := &Registry{mode: mode, now: time.Now, entries: map[string]*Entry{}, lim: convert.DefaultConfig().Limits}
	b := &etcdBackend{r: r, opts: opts, cli: opts.Client, prefix: p + "defs/", log: opts.Logger, revs: map[string]int64{}}
	r.etcd = b
	r.mu.Lock()
	err := b.resyncLocked(ctx)
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("load the metric definitions from etcd (%s): %w; fix: check definitions.etcd.endpoints and that the cluster answers (etcdctl endpoint health)",
			strings.Join(opts.Endpoints, ","), err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Go(func() { b.healthLoop(wctx) })
	b.wg.Go(func() { b.watchLoop(wctx) })
	return r, nil
}

func (b *etcdBackend) mKey(name string) string    { return b.prefix + "m/" + name }
func (b *etcdBackend) dKey(name string) string    { return b.prefix + "d/" + name }
func (b *etcdBackend) doneKey(name string) string { return b.prefix + "done/" + name }

func (b *etcdBackend) close() {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
}

// unavailable is the refusal while etcd does not answer.
func (b *etcdBackend) unavailable(cause string) error {
	return fmt.Errorf("%w: the metric definitions on etcd (%s) do not answer (%s); records are still checked against the last known "+
		"definitions and changes are refused; fix: bring the etcd cluster back (etcdctl endpoint health) and retry",
		ErrUnavailable, strings.Join(b.opts.Endpoints, ","), cause)
}

func (b *etcdBackend) setDegraded(cause string) {
	if b.degErr.Swap(&cause) == nil {
		b.log.Warn("Metric definitions degraded: etcd does not answer; checks use the last known definitions, changes are refused",
			zap.Strings("endpoints", b.opts.Endpoints), zap.String("cause", cause))
		b.notify()
	}
}

func (b *etcdBackend) notify() {
	if f := b.opts.OnHealth; f != nil {
		f(b.health())
	}
}

func (b *etcdBackend) health() Health {
	h := Health{Backend: "etcd", Revision: b.rev.Load()}
	if d := b.degErr.Load(); d != nil {
		h.Degraded, h.Detail = true, b.unavailable(*d).Error()
	}
	return h
}

func (b *etcdBackend) known(key string) int64 { return max(b.revs[key], 0) }

func entryChanged(old, nw *Entry) bool {
	return old == nil || len(old.Versions) != len(nw.Versions) || old.Current().Version != nw.Current().Version ||
		old.Index != nw.Index || !old.UpdatedAt.Equal(nw.UpdatedAt) || !old.CreatedAt.Equal(nw.CreatedAt)
}

// byName keeps the last deletion of each metric.
func byName(dels []Deletion) map[string]Deletion {
	m := make(map[string]Deletion, len(dels))
	for _, d := range dels {
		m[d.Name] = d
	}
	return m
}

func sortedDeletions(m map[string]Deletion) []Deletion {
	out := make([]Deletion, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].At.Before(out[j].At) || out[i].At.Equal(out[j].At) && out[i].Name < out[j].Name
	})
	return out
}

// commit writes the difference between the registry's state and the next
// one as one Txn, conditioned on the mod revision of every key it touches
// as this node last read it; done are deletions completed now. Called with
// Registry.mu held. It returns the deletions as kept (one per metric).
func (b *etcdBackend) commit(ctx context.Context, next map[string]*Entry, dels, done []Deletion, fenced bool) ([]Deletion, error) {
	if d := b.degErr.Load(); d != nil {
		return nil, b.unavailable(*d)
	}
	r := b.r
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	var touched []string
	puts := map[string]bool{}
	cond := func(key string) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", b.known(key)))
		touched = append(touched, key)
	}
	for name, ne := range next {
		if !entryChanged(r.entries[name], ne) {
			continue
		}
		we, err := toWire(ne)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(we)
		if err != nil {
			return nil, err
		}
		k := b.mKey(name)
		if len(raw) > maxEtcdDefinitionBytes {
			return nil, &InvalidError{Issues: []*pb.ValidationIssue{{Field: "definition", Code: "too_large",
				Message:    fmt.Sprintf("metric %q with its version history is %d bytes stored, over the %d bytes one etcd key takes (etcd's request limit is 1.5 MiB)", name, len(raw), maxEtcdDefinitionBytes),
				Suggestion: "shorten the definition (fewer allowed label values, a shorter description), or unregister the metric and register it again to drop its old versions",
				Severity:   pb.Severity_SEVERITY_ERROR}}}
		}
		cond(k)
		ops = append(ops, clientv3.OpPut(k, string(raw)))
		puts[k] = true
	}
	for name := range r.entries {
		if next[name] == nil {
			k := b.mKey(name)
			cond(k)
			ops = append(ops, clientv3.OpDelete(k))
		}
	}
	nd, od := byName(dels), byName(r.deletions)
	for name, d := range nd {
		if o, ok := od[name]; ok && o.At.Equal(d.At) {
			continue
		}
		raw, _ := json.Marshal(d)
		k := b.dKey(name)
		cond(k)
		ops = append(ops, clientv3.OpPut(k, string(raw)))
		puts[k] = true
	}
	for name := range od {
		if _, ok := nd[name]; !ok {
			k := b.dKey(name)
			cond(k)
			ops = append(ops, clientv3.OpDelete(k))
		}
	}
	for _, d := range done {
		raw, _ := json.Marshal(d)
		k := b.doneKey(d.Name)
		ops = append(ops, clientv3.OpPut(k, string(raw)))
		puts[k] = true
		touched = append(touched, k)
	}
	if fenced && b.fence != nil {
		f, ok := b.fence()
		if !ok {
			return nil, errNotLeading
		}
		cmps = append(cmps, f)
	}
	kept := sortedDeletions(nd)
	if len(ops) == 0 {
		return kept, nil
	}
	var orElse []clientv3.Op
	for _, k := range touched {
		orElse = append(orElse, clientv3.OpGet(k))
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.RequestTimeout)
	defer cancel()
	resp, err := b.cli.Txn(tctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if errors.Is(err, rpctypes.ErrRequestTooLarge) {
		// this write's size, not etcd's health: the registry stays up
		return nil, &InvalidError{Issues: []*pb.ValidationIssue{{Field: "definition", Code: "too_large",
			Message:    "the change is larger than etcd takes in one request (--max-request-bytes, 1.5 MiB by default)",
			Suggestion: "shorten the definition, or raise etcd's --max-request-bytes", Severity: pb.Severity_SEVERITY_ERROR}}}
	}
	if err != nil {
		b.setDegraded(err.Error())
		return nil, b.unavailable(err.Error())
	}
	if !resp.Succeeded {
		return nil, b.conflictLocked(resp, touched)
	}
	for _, k := range touched {
		if puts[k] {
			b.revs[k] = resp.Header.Revision
		} else {
			b.revs[k] = -resp.Header.Revision
		}
	}
	return kept, nil
}

var errNotLeading = errors.New("this node does not lead")

// maxEtcdDefinitionBytes bounds one metric's stored record (its version
// history) on etcd, below etcd's default request limit of 1.5 MiB, so that
// one large definition is refused on its own instead of failing the write
// at etcd.
const maxEtcdDefinitionBytes = 1 << 20

// conflictLocked applies the current state of the keys a refused Txn read
// (so that a retry starts from it) and names the first that changed.
// touched are the keys of the Txn's Else reads, in order.
func (b *etcdBackend) conflictLocked(resp *clientv3.TxnResponse, touched []string) error {
	var first *ConflictError
	force := map[string]bool{}
	for i, rr := range resp.Responses {
		g := rr.GetResponseRange()
		if g == nil || i >= len(touched) {
			continue
		}
		k := touched[i]
		var name string
		switch {
		case len(g.Kvs) == 0 && b.known(k) != 0:
			// deleted by another node since this node read it
			name = b.applyKVLocked(k, nil, resp.Header.Revision, true, force)
		case len(g.Kvs) > 0 && g.Kvs[0].ModRevision != b.known(k):
			name = b.applyKVLocked(k, g.Kvs[0].Value, g.Kvs[0].ModRevision, false, force)
		default:
			continue
		}
		if first == nil && !strings.HasPrefix(k, b.prefix+"done/") {
			first = &ConflictError{Metric: name, Revision: resp.Header.Revision}
			if len(g.Kvs) > 0 {
				first.Revision = g.Kvs[0].ModRevision
			}
			if e := b.r.entries[name]; e != nil {
				first.Version = e.Current().Version
			}
		}
	}
	if err := b.r.recompileForce(force); err != nil {
		b.log.Error("Compiling a definition written by another node failed", zap.Error(err))
	}
	if first == nil {
		// the fence failed (leadership lost) or a done key moved: nothing of this node's view changed
		if _, ok := b.fenceOK(); !ok {
			return errNotLeading
		}
		return &ConflictError{Metric: "(one this change names)", Revision: resp.Header.Revision}
	}
	return first
}

func (b *etcdBackend) fenceOK() (clientv3.Cmp, bool) {
	if b.fence == nil {
		return clientv3.Cmp{}, true
	}
	return b.fence()
}

// applyKVLocked applies one key's state (deleted, or value at rev) if it
// is newer than this node's; it returns the metric name of the key.
func (b *etcdBackend) applyKVLocked(key string, value []byte, rev int64, deleted bool, force map[string]bool) string {
	k := strings.TrimPrefix(key, b.prefix)
	var kind, name string
	switch {
	case strings.HasPrefix(k, "m/"):
		kind, name = "m", k[2:]
	case strings.HasPrefix(k, "d/"):
		kind, name = "d", k[2:]
	case strings.HasPrefix(k, "done/"):
		kind, name = "done", k[5:]
	default:
		return ""
	}
	last := b.revs[key]
	if last < 0 {
		last = -last
	}
	if rev <= last {
		return name // this node wrote or read it already
	}
	if deleted {
		b.revs[key] = -rev
	} else {
		b.revs[key] = rev
	}
	r := b.r
	switch kind {
	case "m":
		force[name] = true
		if deleted {
			delete(r.entries, name)
			return name
		}
		var we wireEntry
		if err := json.Unmarshal(value, &we); err != nil {
			b.log.Error("Skipping an unreadable metric definition written by another node", zap.String("metric", name), zap.Error(err))
			return name
		}
		e, err := fromWire(we)
		if err != nil {
			b.log.Error("Skipping an unreadable metric definition written by another node", zap.String("metric", name), zap.Error(err))
			return name
		}
		r.entries[name] = e
	case "d":
		m := byName(r.deletions)
		delete(m, name)
		if !deleted {
			var d Deletion
			if json.Unmarshal(value, &d) == nil {
				m[name] = d
			}
		}
		r.deletions = sortedDeletions(m)
	case "done":
		var d Deletion
		if !deleted && json.Unmarshal(value, &d) == nil {
			b.done = append(b.done, d)
		}
	}
	return name
}

// resyncLocked reads every definition at one revision and replaces this
// node's state with it. Called with Registry.mu held.
func (b *etcdBackend) resyncLocked(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	resp, err := b.cli.Get(tctx, b.prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	r := b.r
	old := r.entries
	r.entries, r.deletions = map[string]*Entry{}, nil
	b.revs = map[string]int64{}
	force := map[string]bool{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if strings.HasPrefix(k, b.prefix+"done/") {
			b.revs[k] = kv.ModRevision // completed before: not this node's to apply now
			continue
		}
		b.applyKVLocked(k, kv.Value, kv.ModRevision, false, force)
	}
	clear(force)
	for name, e := range r.entries {
		if o := old[name]; o == nil || entryChanged(o, e) || !o.Current().CreatedAt.Equal(e.Current().CreatedAt) {
			force[name] = true
		}
	}
	if err := r.recompileForce(force); err != nil {
		b.log.Error("Compiling the definitions read from etcd failed", zap.Error(err))
	}
	for cur := b.rev.Load(); resp.Header.Revision > cur && !b.rev.CompareAndSwap(cur, resp.Header.Revision); cur = b.rev.Load() {
	}
	return nil
}

// healthLoop marks the registry degraded while a read fails, and resyncs
// when etcd answers again.
func (b *etcdBackend) healthLoop(ctx context.Context) {
	etcdconf.HealthLoop{
		Interval: b.opts.HealthInterval, Timeout: b.opts.RequestTimeout,
		Probe: func(ctx context.Context) error {
			_, err := b.cli.Get(ctx, b.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			return err
		},
		Degraded: func() bool { return b.degErr.Load() != nil },
		Down:     func(err error) { b.setDegraded(err.Error()) },
		Up: func(ctx context.Context) error {
			b.r.mu.Lock()
			err := b.resyncLocked(ctx)
			b.r.mu.Unlock()
			if err != nil {
				b.log.Warn("Metric definitions resync failed; retrying", zap.Error(err))
				return err
			}
			b.degErr.Store(nil)
			b.notify()
			b.log.Info("Metric definitions on etcd answer again; resynced", zap.Int64("revision", b.rev.Load()))
			return nil
		},
	}.Run(ctx)
}

// watchLoop applies the changes of every node from the loaded revision on;
// each watch response is applied under one lock and publishes new compiled
// definitions (a new DefinitionsToken).
func (b *etcdBackend) watchLoop(ctx context.Context) {
	etcdconf.WatchLoop{
		Client: b.cli, Prefix: b.prefix, From: b.rev.Load, Pause: b.opts.HealthInterval / 4,
		Apply: func(wr clientv3.WatchResponse) { b.applyEvents(wr.Events) },
		Resync: func(ctx context.Context) error {
			b.r.mu.Lock()
			defer b.r.mu.Unlock()
			return b.resyncLocked(ctx)
		},
		Down: func(err error) {
			b.log.Debug("etcd watch of the definitions ended", zap.Error(err))
			b.setDegraded(err.Error())
		},
	}.Run(ctx)
}

func (b *etcdBackend) applyEvents(evs []*clientv3.Event) {
	if len(evs) == 0 {
		return
	}
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	force := map[string]bool{}
	for _, ev := range evs {
		b.applyKVLocked(string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete, force)
	}
	if len(force) > 0 {
		if err := r.recompileForce(force); err != nil {
			b.log.Error("Compiling a definition written by another node failed", zap.Error(err))
		}
		b.log.Debug("Applied definition changes of another node", zap.Int("metrics", len(force)), zap.Int64("revision", evs[len(evs)-1].Kv.ModRevision))
	}
	for cur, rev := b.rev.Load(), evs[len(evs)-1].Kv.ModRevision; rev > cur && !b.rev.CompareAndSwap(cur, rev); cur = b.rev.Load() {
	}
}

// MaxEtcdBackupBytes is the largest backup kept in etcd (its default
// request limit is 1.5 MiB).
const MaxEtcdBackupBytes = 1 << 20

// bKey is where backup id is kept: outside <prefix>defs/, so that the
// watch and the resyncs do not carry the backups.
func (b *etcdBackend) bKey(id string) string {
	return strings.TrimSuffix(b.prefix, "defs/") + "defs-backups/" + id
}

// MaxBackupBytes is the largest backup PutBackup keeps
// (definitions.BackupStore).
func (r *Registry) MaxBackupBytes() int { return MaxEtcdBackupBytes }

// PutBackup keeps a backup in etcd for every node (definitions.BackupStore);
// where names its key.
func (r *Registry) PutBackup(ctx context.Context, id string, raw []byte) (string, error) {
	b := r.etcd
	if b == nil {
		return "", errors.New("backups in the registry need the etcd backend")
	}
	if d := b.degErr.Load(); d != nil {
		return "", b.unavailable(*d)
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.RequestTimeout)
	defer cancel()
	if _, err := b.cli.Put(tctx, b.bKey(id), string(raw)); err != nil {
		b.setDegraded(err.Error())
		return "", b.unavailable(err.Error())
	}
	return "etcd:" + b.bKey(id), nil
}

// GetBackup reads a backup PutBackup kept (definitions.BackupStore).
func (r *Registry) GetBackup(ctx context.Context, id string) ([]byte, bool, error) {
	b := r.etcd
	if b == nil {
		return nil, false, nil
	}
	tctx, cancel := context.WithTimeout(ctx, b.opts.RequestTimeout)
	defer cancel()
	resp, err := b.cli.Get(tctx, b.bKey(id))
	if err != nil {
		return nil, false, b.unavailable(err.Error())
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}
