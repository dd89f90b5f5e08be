package store

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
)

// CountSeries counts the series matching ms from the index postings of the
// in-memory head, without reading any series, when no persisted block
// overlaps [mint, maxt] (milliseconds): the usual case for recent ranges.
// It then also counts the head's series with no sample in the range (a
// series stays in the head for up to about 3 hours after its last sample).
// ok is false when a block overlaps the range: the caller counts another
// way.
func (s *Store) CountSeries(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) (n int64, ok bool, err error) {
	for _, b := range s.db.Blocks() {
		if m := b.Meta(); m.MinTime <= maxt && mint < m.MaxTime {
			return 0, false, nil
		}
	}
	ix, err := s.db.Head().Index()
	if err != nil {
		return 0, false, fmt.Errorf("open the head index: %w", err)
	}
	defer ix.Close()
	p, err := tsdb.PostingsForMatchers(ctx, ix, ms...)
	if err != nil {
		return 0, false, fmt.Errorf("read the head's postings: %w", err)
	}
	for p.Next() {
		n++
	}
	if err := p.Err(); err != nil {
		return 0, false, fmt.Errorf("read the head's postings: %w", err)
	}
	return n, true, nil
}
