package convert

import (
	"fmt"
	"sync"
)

// gaugeSeries remembers the series keys of gauge metrics, per name, so that
// gauges (which keep no state) count toward limits.max_series_per_metric like
// stateful series do. A name's set holds at most the limit; keys unseen for
// series_ttl are forgotten by Sweep.
type gaugeSeries struct {
	mu     sync.Mutex
	byName map[*nameInfo]map[uint64]*gaugeMark // series key -> its mark
}

// gaugeMark is one remembered gauge series (guarded by gaugeSeries.mu). The
// series cache keeps a pointer to it, so that a record of a cached series
// updates it without a lookup; dead says it was forgotten.
type gaugeMark struct {
	seen int64 // last seen (unix nanos)
	dead bool
}

// admit records gauge series key of name as seen at now. It refuses a new
// key when the name already has limit series (limit <= 0: no limit) and
// reports whether the key is new (for rollback).
func (g *gaugeSeries) admit(name *nameInfo, metric string, key uint64, now int64, limit int) (added bool, iss *Issue) {
	if limit <= 0 {
		return false, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	added, _, iss = g.admitLocked(name, metric, key, now, limit)
	return added, iss
}

// admitLocked is admit with g.mu held (and limit > 0); it also returns the
// series' mark.
func (g *gaugeSeries) admitLocked(name *nameInfo, metric string, key uint64, now int64, limit int) (added bool, mark *gaugeMark, iss *Issue) {
	set := g.byName[name]
	if m := set[key]; m != nil {
		m.seen = now
		return false, m, nil
	}
	if len(set) >= limit {
		return false, nil, &Issue{
			Field: ".labels", Code: "series_limit", Kind: KindResourceExhausted,
			Message:    fmt.Sprintf("gauge %q has reached its limit of %d series (limits.max_series_per_metric); this label set would add one more", metric, limit),
			Suggestion: "drop high-cardinality labels (ids, timestamps), or raise limits.max_series_per_metric",
		}
	}
	if g.byName == nil {
		g.byName = map[*nameInfo]map[uint64]*gaugeMark{}
	}
	if set == nil {
		set = map[uint64]*gaugeMark{}
		g.byName[name] = set
	}
	m := &gaugeMark{seen: now}
	set[key] = m
	return true, m, nil
}

// forget removes keys added by a call that was refused as a whole.
func (g *gaugeSeries) forget(name *nameInfo, key uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forgetLocked(name, key)
}

// forgetLocked is forget with g.mu held.
func (g *gaugeSeries) forgetLocked(name *nameInfo, key uint64) {
	if set := g.byName[name]; set != nil {
		if m := set[key]; m != nil {
			m.dead = true
			delete(set, key)
		}
	}
}

// sweep forgets the keys last seen before cutoff and returns how many.
func (g *gaugeSeries) sweep(cutoff int64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for name, set := range g.byName {
		for k, m := range set {
			if m.seen < cutoff {
				m.dead = true
				delete(set, k)
				n++
			}
		}
		if len(set) == 0 {
			delete(g.byName, name)
		}
	}
	return n
}

// count returns the gauge series remembered for name.
func (g *gaugeSeries) count(name *nameInfo) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byName[name])
}
