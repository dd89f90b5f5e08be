package store

import (
	"context"
	"math"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// cardinality keeps the head's series per metric name and per label pair up
// to date from the TSDB's series lifecycle callbacks (a series created by an
// append or the WAL replay, series removed by the head's garbage
// collection), so summaries read them without walking the postings index.
// It costs one map update per label of a new series and about what the
// head's own postings keys take in memory.
type cardinality struct {
	mu     sync.Mutex
	byName map[string]int64
	// pairs is the series per label value, per label name.
	pairs map[string]map[string]int64
}

func newCardinality() *cardinality {
	return &cardinality{byName: map[string]int64{}, pairs: map[string]map[string]int64{}}
}

// PreCreation accepts every series.
func (*cardinality) PreCreation(labels.Labels) error { return nil }

// PostCreation counts a new head series.
func (c *cardinality) PostCreation(ls labels.Labels) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(ls, 1)
}

// PostDeletion uncounts series the head dropped.
func (c *cardinality) PostDeletion(deleted map[chunks.HeadSeriesRef]labels.Labels) {
	if len(deleted) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ls := range deleted {
		c.add(ls, -1)
	}
}

func (c *cardinality) add(ls labels.Labels, d int64) {
	ls.Range(func(l labels.Label) {
		if l.Name == labels.MetricName {
			if n := c.byName[l.Value] + d; n > 0 {
				c.byName[l.Value] = n
			} else {
				delete(c.byName, l.Value)
			}
		}
		vals := c.pairs[l.Name]
		if vals == nil {
			if d < 0 {
				return
			}
			vals = map[string]int64{}
			c.pairs[strings.Clone(l.Name)] = vals
		}
		n := vals[l.Value] + d
		switch {
		case n <= 0:
			delete(vals, l.Value)
			if len(vals) == 0 {
				delete(c.pairs, l.Name)
			}
		case n == 1 && d > 0:
			// a new value: keep a copy, not a piece of the series' labels
			vals[strings.Clone(l.Value)] = n
		default:
			vals[l.Value] = n
		}
	})
}

// SeriesPerMetric returns the head's series per metric name, kept up to date
// as series are created and garbage-collected (no index walk).
func (s *Store) SeriesPerMetric() map[string]int64 {
	c := s.card
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byName))
	for n, v := range c.byName {
		out[n] = v
	}
	return out
}

// LabelCardinality returns the distinct values per label name in the head
// (__name__ included: the number of metric names), kept up to date as
// series are created and garbage-collected.
func (s *Store) LabelCardinality() map[string]int64 {
	c := s.card
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.pairs))
	for n, vals := range c.pairs {
		out[n] = int64(len(vals))
	}
	return out
}

// SeriesPerMetricMatching counts the stored series (head and blocks) that
// match ms, per metric name. It reads the index of every block: its cost
// grows with the matching series.
func (s *Store) SeriesPerMetricMatching(ctx context.Context, ms ...*labels.Matcher) (map[string]int64, error) {
	q, err := s.db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := map[string]int64{}
	set := q.Select(ctx, false, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series"}, ms...)
	for set.Next() {
		out[set.At().Labels().Get(labels.MetricName)]++
	}
	return out, set.Err()
}
