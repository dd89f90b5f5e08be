package store

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

func openStore(t *testing.T, dir string, mutate func(*Config)) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Path = dir
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := Open(cfg, zap.NewNop())
	require.NoError(t, err)
	return s
}

// counterBatch is one cumulative counter point per (ts, value).
func counterBatch(name string, ts time.Time, v float64, attrs map[string]string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts.Add(-time.Hour)))
	dp.SetDoubleValue(v)
	for k, val := range attrs {
		dp.Attributes().PutStr(k, val)
	}
	return md
}

func stage(t *testing.T, s *Store, md pmetric.Metrics) *Txn {
	t.Helper()
	txn, err := s.Stage(context.Background(), md)
	require.NoError(t, err)
	return txn
}

// samples returns the float samples of the series matching name.
func samples(t *testing.T, s *Store, name string, from, to time.Time) map[string][]float64 {
	t.Helper()
	q, err := s.Queryable().Querier(from.UnixMilli(), to.UnixMilli())
	require.NoError(t, err)
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
	out := map[string][]float64{}
	for set.Next() {
		ser := set.At()
		it := ser.Iterator(nil)
		for it.Next() != 0 {
			_, v := it.At()
			out[ser.Labels().String()] = append(out[ser.Labels().String()], v)
		}
	}
	require.NoError(t, set.Err())
	return out
}

func TestStageCommitAndRollback(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now().Truncate(time.Second)

	require.NoError(t, stage(t, s, counterBatch("http.requests", now, 3, map[string]string{"method": "GET"})).Commit())
	stage(t, s, counterBatch("http.requests", now.Add(time.Second), 5, map[string]string{"method": "GET"})).Rollback()

	got := samples(t, s, "http_requests_total", now.Add(-time.Minute), now.Add(time.Minute))
	require.Len(t, got, 1, "OTel name translated with Prometheus conventions")
	for ls, vs := range got {
		assert.Equal(t, []float64{3}, vs, "a rolled back batch is not visible")
		assert.Contains(t, ls, `job="checkout"`, "service.name becomes job")
	}
	md, ok := s.MetadataOf("http_requests_total")
	require.True(t, ok)
	assert.Equal(t, "counter", string(md.Type))
	assert.Positive(t, s.Stats().Total(), "committed samples are counted")
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	s := openStore(t, dir, nil)
	for i := range 10 {
		require.NoError(t, stage(t, s, counterBatch("jobs", now.Add(time.Duration(i)*time.Second), float64(i), nil)).Commit())
	}
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "close is idempotent")

	s = openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	got := samples(t, s, "jobs_total", now.Add(-time.Minute), now.Add(time.Minute))
	require.Len(t, got, 1)
	for _, vs := range got {
		assert.Equal(t, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, vs, "WAL replay restores every sample")
	}
	md, ok := s.MetadataOf("jobs_total")
	require.True(t, ok, "metadata is restored")
	assert.Equal(t, "counter", string(md.Type))
}

func TestOutOfOrderSampleIsRefusedWithoutWindow(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *Config) { c.OutOfOrderWindow = 0 })
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now().Truncate(time.Second)
	require.NoError(t, stage(t, s, counterBatch("late", now, 5, nil)).Commit())
	_, err := s.Stage(context.Background(), counterBatch("late", now.Add(-time.Minute), 4, nil))
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, ReasonTooOld, re.Reason)
	assert.Contains(t, re.Fix, "store.out_of_order_window")
	assert.Equal(t, int64(1), s.Rejected())
}

func TestRetentionDeletesOldBlocks(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, func(c *Config) { c.Retention = 24 * time.Hour })
	start := time.Now().Add(-12 * time.Hour).Truncate(time.Hour)
	for i := 0; i < 12*60; i++ {
		ts := start.Add(time.Duration(i) * time.Minute)
		require.NoError(t, stage(t, s, counterBatch("ticks", ts, float64(i), nil)).Commit())
	}
	require.NoError(t, s.Close())
	s = openStore(t, dir, func(c *Config) { c.Retention = time.Hour })
	defer func() { require.NoError(t, s.Close()) }()
	require.NoError(t, s.db.Compact(context.Background()))
	old := samples(t, s, "ticks_total", start, start.Add(2*time.Hour))
	assert.Empty(t, old, "samples older than the retention are deleted with their blocks")
	recent := samples(t, s, "ticks_total", start.Add(11*time.Hour), start.Add(12*time.Hour))
	assert.NotEmpty(t, recent)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Path = "" }, "path: must be set"},
		{func(c *Config) { c.Retention = 0 }, "retention: must be positive"},
		{func(c *Config) { c.RetentionSize = -1 }, "retention_size: must not be negative"},
		{func(c *Config) { c.MaxFuture = -time.Second }, "max_future: must not be negative"},
		{func(c *Config) { c.Histograms = "both" }, `histograms: "both" is not one of classic, native`},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mutate(&c)
		assert.ErrorContains(t, c.Validate(), tt.want)
	}
	c := DefaultConfig()
	assert.NoError(t, c.Validate())
}

func TestIngestStatsRatesAndTrend(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)
	st := NewIngestStats(func() time.Time { return now })
	st.started = now.Add(-time.Hour)
	for m := 0; m < 30; m++ {
		now = time.Date(2026, 1, 1, 11, 31+m, 0, 0, time.UTC)
		n := 60
		if m >= 15 {
			n = 120
		}
		st.Add(map[string]int{"a": n}, n)
	}
	now = time.Date(2026, 1, 1, 12, 0, 59, 0, time.UTC)
	r := st.Rate(5 * time.Minute)
	assert.InDelta(t, 2.0, r, 0.5, "120 samples a minute is 2/s")
	cur, before, _, _ := st.Trend(15 * time.Minute)
	assert.Greater(t, cur, before)
	assert.False(t, math.IsNaN(cur))
	assert.Equal(t, "a", st.FamilyRates(5 * time.Minute)[0].Family)
}

func TestStatusViewReportsHeadBlocksAndDisk(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()

	empty := s.HeadStats(0)
	assert.Zero(t, empty.NumSeries)
	assert.Empty(t, s.Blocks(), "a fresh store has no persisted blocks")
	assert.Equal(t, dir, s.Dir())

	now := time.Now().Truncate(time.Second)
	for _, m := range []string{"GET", "PUT", "POST"} {
		require.NoError(t, stage(t, s, counterBatch("http.requests", now, 1, map[string]string{"method": m})).Commit())
	}
	require.NoError(t, stage(t, s, counterBatch("jobs", now, 1, nil)).Commit())

	hs := s.HeadStats(10)
	assert.Equal(t, uint64(4), hs.NumSeries)
	assert.Equal(t, now.UnixMilli(), hs.MinTime)
	assert.Equal(t, now.UnixMilli(), hs.MaxTime)
	require.NotEmpty(t, hs.SeriesPerMetric)
	assert.Equal(t, NameCount{Name: "http_requests_total", Count: 3}, hs.SeriesPerMetric[0], "highest series count first")
	assert.Contains(t, hs.LabelValues, NameCount{Name: "method", Count: 3})

	top1 := s.HeadStats(1)
	assert.Len(t, top1.SeriesPerMetric, 1, "the limit bounds the top-N lists")
	cheap := s.HeadStats(0)
	assert.Equal(t, uint64(4), cheap.NumSeries)
	assert.Nil(t, cheap.SeriesPerMetric, "limit 0 skips the postings walk")

	assert.Positive(t, s.DiskBytes(), "the WAL is on disk")
}
