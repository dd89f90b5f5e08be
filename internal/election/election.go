// Package election runs once-only work of a fleet of collectors on one
// node at a time: the nodes campaign on an etcd key with a session lease
// (go.etcd.io/etcd/client/v3/concurrency), the winner runs the work while
// it leads, resigns when it stops, and a node whose lease expires (it died,
// or lost etcd for longer than the lease) is replaced by another.
package election

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// DefaultTTL is the session lease when Config.TTL is unset.
const DefaultTTL = 10 * time.Second

// Config configures an Elector.
type Config struct {
	// Key is the election's key (the candidates' keys are under Key + "/"),
	// e.g. "/metricsmodule/election/definitions".
	Key string
	// Job names the work in logs and Status, e.g. "scheduled definition deletions".
	Job string
	// TTL is the session lease, in whole seconds (DefaultTTL when 0): a
	// leader that stops renewing it is replaced after about TTL.
	TTL time.Duration
	// Identity names this node in Status (host:pid when empty).
	Identity string
	// RequestTimeout bounds the lease grant, the resign and the leader
	// look-up (5s when 0).
	RequestTimeout time.Duration
}

// Status is the state of an election as one node sees it.
type Status struct {
	// Job is Config.Job.
	Job string
	// Identity is this node.
	Identity string
	// Leading is set while this node leads (runs the work).
	Leading bool
	// Leader is the identity of the node that leads ("" when none does,
	// or etcd did not answer: see Err).
	Leader string
	// Err says why Leader is unknown.
	Err string
}

// Elector campaigns for one job and runs its work while this node leads.
type Elector struct {
	cli  *clientv3.Client
	cfg  Config
	log  *zap.Logger
	work func(ctx context.Context)

	leading atomic.Bool
	leader  atomic.Pointer[string] // identity of the leader last seen
	fence   atomic.Pointer[fence]
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

type fence struct {
	key string
	rev int64
}

// Start starts campaigning. work runs in its own goroutine each time this
// node becomes the leader, with a context that ends when the leadership
// ends (lease lost, Close); it should return when its context ends.
func Start(cli *clientv3.Client, cfg Config, log *zap.Logger, work func(ctx context.Context)) (*Elector, error) {
	if cfg.Key == "" {
		return nil, errors.New("election: the key is empty")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("election: lease TTL %s is below 1s; etcd leases count whole seconds", cfg.TTL)
	}
	if cfg.Identity == "" {
		cfg.Identity = DefaultIdentity()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Elector{cli: cli, cfg: cfg, log: log.With(zap.String("job", cfg.Job), zap.String("election", cfg.Key)),
		work: work, cancel: cancel, done: make(chan struct{})}
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		e.observe(ctx)
	}()
	go func() {
		e.loop(ctx)
		<-obsDone
		close(e.done)
	}()
	return e, nil
}

// Leader is the identity of the leader as last seen through a watch of the
// election ("" when none leads or it is not known yet); it does not call
// etcd.
func (e *Elector) Leader() string {
	if e.leading.Load() {
		return e.cfg.Identity
	}
	if l := e.leader.Load(); l != nil {
		return *l
	}
	return ""
}

// observe keeps Leader current: it reads the leader again on every change
// of the candidates' keys.
func (e *Elector) observe(ctx context.Context) {
	for ctx.Err() == nil {
		// watch from the revision read, so that no change in between is missed
		if rev, ok := e.refreshLeader(ctx); ok {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for wr := range e.cli.Watch(wctx, e.cfg.Key+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
				if wr.Err() != nil || wr.CompactRevision != 0 {
					break
				}
				e.refreshLeader(ctx)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(e.cfg.TTL/4, time.Second)):
		}
	}
}

// refreshLeader reads the leader; it returns the revision it read at.
func (e *Elector) refreshLeader(ctx context.Context) (int64, bool) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.cfg.Key+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return 0, false
	}
	l := ""
	if len(resp.Kvs) > 0 {
		l = string(resp.Kvs[0].Value)
	}
	e.leader.Store(&l)
	return resp.Header.Revision, true
}

// DefaultIdentity is host:pid.
func DefaultIdentity() string {
	h, _ := os.Hostname()
	return h + ":" + strconv.Itoa(os.Getpid())
}

// Leading reports whether this node leads now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Fence is a comparison that holds only while this node's leadership key
// exists: added to a Txn it makes the write fail once the lease expired,
// even if this node has not noticed yet. ok is false while not leading.
func (e *Elector) Fence() (cmp clientv3.Cmp, ok bool) {
	f := e.fence.Load()
	if f == nil {
		return clientv3.Cmp{}, false
	}
	return clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev), true
}

// Status returns this node's view, with the current leader read from etcd.
func (e *Elector) Status(ctx context.Context) Status {
	st := Status{Job: e.cfg.Job, Identity: e.cfg.Identity, Leading: e.leading.Load()}
	if st.Leading {
		st.Leader = e.cfg.Identity
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.cfg.Key+"/", clientv3.WithFirstCreate()...)
	switch {
	case err != nil:
		st.Err = "etcd does not answer: " + err.Error()
	case len(resp.Kvs) > 0:
		st.Leader = string(resp.Kvs[0].Value)
	}
	return st
}

// Close stops campaigning: the work's context ends, a leader resigns (so
// another node takes over at once), and Close waits for the work to
// return. It is idempotent.
func (e *Elector) Close() {
	e.once.Do(e.cancel)
	<-e.done
}

func (e *Elector) loop(ctx context.Context) {
	for ctx.Err() == nil {
		if err := e.term(ctx); err != nil && ctx.Err() == nil {
			e.log.Debug("Campaign ended; campaigning again", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(e.cfg.TTL/4, time.Second)):
		}
	}
}

// term is one campaign: a session, the wait to lead, the leadership.
func (e *Elector) term(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	lease, err := e.cli.Grant(gctx, int64(e.cfg.TTL/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("grant the election lease: %w", err)
	}
	sess, err := concurrency.NewSession(e.cli, concurrency.WithLease(lease.ID),
		concurrency.WithTTL(int(e.cfg.TTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open the election session: %w", err)
	}
	defer func() {
		// the term is over (shutdown, lost lease, failed campaign): revoke
		// the lease (bounded) so that this node's key goes now rather than
		// after the TTL; harmless when the lease has expired already
		sess.Orphan()
		rctx, cancel := context.WithTimeout(context.Background(), e.cfg.RequestTimeout)
		_, _ = e.cli.Revoke(rctx, lease.ID)
		cancel()
	}()
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	go func() {
		select {
		case <-sess.Done():
			lcancel()
		case <-lctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, e.cfg.Key)
	if err := el.Campaign(lctx, e.cfg.Identity); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	e.fence.Store(&fence{key: el.Key(), rev: el.Rev()})
	e.leading.Store(true)
	e.log.Info("This node leads: running the once-only work", zap.String("identity", e.cfg.Identity))
	var wg sync.WaitGroup
	wg.Go(func() { e.work(lctx) })
	<-lctx.Done()
	e.leading.Store(false)
	e.fence.Store(nil)
	wg.Wait()
	if ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.Background(), e.cfg.RequestTimeout)
		err := el.Resign(rctx)
		cancel()
		e.log.Info("This node resigned the leadership (shutting down)", zap.Error(err))
		return nil
	}
	e.log.Warn("This node lost the leadership (its etcd lease expired); campaigning again")
	return nil
}
