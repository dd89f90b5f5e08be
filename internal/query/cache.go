package query

import (
	"cmp"
	"container/list"
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// cache is a step-aligned results cache for range queries, in the manner of
// the Cortex/Thanos query frontend: per (query, step) it keeps extents of
// already evaluated steps; a request re-evaluates only the steps no extent
// holds (typically the newest part), and steps newer than now minus the
// freshness limit are never kept. Memory is bounded; the least recently used
// query is evicted first.
type cache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	entries  map[string]*cacheEntry
	lru      *list.List // of *cacheEntry, most recent at the front
}

type cacheEntry struct {
	key     string
	extents []extent // sorted by start, not overlapping
	bytes   int64
	elem    *list.Element
}

// extent holds the results of the steps in [start, end] (ms, inclusive).
type extent struct {
	start, end int64
	m          promql.Matrix
	bytes      int64
}

func newCache(maxBytes int64) *cache {
	return &cache{maxBytes: maxBytes, entries: map[string]*cacheEntry{}, lru: list.New()}
}

// cacheable reports whether a range query can use the cache: its bounds are
// multiples of its step (as dashboards align them) and its value does not
// depend on the query's own range (the @ start()/end() modifiers).
func cacheable(req Request) bool {
	step := req.Step.Milliseconds()
	if step <= 0 || req.Start.UnixMilli()%step != 0 || req.End.UnixMilli()%step != 0 {
		return false
	}
	return !strings.Contains(req.Query, "@")
}

func (c *cache) stats() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

type evalFunc func(ctx context.Context, start, end time.Time) (*Result, error)

// do answers req from cached extents plus evaluations of the missing steps.
func (c *cache) do(ctx context.Context, req Request, freshUntil time.Time, eval evalFunc) (*Result, error) {
	step := req.Step.Milliseconds()
	s, t := req.Start.UnixMilli(), req.End.UnixMilli()
	key := req.Query + "\x00" + strconv.FormatInt(step, 10)
	cacheEnd := freshUntil.UnixMilli() / step * step

	c.mu.Lock()
	var cached []extent
	if e := c.entries[key]; e != nil {
		c.lru.MoveToFront(e.elem)
		cached = append(cached, e.extents...)
	}
	c.mu.Unlock()

	var parts []promql.Matrix
	var missing [][2]int64
	cur := s
	for _, ex := range cached {
		if ex.end < cur || ex.start > t {
			continue
		}
		if ex.start > cur {
			missing = append(missing, [2]int64{cur, ex.start - step})
		}
		parts = append(parts, sliceMatrix(ex.m, max(cur, ex.start), min(t, ex.end)))
		cur = ex.end + step
	}
	if cur <= t {
		missing = append(missing, [2]int64{cur, t})
	}
	res := &Result{Stats: Stats{CacheHit: len(parts) > 0}}
	var fresh []extent
	for _, m := range missing {
		r, err := eval(ctx, time.UnixMilli(m[0]), time.UnixMilli(m[1]))
		if err != nil {
			return nil, err
		}
		mat, ok := r.Value.(promql.Matrix)
		if !ok {
			// not a matrix (cannot happen for range queries): do not cache
			return r, nil
		}
		parts = append(parts, mat)
		res.Stats.SamplesRead += r.Stats.SamplesRead
		res.Stats.PeakSamples = max(res.Stats.PeakSamples, r.Stats.PeakSamples)
		res.Warnings = append(res.Warnings, r.Warnings...)
		res.Infos = append(res.Infos, r.Infos...)
		// only what was evaluated now is stored: a full hit stores nothing
		if end := min(m[1], cacheEnd); end >= m[0] && len(r.Warnings) == 0 {
			fresh = append(fresh, extent{start: m[0], end: end, m: sliceMatrix(mat, m[0], end)})
		}
	}
	res.Value = mergeMatrices(parts)
	for _, ex := range fresh {
		c.store(key, step, ex)
	}
	return res, nil
}

// invalidateFrom drops cached steps at or after t (ms): samples older than
// the freshness limit arrived, so those steps may have changed.
func (c *cache) invalidateFrom(t int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.entries {
		var kept []extent
		for _, ex := range e.extents {
			switch {
			case ex.end < t:
				kept = append(kept, ex)
			case ex.start < t:
				cut := extent{start: ex.start, m: sliceMatrix(ex.m, ex.start, t-1)}
				cut.end = lastStep(cut.m, ex.start)
				if cut.end >= cut.start {
					cut.bytes = matrixBytes(cut.m)
					kept = append(kept, cut)
				}
			}
		}
		c.bytes -= e.bytes
		e.extents, e.bytes = kept, 0
		for _, x := range kept {
			e.bytes += x.bytes
		}
		c.bytes += e.bytes
		if len(kept) == 0 {
			c.lru.Remove(e.elem)
			delete(c.entries, key)
		}
	}
}

// lastStep returns the newest point time of m, or start-1 when m is empty.
func lastStep(m promql.Matrix, start int64) int64 {
	last := start - 1
	for _, s := range m {
		if n := len(s.Floats); n > 0 {
			last = max(last, s.Floats[n-1].T)
		}
		if n := len(s.Histograms); n > 0 {
			last = max(last, s.Histograms[n-1].T)
		}
	}
	return last
}

// store adds an extent, merging it with the extents it overlaps or touches.
func (c *cache) store(key string, step int64, ex extent) {
	ex.bytes = matrixBytes(ex.m)
	if ex.bytes > c.maxBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{key: key}
		e.elem = c.lru.PushFront(e)
		c.entries[key] = e
	} else {
		c.lru.MoveToFront(e.elem)
	}
	var kept []extent
	for _, old := range e.extents {
		if old.end+step < ex.start || old.start > ex.end+step {
			kept = append(kept, old)
			continue
		}
		ex = extent{start: min(old.start, ex.start), end: max(old.end, ex.end), m: mergeMatrices([]promql.Matrix{old.m, ex.m})}
		ex.bytes = matrixBytes(ex.m)
	}
	kept = append(kept, ex)
	sort.Slice(kept, func(i, j int) bool { return kept[i].start < kept[j].start })
	c.bytes -= e.bytes
	e.extents = kept
	e.bytes = 0
	for _, x := range kept {
		e.bytes += x.bytes
	}
	c.bytes += e.bytes
	for c.bytes > c.maxBytes && c.lru.Len() > 0 {
		old := c.lru.Remove(c.lru.Back()).(*cacheEntry)
		delete(c.entries, old.key)
		c.bytes -= old.bytes
	}
}

// sliceMatrix returns the points of m with s <= T <= t, sharing the point
// slices of m (results are read only).
func sliceMatrix(m promql.Matrix, s, t int64) promql.Matrix {
	out := make(promql.Matrix, 0, len(m))
	for _, series := range m {
		ns := promql.Series{Metric: series.Metric}
		lo, _ := slices.BinarySearchFunc(series.Floats, s, func(p promql.FPoint, t int64) int { return cmp.Compare(p.T, t) })
		hi, found := slices.BinarySearchFunc(series.Floats, t, func(p promql.FPoint, t int64) int { return cmp.Compare(p.T, t) })
		if found {
			hi++
		}
		if lo < hi {
			ns.Floats = series.Floats[lo:hi:hi]
		}
		lo, _ = slices.BinarySearchFunc(series.Histograms, s, func(p promql.HPoint, t int64) int { return cmp.Compare(p.T, t) })
		hi, found = slices.BinarySearchFunc(series.Histograms, t, func(p promql.HPoint, t int64) int { return cmp.Compare(p.T, t) })
		if found {
			hi++
		}
		if lo < hi {
			ns.Histograms = series.Histograms[lo:hi:hi]
		}
		if len(ns.Floats)+len(ns.Histograms) > 0 {
			out = append(out, ns)
		}
	}
	return out
}

// mergeMatrices joins the points of series with equal labels, in time order.
func mergeMatrices(parts []promql.Matrix) promql.Matrix {
	if len(parts) == 1 {
		return parts[0]
	}
	byLabels := map[string]int{}
	var out promql.Matrix
	var buf []byte
	for _, m := range parts {
		for _, s := range m {
			buf = s.Metric.Bytes(buf)
			i, ok := byLabels[string(buf)]
			if !ok {
				i = len(out)
				byLabels[string(buf)] = i
				out = append(out, promql.Series{Metric: s.Metric})
			}
			out[i].Floats = append(out[i].Floats, s.Floats...)
			out[i].Histograms = append(out[i].Histograms, s.Histograms...)
		}
	}
	for i := range out {
		f := out[i].Floats
		if !slices.IsSortedFunc(f, func(a, b promql.FPoint) int { return cmp.Compare(a.T, b.T) }) {
			sort.SliceStable(f, func(a, b int) bool { return f[a].T < f[b].T })
		}
		out[i].Floats = dedupF(f)
		h := out[i].Histograms
		if !slices.IsSortedFunc(h, func(a, b promql.HPoint) int { return cmp.Compare(a.T, b.T) }) {
			sort.SliceStable(h, func(a, b int) bool { return h[a].T < h[b].T })
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Metric, out[j].Metric) < 0 })
	return out
}

func dedupF(f []promql.FPoint) []promql.FPoint {
	if len(f) < 2 {
		return f
	}
	w := 1
	for r := 1; r < len(f); r++ {
		if f[r].T != f[w-1].T {
			f[w] = f[r]
			w++
		}
	}
	return f[:w]
}

func matrixBytes(m promql.Matrix) int64 {
	var n int64
	for _, s := range m {
		n += int64(s.Metric.Len()*32) + int64(len(s.Floats))*16 + int64(len(s.Histograms))*256 + 64
	}
	return n
}
