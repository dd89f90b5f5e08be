package provider

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/election"
	"github.com/metricsmodule/metricsmodule/internal/etcdconf"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// EtcdConfig selects the etcd provider registry: every node of a fleet
// keeps its providers, versions and backups under Prefix and follows the
// other nodes' changes through a watch.
type EtcdConfig struct {
	// Endpoints are the etcd client URLs (http://host:2379, ...).
	Endpoints []string
	// Prefix is the key prefix of this fleet's registry (e.g. "/metricsmodule/").
	Prefix string
	// DialTimeout bounds the first connection.
	DialTimeout time.Duration
	// RequestTimeout bounds every read and write.
	RequestTimeout time.Duration
	// HealthInterval is how often the registry checks etcd answers (and
	// how soon a degraded registry notices etcd is back).
	HealthInterval time.Duration
	// TLS is the client TLS config; nil is plain text.
	TLS *tls.Config
	// Username and Password authenticate to etcd when set.
	Username, Password string
	// LeaseTTL is the session lease of the election of the node that runs
	// the scheduled deletions (DefaultEtcdLeaseTTL when 0).
	LeaseTTL time.Duration
	// Identity names this node in the election (host:pid when empty).
	Identity string
}

// Defaults of EtcdConfig.
const (
	DefaultEtcdPrefix         = "/metricsmodule/"
	DefaultEtcdDialTimeout    = 5 * time.Second
	DefaultEtcdRequestTimeout = 5 * time.Second
	DefaultEtcdHealthInterval = time.Second
	DefaultEtcdLeaseTTL       = 10 * time.Second
)

// RegistryHealth is the state of the registry backend.
type RegistryHealth struct {
	// Backend is "memory", "storage" or "etcd".
	Backend string
	// Degraded is set while the backend does not answer: the providers keep
	// running with their last known config and changes are refused.
	Degraded bool
	// Detail says why, and the fix.
	Detail string
	// Revision is the last etcd revision this node applied (etcd only).
	Revision int64
	// Leading is set while this node leads the fleet's once-only work
	// (scheduled deletions; etcd only).
	Leading bool
	// Leader is the node that leads it, as this node last saw ("" while
	// unknown; etcd only).
	Leader string
}

// maxEtcdRecordBytes bounds one provider's stored record on etcd, below
// etcd's default request limit of 1.5 MiB, so that one large config is
// refused on its own instead of failing the write at etcd (which would mark
// the registry degraded for every caller).
const maxEtcdRecordBytes = 1 << 20

// etcdStore is the etcd registry: keys <prefix>p/<id> (record),
// <prefix>b/<id> (backup), <prefix>gen (last generation). Every write is one
// Txn conditioned on the mod revision of each provider key as this node
// last read it.
type etcdStore struct {
	cfg    EtcdConfig
	cli    *clientv3.Client
	log    *zap.Logger
	e      *Engine
	degErr atomic.Pointer[string]
	rev    atomic.Int64
	// elector elects the node that runs the scheduled deletions (nil
	// before run, or when the election could not start: then every node
	// tries and the compare-and-swap makes it once).
	elector atomic.Pointer[election.Elector]

	mu      sync.Mutex
	pending map[string]*remoteRec // latest remote state per provider id, not yet applied
	running map[string]bool       // a reconcile goroutine runs for the id
	forced  map[string]bool       // local state may differ from the record: reapply
}

// remoteRec is a provider's state in etcd at a revision (rec nil: deleted).
type remoteRec struct {
	rec *record
	rev int64
}

func newEtcdStore(cfg EtcdConfig, log *zap.Logger) (*etcdStore, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd.endpoints: at least one etcd client URL is required, e.g. http://127.0.0.1:2379")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultEtcdDialTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultEtcdRequestTimeout
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultEtcdHealthInterval
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, TLS: cfg.TLS,
		Username: cfg.Username, Password: cfg.Password, Logger: log.Named("etcd").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd.endpoints: connect to %v: %w", cfg.Endpoints, err)
	}
	return &etcdStore{cfg: cfg, cli: cli, log: log, pending: map[string]*remoteRec{}, running: map[string]bool{}, forced: map[string]bool{}}, nil
}

func (s *etcdStore) pKey(id string) string { return s.cfg.Prefix + "p/" + id }
func (s *etcdStore) bKey(id string) string { return s.cfg.Prefix + "b/" + id }
func (s *etcdStore) genKey() string        { return s.cfg.Prefix + "gen" }

// unavailable is the refusal while etcd does not answer.
func (s *etcdStore) unavailable(cause string) error {
	return fmt.Errorf("%w: the provider registry on etcd (%s) does not answer (%s); changes are refused and the running providers keep "+
		"their last known config; fix: bring the etcd cluster back (etcdctl endpoint health) and retry", ErrUnavailable,
		strings.Join(s.cfg.Endpoints, ","), cause)
}

func (s *etcdStore) setDegraded(cause string) {
	if s.degErr.Swap(&cause) == nil {
		s.log.Warn("Provider registry degraded: etcd does not answer; providers keep their last known config, changes are refused",
			zap.Strings("endpoints", s.cfg.Endpoints), zap.String("cause", cause))
		s.notify()
	}
}

func (s *etcdStore) notify() {
	if f := s.e.set.OnRegistryHealth; f != nil {
		f(s.health())
	}
}

func (s *etcdStore) health() RegistryHealth {
	h := RegistryHealth{Backend: "etcd", Revision: s.rev.Load()}
	if el := s.elector.Load(); el != nil {
		h.Leading, h.Leader = el.Leading(), el.Leader()
	}
	if d := s.degErr.Load(); d != nil {
		h.Degraded = true
		h.Detail = s.unavailable(*d).Error()
	}
	return h
}

// apply writes c as one Txn. Called with Engine.mu held: revisions are
// those of the engine's records.
func (s *etcdStore) apply(ctx context.Context, c change) error {
	ids := map[string]bool{}
	for _, r := range c.setProviders {
		ids[r.ID] = true
	}
	for _, id := range c.delProviders {
		ids[id] = true
	}
	if d := s.degErr.Load(); d != nil {
		// refused without a write: the caller may already have switched
		// the exporter, so the local state goes back to the record too
		s.forceLocked(ids)
		return s.unavailable(*d)
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, r := range c.setProviders {
		r.Format = recordFormatVers
		b, err := marshalRecord(r)
		if err != nil {
			s.forceLocked(ids)
			return fmt.Errorf("encode provider %q: %w", r.ID, err)
		}
		if len(b) > maxEtcdRecordBytes {
			s.forceLocked(ids)
			return &ValidationError{Issues: []*pb.ValidationIssue{issue("config", "too_large",
				fmt.Sprintf("provider %q with its version history is %d bytes stored, over the %d bytes one etcd key takes", r.ID, len(b), maxEtcdRecordBytes),
				"shorten the config (headers, filters), or delete the provider and create it again to drop its old versions")}}
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.pKey(r.ID)), "=", s.e.knownRevLocked(r.ID)))
		ops = append(ops, clientv3.OpPut(s.pKey(r.ID), string(b)))
	}
	for _, id := range c.delProviders {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.pKey(id)), "=", s.e.knownRevLocked(id)))
		ops = append(ops, clientv3.OpDelete(s.pKey(id)))
	}
	for _, b := range c.setBackups {
		raw, err := marshalRecord(b)
		if err != nil {
			return fmt.Errorf("encode backup %q: %w", b.ID, err)
		}
		ops = append(ops, clientv3.OpPut(s.bKey(b.ID), string(raw)))
	}
	for _, id := range c.delBackups {
		ops = append(ops, clientv3.OpDelete(s.bKey(id)))
	}
	var orElse []clientv3.Op
	for id := range ids {
		orElse = append(orElse, clientv3.OpGet(s.pKey(id)))
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	resp, err := s.cli.Txn(tctx).If(cmps...).Then(ops...).Else(orElse...).Commit()
	if errors.Is(err, rpctypes.ErrRequestTooLarge) {
		// this write's size, not etcd's health: the registry stays up
		s.forceLocked(ids)
		return &ValidationError{Issues: []*pb.ValidationIssue{issue("config", "too_large",
			"the change is larger than etcd takes in one request (--max-request-bytes, 1.5 MiB by default)",
			"shorten the config, or raise etcd's --max-request-bytes")}}
	}
	if err != nil {
		s.setDegraded(err.Error())
		s.forceLocked(ids)
		return s.unavailable(err.Error())
	}
	if !resp.Succeeded {
		s.forceLocked(ids)
		return s.aborted(resp)
	}
	for _, r := range c.setProviders {
		r.modRev = resp.Header.Revision
	}
	s.mu.Lock()
	for id := range ids {
		delete(s.forced, id)
	}
	s.mu.Unlock()
	return nil
}

// forceLocked marks ids whose local state may no longer match the record
// (a write failed after the exporter was switched): the next remote state
// seen is applied even when it looks unchanged.
//
// The engine's config of each id goes back to its stored record at once, so
// that a retried update is not mistaken for a no-op.
func (s *etcdStore) forceLocked(ids map[string]bool) {
	for id := range ids {
		if ps := s.e.providers[id]; ps != nil && !ps.removed {
			if cfg, err := ps.rec.current(); err == nil {
				ps.cfg = cfg
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range ids {
		s.forced[id] = true
	}
}

// aborted names the current state of the first key that changed.
func (s *etcdStore) aborted(resp *clientv3.TxnResponse) error {
	for _, rr := range resp.Responses {
		g := rr.GetResponseRange()
		if g == nil {
			continue
		}
		key := ""
		if len(g.Kvs) == 0 {
			continue
		}
		kv := g.Kvs[0]
		key = strings.TrimPrefix(string(kv.Key), s.cfg.Prefix+"p/")
		r := &record{}
		if json.Unmarshal(kv.Value, r) == nil {
			return fmt.Errorf("%w: provider %q was changed by another node since this node read it; it is now at version %d "+
				"(etcd revision %d); read it again (GetMetricsProvider) and retry on version %d", ErrAborted, key, r.Version, kv.ModRevision, r.Version)
		}
	}
	return fmt.Errorf("%w: a provider this change names was created or deleted by another node since this node read it; "+
		"list the providers again and retry", ErrAborted)
}

// nextGeneration issues a fleet-wide generation: a compare-and-swap on the
// generation key.
func (s *etcdStore) nextGeneration(ctx context.Context) (uint64, error) {
	if d := s.degErr.Load(); d != nil {
		return 0, s.unavailable(*d)
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	for range 100 {
		g, err := s.cli.Get(tctx, s.genKey())
		if err != nil {
			s.setDegraded(err.Error())
			return 0, s.unavailable(err.Error())
		}
		var cur uint64
		var rev int64
		if len(g.Kvs) > 0 {
			cur, _ = strconv.ParseUint(string(g.Kvs[0].Value), 10, 64)
			rev = g.Kvs[0].ModRevision
		}
		next := strconv.FormatUint(cur+1, 10)
		t, err := s.cli.Txn(tctx).If(clientv3.Compare(clientv3.ModRevision(s.genKey()), "=", rev)).
			Then(clientv3.OpPut(s.genKey(), next)).Commit()
		if err != nil {
			s.setDegraded(err.Error())
			return 0, s.unavailable(err.Error())
		}
		if t.Succeeded {
			return cur + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: the fleet's generation counter kept changing under this node; retry", ErrAborted)
}

// snapshot reads the whole registry at one revision.
func (s *etcdStore) snapshot(ctx context.Context) (recs []*record, backups []*backupRecord, gen uint64, bad []error, rev int64, err error) {
	tctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	// the registry's own keys only, at one revision: other keys under the
	// prefix (the metric definitions, elections) are not the registry's
	resp, err := s.cli.Txn(tctx).Then(
		clientv3.OpGet(s.pKey(""), clientv3.WithPrefix()),
		clientv3.OpGet(s.bKey(""), clientv3.WithPrefix()),
		clientv3.OpGet(s.genKey()),
	).Commit()
	if err != nil {
		return nil, nil, 0, nil, 0, fmt.Errorf("read the provider registry from etcd (%s): %w", strings.Join(s.cfg.Endpoints, ","), err)
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	for _, rr := range resp.Responses[1:] {
		kvs = append(kvs, rr.GetResponseRange().GetKvs()...)
	}
	for _, kv := range kvs {
		k := strings.TrimPrefix(string(kv.Key), s.cfg.Prefix)
		switch {
		case k == "gen":
			gen, _ = strconv.ParseUint(string(kv.Value), 10, 64)
		case strings.HasPrefix(k, "p/"):
			r, err := decodeRecord(kv.Value, kv.ModRevision)
			if err != nil {
				bad = append(bad, fmt.Errorf("provider %q: %w", k[2:], err))
				continue
			}
			recs = append(recs, r)
		case strings.HasPrefix(k, "b/"):
			br := &backupRecord{}
			if json.Unmarshal(kv.Value, br) != nil || br.Record == nil {
				bad = append(bad, errors.New("backup "+k[2:]+" does not decode"))
				continue
			}
			backups = append(backups, br)
		}
	}
	return recs, backups, gen, bad, resp.Header.Revision, nil
}

func decodeRecord(b []byte, rev int64) (*record, error) {
	r := &record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, err
	}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	r.modRev = rev
	return r, nil
}

// load reads the registry at start.
func (s *etcdStore) load(ctx context.Context) ([]*record, []*backupRecord, uint64, []error, error) {
	recs, backups, gen, bad, rev, err := s.snapshot(ctx)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	s.rev.Store(rev)
	return recs, backups, gen, bad, nil
}

// run watches the prefix from the loaded revision and checks etcd's health
// until ctx ends.
func (s *etcdStore) run(ctx context.Context) {
	el, err := election.Start(s.cli, election.Config{
		Key: s.cfg.Prefix + "election/providers", Job: "scheduled provider deletions",
		TTL: s.cfg.LeaseTTL, Identity: s.cfg.Identity, RequestTimeout: s.cfg.RequestTimeout,
	}, s.log, func(ctx context.Context) {
		// a new leader runs what is due at once (the old one may have died)
		s.e.runDueScheduledDeletes()
		<-ctx.Done()
	})
	if err != nil {
		s.log.Warn("Leader election for scheduled deletions did not start: every node runs them (compare-and-swap keeps it once)", zap.Error(err))
	} else {
		s.elector.Store(el)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.healthLoop(ctx) })
	wg.Go(func() { s.watchLoop(ctx) })
	wg.Wait()
	if el != nil {
		el.Close() // resign: another node takes over at once
	}
}

// leads reports whether this node runs the fleet's scheduled deletions.
func (s *etcdStore) leads() bool {
	el := s.elector.Load()
	return el == nil || el.Leading()
}

// healthLoop marks the registry degraded while a linearizable read fails,
// and resyncs when etcd answers again.
func (s *etcdStore) healthLoop(ctx context.Context) {
	etcdconf.HealthLoop{
		Interval: s.cfg.HealthInterval, Timeout: s.cfg.RequestTimeout,
		Probe: func(ctx context.Context) error {
			_, err := s.cli.Get(ctx, s.genKey())
			return err
		},
		Degraded: func() bool { return s.degErr.Load() != nil },
		Down:     func(err error) { s.setDegraded(err.Error()) },
		Up: func(ctx context.Context) error {
			if err := s.resync(ctx); err != nil {
				s.log.Warn("Provider registry resync failed; retrying", zap.Error(err))
				return err
			}
			s.degErr.Store(nil)
			s.notify()
			s.log.Info("Provider registry on etcd answers again; resynced", zap.Int64("revision", s.rev.Load()))
			return nil
		},
	}.Run(ctx)
}

// resync reads the whole registry and reconciles every provider with it.
func (s *etcdStore) resync(ctx context.Context) error {
	recs, backups, _, bad, rev, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	for _, err := range bad {
		s.log.Error("Skipping an unreadable stored provider", zap.Error(err))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.ID] = true
		s.push(r.ID, &remoteRec{rec: r, rev: r.modRev})
	}
	for _, id := range s.e.providerIDs() {
		if !seen[id] {
			s.push(id, &remoteRec{rev: rev})
		}
	}
	s.e.syncBackups(backups)
	for cur := s.rev.Load(); rev > cur && !s.rev.CompareAndSwap(cur, rev); cur = s.rev.Load() {
	}
	return nil
}

func (s *etcdStore) watchLoop(ctx context.Context) {
	etcdconf.WatchLoop{
		Client: s.cli, Prefix: s.cfg.Prefix, From: s.rev.Load, Pause: s.cfg.HealthInterval / 4,
		Apply: func(wr clientv3.WatchResponse) {
			s.log.Debug("etcd watch response", zap.Int("events", len(wr.Events)), zap.Int64("revision", wr.Header.Revision))
			for _, ev := range wr.Events {
				s.event(ev)
			}
			if n := len(wr.Events); n > 0 {
				s.rev.Store(wr.Events[n-1].Kv.ModRevision)
			}
		},
		Resync: s.resync,
		Down: func(err error) {
			s.log.Debug("etcd watch ended", zap.Error(err))
			s.setDegraded(err.Error())
		},
	}.Run(ctx)
}

func (s *etcdStore) event(ev *clientv3.Event) {
	k := strings.TrimPrefix(string(ev.Kv.Key), s.cfg.Prefix)
	switch {
	case strings.HasPrefix(k, "p/"):
		id := k[2:]
		if ev.Type == clientv3.EventTypeDelete {
			s.push(id, &remoteRec{rev: ev.Kv.ModRevision})
			return
		}
		r, err := decodeRecord(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			s.log.Error("Skipping an unreadable provider written by another node", zap.String("provider_id", id), zap.Error(err))
			return
		}
		s.push(id, &remoteRec{rec: r, rev: ev.Kv.ModRevision})
	case strings.HasPrefix(k, "b/"):
		id := k[2:]
		if ev.Type == clientv3.EventTypeDelete {
			s.e.remoteBackup(id, nil)
			return
		}
		br := &backupRecord{}
		if json.Unmarshal(ev.Kv.Value, br) == nil && br.Record != nil {
			s.e.remoteBackup(id, br)
		}
	}
}

// push records the latest remote state of id and makes sure one goroutine
// applies it (after any operation in progress on the provider).
func (s *etcdStore) push(id string, rr *remoteRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pending[id]; p != nil && p.rev > rr.rev {
		return
	}
	s.pending[id] = rr
	if s.running[id] {
		return
	}
	s.running[id] = true
	s.e.bg.Go(func() { s.drainPending(id) })
}

func (s *etcdStore) drainPending(id string) {
	for {
		s.mu.Lock()
		rr := s.pending[id]
		if rr == nil {
			delete(s.running, id)
			s.mu.Unlock()
			return
		}
		delete(s.pending, id)
		s.mu.Unlock()
		s.e.reconcile(id, rr)
	}
}

func (s *etcdStore) close() error { return s.cli.Close() }
