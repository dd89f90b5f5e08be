package store

import (
	"io/fs"
	"path/filepath"

	"github.com/prometheus/prometheus/model/labels"
)

// The status methods below are the store's narrow read-only view of its TSDB for
// summaries, tools and admin pages, in the way Prometheus' web API reads its TSDB
// through TSDBAdminStats instead of holding the *tsdb.DB. They return the store's
// own types so no caller depends on the TSDB package.

// NameCount is a name with a count: a metric name with its series, or a label
// name with its distinct values.
type NameCount struct {
	Name  string
	Count uint64
}

// HeadStats is a snapshot of the in-memory head block.
type HeadStats struct {
	// NumSeries is the number of series in the head.
	NumSeries uint64
	// MinTime and MaxTime bound the head's samples in milliseconds since the
	// epoch; they are meaningful only when NumSeries > 0.
	MinTime, MaxTime int64
	// SeriesPerMetric lists metric names by series count, highest first, at most
	// the limit given to HeadStats.
	SeriesPerMetric []NameCount
	// LabelValues lists label names by distinct values, highest first, at most
	// the limit given to HeadStats.
	LabelValues []NameCount
}

// HeadStats returns the head's series count and time range and, when limit > 0,
// the top limit metric names by series and label names by distinct values (a
// walk of the head's postings index; limit <= 0 skips it). The TSDB caches the
// top-N lists per limit for up to 30 seconds, so they may lag the series count.
func (s *Store) HeadStats(limit int) HeadStats {
	head := s.db.Head()
	out := HeadStats{NumSeries: head.NumSeries(), MinTime: head.MinTime(), MaxTime: head.MaxTime()}
	if limit <= 0 {
		return out
	}
	st := head.Stats(labels.MetricName, limit)
	out.NumSeries = st.NumSeries
	out.MinTime, out.MaxTime = st.MinTime, st.MaxTime
	if ps := st.IndexPostingStats; ps != nil {
		for _, m := range ps.CardinalityMetricsStats {
			out.SeriesPerMetric = append(out.SeriesPerMetric, NameCount{Name: m.Name, Count: m.Count})
		}
		for _, l := range ps.CardinalityLabelStats {
			out.LabelValues = append(out.LabelValues, NameCount{Name: l.Name, Count: l.Count})
		}
	}
	return out
}

// BlockInfo describes one persisted (compacted) block.
type BlockInfo struct {
	// MinTime and MaxTime bound the block in milliseconds since the epoch.
	MinTime, MaxTime int64
	// NumSamples and NumSeries are the block's totals.
	NumSamples, NumSeries uint64
}

// Blocks returns the persisted blocks, oldest first.
func (s *Store) Blocks() []BlockInfo {
	bs := s.db.Blocks()
	out := make([]BlockInfo, 0, len(bs))
	for _, b := range bs {
		m := b.Meta()
		out = append(out, BlockInfo{MinTime: m.MinTime, MaxTime: m.MaxTime, NumSamples: m.Stats.NumSamples, NumSeries: m.Stats.NumSeries})
	}
	return out
}

// Dir returns the store's data directory.
func (s *Store) Dir() string { return s.db.Dir() }

// DiskBytes returns the bytes of every file under the data directory (blocks,
// WAL, chunks, metadata journal); unreadable entries are skipped.
func (s *Store) DiskBytes() int64 {
	var n int64
	_ = filepath.WalkDir(s.db.Dir(), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, ierr := d.Info(); ierr == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
