package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLastSampleReadsTheNewestSampleOfTheTranslatedSeries(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	t1 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	attrs := map[string]string{"http.route": "/a"}
	for i, v := range []float64{1, 4, 9} {
		require.NoError(t, stage(t, s, counterBatch("app.requests", t1.Add(time.Duration(i)*time.Second), v, attrs)).Commit())
	}
	// another series of the family with more labels is not it
	require.NoError(t, stage(t, s, counterBatch("app.requests", t1.Add(5*time.Second), 100, map[string]string{"http.route": "/a", "x": "y"})).Commit())

	check := func(s *Store) {
		t.Helper()
		// the lookup point's own value and time do not matter
		got, ok, err := s.LastSample(context.Background(), counterBatch("app.requests", time.Now(), 0, attrs))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, StoredSample{Value: 9, Last: t1.Add(2 * time.Second).UnixMilli(), First: t1.UnixMilli()}, got)

		_, ok, err = s.LastSample(context.Background(), counterBatch("app.requests", time.Now(), 0, map[string]string{"http.route": "/b"}))
		require.NoError(t, err)
		assert.False(t, ok, "another label value")
		_, ok, err = s.LastSample(context.Background(), counterBatch("app.other", time.Now(), 0, attrs))
		require.NoError(t, err)
		assert.False(t, ok, "another metric")
	}
	check(s)
	// after a restart (WAL replay)
	require.NoError(t, s.Close())
	s = openStore(t, dir, nil)
	defer s.Close()
	check(s)

	require.NoError(t, s.Close())
	_, _, err := s.LastSample(context.Background(), counterBatch("app.requests", time.Now(), 0, attrs))
	require.ErrorIs(t, err, ErrClosed)
}
