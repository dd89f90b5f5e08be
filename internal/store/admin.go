package store

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// SeriesData is one series with its float samples (backups).
type SeriesData struct {
	Labels  labels.Labels
	Samples []Sample
}

// Sample is one float sample.
type Sample struct {
	T int64
	V float64
}

// Count returns the series and float samples matching the matchers.
func (s *Store) Count(ctx context.Context, ms ...*labels.Matcher) (series, samples int64, err error) {
	err = s.each(ctx, ms, func(_ labels.Labels, it chunkenc.Iterator) {
		series++
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			samples++
		}
	})
	return series, samples, err
}

// Export returns every float sample of the matching series.
func (s *Store) Export(ctx context.Context, ms ...*labels.Matcher) ([]SeriesData, error) {
	var out []SeriesData
	err := s.each(ctx, ms, func(ls labels.Labels, it chunkenc.Iterator) {
		sd := SeriesData{Labels: ls.Copy()}
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt == chunkenc.ValFloat {
				t, v := it.At()
				sd.Samples = append(sd.Samples, Sample{T: t, V: v})
			}
		}
		out = append(out, sd)
	})
	return out, err
}

func (s *Store) each(ctx context.Context, ms []*labels.Matcher, fn func(labels.Labels, chunkenc.Iterator)) error {
	q, err := s.db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("open querier: %w", err)
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, ms...)
	var it chunkenc.Iterator
	for set.Next() {
		ser := set.At()
		it = ser.Iterator(it)
		fn(ser.Labels(), it)
	}
	return set.Err()
}

// Delete removes the matching series' samples (tombstones, cleaned at once).
func (s *Store) Delete(ctx context.Context, ms ...*labels.Matcher) error {
	if err := s.db.Delete(ctx, math.MinInt64, math.MaxInt64, ms...); err != nil {
		return fmt.Errorf("delete series: %w", err)
	}
	if err := s.db.CleanTombstones(); err != nil {
		return fmt.Errorf("clean tombstones: %w", err)
	}
	return nil
}

// Backfill writes series as a new block, whatever their age (the head only
// takes recent samples). The block is loaded within the reload interval.
func (s *Store) Backfill(ctx context.Context, data []SeriesData) error {
	if len(data) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp(s.cfg.Path, "backfill-")
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	defer os.RemoveAll(tmp)
	minT, maxT := int64(math.MaxInt64), int64(math.MinInt64)
	for _, sd := range data {
		for _, smp := range sd.Samples {
			minT, maxT = min(minT, smp.T), max(maxT, smp.T)
		}
	}
	if minT > maxT {
		return nil
	}
	blockSize := max(maxT-minT+1, tsdb.DefaultBlockDuration)
	w, err := tsdb.NewBlockWriter(newSlogger(s.logger.Named("backfill")), tmp, blockSize)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	defer w.Close()
	app := w.Appender(ctx)
	for _, sd := range data {
		var ref storage.SeriesRef
		for _, smp := range sd.Samples {
			if ref, err = app.Append(ref, sd.Labels, smp.T, smp.V); err != nil {
				return fmt.Errorf("backfill %s: %w", sd.Labels, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	id, err := w.Flush(ctx)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, id.String()), filepath.Join(s.cfg.Path, id.String())); err != nil {
		return fmt.Errorf("backfill: move block: %w", err)
	}
	return nil
}

// WaitForBlocks waits until the store has loaded at least n blocks.
func (s *Store) WaitForBlocks(ctx context.Context, n int) error {
	for len(s.db.Blocks()) < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// LabelNames returns the label names of the series matching ms with
// samples in [mint, maxt] (milliseconds).
func (s *Store) LabelNames(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) ([]string, error) {
	q, err := s.db.Querier(mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("open querier: %w", err)
	}
	defer q.Close()
	names, _, err := q.LabelNames(ctx, nil, ms...)
	return names, err
}

// SeriesPerLabel counts the series matching ms with samples in [mint,
// maxt] (milliseconds) per label name and value.
func (s *Store) SeriesPerLabel(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) (map[labels.Label]int64, error) {
	q, err := s.db.Querier(mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("open querier: %w", err)
	}
	defer q.Close()
	out := map[labels.Label]int64{}
	set := q.Select(ctx, false, nil, ms...)
	for set.Next() {
		set.At().Labels().Range(func(l labels.Label) { out[l]++ })
	}
	return out, set.Err()
}
