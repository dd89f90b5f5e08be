package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
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
	if s.blockOverlaps(mint, maxt) {
		return 0, false, nil
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

// EachHeadSeries calls fn with the labels of every series of the in-memory
// head matching ms, from the index postings and without reading chunks
// (a series with no sample in [mint, maxt] is included), when no persisted
// block overlaps [mint, maxt]; ok is false otherwise. fn may keep the
// labels; an error of fn stops the walk and is returned.
func (s *Store) EachHeadSeries(ctx context.Context, mint, maxt int64, ms []*labels.Matcher, fn func(labels.Labels) error) (ok bool, err error) {
	if s.blockOverlaps(mint, maxt) {
		return false, nil
	}
	ix, err := s.db.Head().Index()
	if err != nil {
		return false, fmt.Errorf("open the head index: %w", err)
	}
	defer ix.Close()
	p, err := tsdb.PostingsForMatchers(ctx, ix, ms...)
	if err != nil {
		return false, fmt.Errorf("read the head's postings: %w", err)
	}
	var b labels.ScratchBuilder
	for p.Next() {
		if err := ix.Series(p.At(), &b, nil); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // removed meanwhile
			}
			return false, fmt.Errorf("read series %d of the head: %w", p.At(), err)
		}
		if err := fn(b.Labels()); err != nil {
			return true, err
		}
	}
	if err := p.Err(); err != nil {
		return false, fmt.Errorf("read the head's postings: %w", err)
	}
	return true, nil
}

// blockOverlaps reports whether a persisted block holds samples in [mint,
// maxt] (a block covers [MinTime, MaxTime)).
func (s *Store) blockOverlaps(mint, maxt int64) bool {
	for _, b := range s.db.Blocks() {
		if m := b.Meta(); m.MinTime <= maxt && mint < m.MaxTime {
			return true
		}
	}
	return false
}
