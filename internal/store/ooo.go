package store

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// An out-of-order sample at a timestamp the series already has is not
// refused by the TSDB: against an in-order sample both are kept and a read
// returns either; against an out-of-order one Commit drops it without an
// error. The store keeps the newest committed timestamp of every series it
// wrote since start (8 bytes per series ref) and looks the stored value up
// for samples older than that before it stages them. Series not written
// since start (after a restart) are not looked up for their first sample.

const lastSlab = 1 << 16

// lastTimes is the newest committed timestamp per series ref (refs are
// dense and sequential); 0 is unknown.
type lastTimes struct {
	mu    sync.Mutex
	slabs atomic.Pointer[[]*[lastSlab]atomic.Int64]
}

func (l *lastTimes) get(ref storage.SeriesRef) int64 {
	p := l.slabs.Load()
	i := uint64(ref) / lastSlab
	if p == nil || i >= uint64(len(*p)) {
		return 0
	}
	return (*p)[i][uint64(ref)%lastSlab].Load()
}

// slot returns the cell of ref, growing the slabs when needed.
func (l *lastTimes) slot(ref storage.SeriesRef) *atomic.Int64 {
	i := uint64(ref) / lastSlab
	p := l.slabs.Load()
	if p == nil || i >= uint64(len(*p)) {
		l.mu.Lock()
		p = l.slabs.Load()
		if p == nil || i >= uint64(len(*p)) {
			var grown []*[lastSlab]atomic.Int64
			if p != nil {
				grown = append(grown, *p...)
			}
			for uint64(len(grown)) <= i {
				grown = append(grown, new([lastSlab]atomic.Int64))
			}
			l.slabs.Store(&grown)
			p = &grown
		}
		l.mu.Unlock()
	}
	return &(*p)[i][uint64(ref)%lastSlab]
}

// set stores v for ref.
func (l *lastTimes) set(ref storage.SeriesRef, v int64) { l.slot(ref).Store(v) }

func (l *lastTimes) storeMax(ref storage.SeriesRef, t int64) {
	v := l.slot(ref)
	for {
		cur := v.Load()
		if cur >= t || v.CompareAndSwap(cur, t) {
			return
		}
	}
}

// oooCandidate is a staged float sample older than its series' newest.
type oooCandidate struct {
	ls     labels.Labels
	family string
	t      int64
	v      float64
}

// checkStoredDuplicates looks up the stored value of each candidate and
// returns the refusal of the first that differs.
func (t *Txn) checkStoredDuplicates(ctx context.Context) (*RefusedError, int, error) {
	cands := t.batch.ooo
	if len(cands) == 0 {
		return nil, 0, nil
	}
	minT, maxT := int64(math.MaxInt64), int64(math.MinInt64)
	for _, c := range cands {
		minT, maxT = min(minT, c.t), max(maxT, c.t)
	}
	q, err := t.s.db.Querier(minT, maxT)
	if err != nil {
		return nil, 0, fmt.Errorf("look up out-of-order samples: %w", err)
	}
	defer q.Close()
	var first *RefusedError
	n := 0
	var it chunkenc.Iterator
	for _, c := range cands {
		ms := make([]*labels.Matcher, 0, c.ls.Len())
		c.ls.Range(func(l labels.Label) {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
		})
		set := q.Select(ctx, false, &storage.SelectHints{Start: c.t, End: c.t}, ms...)
		for set.Next() {
			it = set.At().Iterator(it)
			if it.Seek(c.t) != chunkenc.ValFloat {
				continue
			}
			st, sv := it.At()
			if st == c.t && math.Float64bits(sv) != math.Float64bits(c.v) {
				n++
				if first == nil {
					first = &RefusedError{
						Reason: ReasonDuplicate, Metric: t.otelName(c.family), Field: "timestamp",
						Message: fmt.Sprintf("series %s already has another value at %s (%g, not %g).", c.ls.String(), rfc(c.t), sv, c.v),
						Fix:     "send one value per series and timestamp; resend only the values that were stored.",
					}
				}
			}
		}
		if err := set.Err(); err != nil {
			return nil, 0, fmt.Errorf("look up out-of-order samples: %w", err)
		}
	}
	return first, n, nil
}
