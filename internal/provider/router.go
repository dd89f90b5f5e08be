package provider

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Router hands every batch of the pipeline to the running providers. The
// routing table is an immutable snapshot behind an atomic pointer: the hot
// path takes no global lock, and a change (create, update, delete) publishes
// a new table before it retires a sender, so a batch that raced with the
// change is re-routed to the replacement, never lost.
type Router struct {
	table atomic.Pointer[table]
	now   func() time.Time
	// enableSpool is the engine's EnableSpool.
	enableSpool func(SpoolConfig) error
}

// EnableSpool turns on the durable provider queue of the engine behind the
// router (see Engine.EnableSpool).
func (r *Router) EnableSpool(cfg SpoolConfig) error {
	if r.enableSpool == nil {
		return errors.New("spool: the router has no provider engine")
	}
	return r.enableSpool(cfg)
}

type table struct {
	routes []*route
	byID   map[string]*route
}

// route is one provider in a table.
type route struct {
	id string
	// primary receives the provider's traffic; nil while a RECREATE update
	// replaces the exporter (the data is counted as dropped).
	primary *sender
	// shadow is a BLUE_GREEN candidate receiving a copy.
	shadow *sender
	stats  *Stats
	// failover is the provider that takes the traffic while this one is UNHEALTHY.
	failover   string
	probeEvery time.Duration
	lastProbe  *atomic.Int64
}

func newRouter(now func() time.Time) *Router {
	r := &Router{now: now}
	r.table.Store(&table{byID: map[string]*route{}})
	return r
}

func (r *Router) publish(routes []*route) {
	t := &table{routes: routes, byID: make(map[string]*route, len(routes))}
	for _, rt := range routes {
		t.byID[rt.id] = rt
	}
	r.table.Store(t)
}

// Routes returns the number of providers in the current table.
func (r *Router) Routes() int { return len(r.table.Load().routes) }

// ConsumeMetrics hands md to every provider. It never fails: each provider
// queues, drops and counts on its own, so one destination cannot hold up the
// pipeline or the others. md is not modified.
func (r *Router) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	t := r.table.Load()
	for _, rt := range t.routes {
		r.deliver(t, rt, md)
	}
	return nil
}

// maxReroutes bounds the retries of a batch that met a retired sender; each
// retry sees a newer table, so one is normally enough.
const maxReroutes = 8

func (r *Router) deliver(t *table, rt *route, md pmetric.Metrics) {
	var took [2]*sender // senders that already took md
	has := func(s *sender) bool { return s == took[0] || s == took[1] }
	mark := func(s *sender) {
		if took[0] == nil {
			took[0] = s
		} else {
			took[1] = s
		}
	}
	for range maxReroutes {
		if sh := rt.shadow; sh != nil && !has(sh) && sh.consume(md) {
			mark(sh)
		}
		p := rt.primary
		if p == nil {
			rt.stats.addDropped(md.DataPointCount())
			return
		}
		if has(p) {
			return // took it as the shadow before its promotion
		}
		if r.deliverFailover(t, rt, p, md) || p.consume(md) {
			return
		}
		// p was retired after we loaded the table: use the newer table.
		t = r.table.Load()
		if rt = t.byID[rt.id]; rt == nil {
			return // deleted
		}
	}
}

// deliverFailover sends md to the failover provider while p is UNHEALTHY, and
// a copy to p now and then as a probe of its recovery.
func (r *Router) deliverFailover(t *table, rt *route, p *sender, md pmetric.Metrics) bool {
	if rt.failover == "" || p.stats.Load().Health() != pb.HealthStatus_HEALTH_STATUS_UNHEALTHY {
		return false
	}
	ft := t.byID[rt.failover]
	if ft == nil || ft.primary == nil || ft.primary.stats.Load().Health() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY {
		return false
	}
	out, ok := p.cfg.filter.apply(md)
	if !ok {
		return true
	}
	shared := p.cfg.filter == nil
	if !ft.primary.enqueue(out, shared, kindFailover) {
		return false
	}
	now := r.now().UnixNano()
	if last := rt.lastProbe.Load(); now-last >= int64(rt.probeEvery) && rt.lastProbe.CompareAndSwap(last, now) {
		p.enqueue(out, shared, kindProbe)
	}
	return true
}

// failoverFunc returns what a sender of provider id calls with a batch whose
// export failed: the batch goes to the failover provider when that one runs
// and is not UNHEALTHY itself.
func (r *Router) failoverFunc(id, failover string) func(*item) bool {
	return func(it *item) bool {
		for range maxReroutes {
			ft := r.table.Load().byID[failover]
			if ft == nil || ft.primary == nil || ft.id == id || ft.primary.stats.Load().Health() == pb.HealthStatus_HEALTH_STATUS_UNHEALTHY {
				return false
			}
			if ft.primary.enqueue(it.md, it.shared, kindFailover) {
				return true
			}
			// The failover provider's sender was just replaced: look again.
		}
		return false
	}
}

// probeInterval is how often a failed-over provider gets a probe batch.
func probeInterval(h healthConfig) time.Duration {
	return min(max(h.window/20, 100*time.Millisecond), 5*time.Second)
}
