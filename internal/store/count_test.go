package store

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountAndWalkSeriesFromTheHeadIndex(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	start := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	for i := 0; i < 5*6; i++ {
		ts := start.Add(time.Duration(i) * 10 * time.Minute)
		for _, m := range []string{"GET", "PUT", "POST"} {
			require.NoError(t, stage(t, s, counterBatch("reqs", ts, float64(i), map[string]string{"method": m})).Commit())
		}
	}
	now := start.Add(5 * time.Hour)
	name := labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "reqs_total")
	n, ok, err := s.CountSeries(context.Background(), now.Add(-time.Hour).UnixMilli(), now.UnixMilli(), name)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(3), n)
	n, ok, err = s.CountSeries(context.Background(), now.Add(-time.Hour).UnixMilli(), now.UnixMilli(), name,
		labels.MustNewMatcher(labels.MatchRegexp, "method", "P.*"))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(2), n)

	var seen []string
	ok, err = s.EachHeadSeries(context.Background(), now.Add(-time.Hour).UnixMilli(), now.UnixMilli(),
		[]*labels.Matcher{name, labels.MustNewMatcher(labels.MatchNotEqual, "method", "PUT")}, func(ls labels.Labels) error {
			seen = append(seen, ls.Get("method"))
			return nil
		})
	require.NoError(t, err)
	require.True(t, ok)
	assert.ElementsMatch(t, []string{"GET", "POST"}, seen)

	require.NoError(t, s.db.Compact(context.Background()))
	require.NotEmpty(t, s.db.Blocks(), "the oldest hours are persisted")
	_, ok, err = s.CountSeries(context.Background(), start.UnixMilli(), start.Add(time.Hour).UnixMilli(), name)
	require.NoError(t, err)
	assert.False(t, ok, "a range a block overlaps is not counted from the head")
	_, ok, err = s.CountSeries(context.Background(), now.Add(-time.Minute).UnixMilli(), now.UnixMilli(), name)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.EachHeadSeries(context.Background(), start.UnixMilli(), start.Add(time.Hour).UnixMilli(), []*labels.Matcher{name},
		func(labels.Labels) error { return nil })
	require.NoError(t, err)
	assert.False(t, ok, "a range a block overlaps is not read from the head")
}
