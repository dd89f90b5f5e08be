package convert

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
)

// gaugeSeries remembers the series keys of gauge metrics, per name, so that
// gauges (which keep no state) count toward limits.max_series_per_metric like
// stateful series do. A name's set holds at most the limit; keys unseen for
// series_ttl are forgotten by Sweep.
type gaugeSeries struct {
	mu     sync.Mutex
	byName map[*nameInfo]map[uint64]int64 // series key -> last seen (unix nanos)
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
	return g.admitLocked(name, metric, key, now, limit)
}

// admitLocked is admit with g.mu held (and limit > 0).
func (g *gaugeSeries) admitLocked(name *nameInfo, metric string, key uint64, now int64, limit int) (added bool, iss *Issue) {
	set := g.byName[name]
	if _, ok := set[key]; ok {
		set[key] = now
		return false, nil
	}
	if len(set) >= limit {
		return false, &Issue{
			Field: ".labels", Code: "series_limit", Status: codes.ResourceExhausted,
			Message:    fmt.Sprintf("gauge %q has reached its limit of %d series (limits.max_series_per_metric); this label set would add one more", metric, limit),
			Suggestion: "drop high-cardinality labels (ids, timestamps), or raise limits.max_series_per_metric",
		}
	}
	if g.byName == nil {
		g.byName = map[*nameInfo]map[uint64]int64{}
	}
	if set == nil {
		set = map[uint64]int64{}
		g.byName[name] = set
	}
	set[key] = now
	return true, nil
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
		delete(set, key)
	}
}

// sweep forgets the keys last seen before cutoff and returns how many.
func (g *gaugeSeries) sweep(cutoff int64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for name, set := range g.byName {
		for k, seen := range set {
			if seen < cutoff {
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
