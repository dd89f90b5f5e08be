package store

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
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

// BenchmarkLastSample is the cost of one counter series' resume lookup (a
// series creation after a restart, or of a series the store does not have)
// in a store of 10,000 counter series with 100 samples each in the head:
//
//	go test ./internal/store -run '^$' -bench LastSample -benchmem
func BenchmarkLastSample(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Path = b.TempDir()
	s, err := Open(cfg, zap.NewNop())
	require.NoError(b, err)
	defer s.Close()
	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Millisecond)
	const nSeries = 10_000
	for step := range 100 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "bench")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("bench.requests")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for i := range nSeries {
			dp := sum.DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(step) * 15 * time.Second)))
			dp.SetDoubleValue(float64(step))
			dp.Attributes().PutStr("id", strconv.Itoa(i))
		}
		txn, err := s.Stage(context.Background(), md)
		require.NoError(b, err)
		require.NoError(b, txn.Commit())
	}
	for _, tc := range []struct {
		name   string
		offset int
	}{{"stored", 0}, {"new series", nSeries}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				md := counterBatch("bench.requests", time.Now(), 0, map[string]string{"id": strconv.Itoa(tc.offset + i%nSeries)})
				md.ResourceMetrics().At(0).Resource().Attributes().PutStr("service.name", "bench")
				smp, ok, err := s.LastSample(context.Background(), md)
				if err != nil || ok != (tc.offset == 0) || (ok && smp.Value != 99) {
					b.Fatalf("got %v %v %v", smp, ok, err)
				}
				i++
			}
		})
	}
}
