package store

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCardinalityFollowsCreationAndDeletion(t *testing.T) {
	c := newCardinality()
	a := labels.FromStrings("__name__", "up", "job", "a")
	b := labels.FromStrings("__name__", "up", "job", "b")
	d := labels.FromStrings("__name__", "down", "job", "a")
	for _, ls := range []labels.Labels{a, b, d} {
		c.PostCreation(ls)
	}
	assert.Equal(t, map[string]int64{"up": 2, "down": 1}, c.byName)
	assert.Len(t, c.pairs["job"], 2)
	assert.Len(t, c.pairs["__name__"], 2)

	c.PostDeletion(map[chunks.HeadSeriesRef]labels.Labels{1: b, 2: d})
	assert.Equal(t, map[string]int64{"up": 1}, c.byName)
	assert.Equal(t, map[string]int64{"a": 1}, c.pairs["job"])
	c.PostDeletion(map[chunks.HeadSeriesRef]labels.Labels{1: a})
	assert.Empty(t, c.byName)
	assert.Empty(t, c.pairs)
}

func TestStoreKeepsSeriesPerMetricAndLabelCardinality(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	now := time.Now()
	for _, path := range []string{"/a", "/b", "/c"} {
		require.NoError(t, stage(t, s, counterBatch("http_requests", now, 1, map[string]string{"path": path})).Commit())
	}
	require.NoError(t, stage(t, s, counterBatch("jobs_done", now, 1, nil)).Commit())

	per := s.SeriesPerMetric()
	assert.Equal(t, int64(3), per["http_requests_total"])
	assert.Equal(t, int64(1), per["jobs_done_total"])
	card := s.LabelCardinality()
	assert.Equal(t, int64(3), card["path"])
	assert.Positive(t, card["__name__"])

	matching, err := s.SeriesPerMetricMatching(context.Background(), labels.MustNewMatcher(labels.MatchRegexp, "path", "/a|/b"))
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"http_requests_total": 2}, matching)

	// the WAL replay creates the series again: the counts survive a restart
	require.NoError(t, s.Close())
	s = openStore(t, dir, nil)
	defer s.Close()
	assert.Equal(t, per, s.SeriesPerMetric())
	assert.Equal(t, card, s.LabelCardinality())
}

func TestStoreCountsCounterResets(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	now := time.Now().Add(-time.Minute)
	for i, v := range []float64{5, 7, 2, 3, 0, 4} { // two decreases
		require.NoError(t, stage(t, s, counterBatch("jobs_done", now.Add(time.Duration(i)*time.Second), v, nil)).Commit())
	}
	assert.Equal(t, map[string]int64{"jobs_done_total": 2}, s.Stats().Resets(5*time.Minute))
}
