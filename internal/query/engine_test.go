package query

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// testDB holds `requests_total{path="/pN"}` counters (10 series, +N per
// minute) and a gauge over the last 2 hours at 15 s resolution.
func testDB(t *testing.T, now time.Time) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (3 * time.Hour).Milliseconds()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	start := now.Add(-2 * time.Hour)
	for ts := start; !ts.After(now); ts = ts.Add(15 * time.Second) {
		mins := ts.Sub(start).Minutes()
		for i := range 10 {
			ls := labels.FromStrings(labels.MetricName, "requests_total", "path", fmt.Sprintf("/p%d", i))
			_, err := app.Append(0, ls, ts.UnixMilli(), mins*float64(i+1))
			require.NoError(t, err)
		}
		_, err := app.Append(0, labels.FromStrings(labels.MetricName, "temperature"), ts.UnixMilli(), 20+mins/60)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	return db
}

func newEngine(t *testing.T, db *tsdb.DB, mutate func(*Config)) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	e, err := New(cfg, db, zap.NewNop())
	require.NoError(t, err)
	return e
}

func TestInstantAndRangeQueries(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	ctx := context.Background()

	res, err := e.Do(ctx, Request{Query: `sum(rate(requests_total[5m]))`, Instant: true, Time: now})
	require.NoError(t, err)
	vec := res.Value.(promql.Vector)
	require.Len(t, vec, 1)
	assert.InDelta(t, 55.0/60, vec[0].F, 1e-9, "sum over paths of (i+1)/60 per second")
	assert.Positive(t, res.Stats.SamplesRead)

	res, err = e.Do(ctx, Request{Query: `requests_total{path="/p0"}`, Start: now.Add(-time.Hour), End: now, Step: time.Minute})
	require.NoError(t, err)
	mat := res.Value.(promql.Matrix)
	require.Len(t, mat, 1)
	assert.Len(t, mat[0].Floats, 61)

	res, err = e.Do(ctx, Request{Query: `1 + 2`, Instant: true, Time: now})
	require.NoError(t, err)
	assert.InDelta(t, 3.0, res.Value.(promql.Scalar).V, 0)
}

func TestErrorsAreClassified(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	ctx := context.Background()
	kind := func(err error) Kind {
		var qe *Error
		require.True(t, errors.As(err, &qe), "%v", err)
		return qe.Kind
	}

	_, err := e.Do(ctx, Request{Query: `sum(rate(requests_total[5m])`, Instant: true, Time: now})
	assert.Equal(t, KindBadQuery, kind(err))
	assert.Contains(t, err.Error(), "1:29", "the parser's position is in the message")

	_, err = e.Do(ctx, Request{Query: `requests_total`, Start: now, End: now.Add(-time.Hour), Step: time.Minute})
	assert.Equal(t, KindBadQuery, kind(err))

	_, err = e.Do(ctx, Request{Query: `requests_total`, Start: now.Add(-2 * time.Hour), End: now, Step: time.Minute, MaxSamples: 100})
	assert.Equal(t, KindTooLarge, kind(err))

	_, err = e.Do(ctx, Request{Query: `requests_total`, Instant: true, Time: now, MaxSeries: 3})
	assert.Equal(t, KindTooLarge, kind(err))
	assert.Contains(t, err.Error(), "10 series, the limit is 3")

	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err = e.Do(expired, Request{Query: `count_over_time(requests_total[1h:15s])`, Start: now.Add(-2 * time.Hour), End: now, Step: 15 * time.Second})
	assert.Contains(t, []Kind{KindTimeout, KindCanceled}, kind(err))

	_, err = e.Do(ctx, Request{Query: `count_over_time(requests_total[2h:1s])`, Start: now.Add(-2 * time.Hour), End: now, Step: 15 * time.Second, Timeout: time.Microsecond, NoCache: true})
	assert.Equal(t, KindTimeout, kind(err))
}

func TestResultsCache(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	db := testDB(t, now)
	cached := newEngine(t, db, func(c *Config) { c.Cache.MaxFreshness = 0 })
	plain := newEngine(t, db, func(c *Config) { c.Cache.Enabled = false })
	ctx := context.Background()
	q := `sum by (path) (rate(requests_total[5m]))`
	req := Request{Query: q, Start: now.Add(-90 * time.Minute), End: now.Add(-30 * time.Minute), Step: time.Minute}

	first, err := cached.Do(ctx, req)
	require.NoError(t, err)
	assert.False(t, first.Stats.CacheHit)
	second, err := cached.Do(ctx, req)
	require.NoError(t, err)
	assert.True(t, second.Stats.CacheHit)
	assert.Zero(t, second.Stats.SamplesRead, "a fully cached range reads nothing")
	assert.Equal(t, first.Value, second.Value)

	// a later, overlapping range evaluates only the new steps
	later := req
	later.Start, later.End = now.Add(-60*time.Minute), now
	got, err := cached.Do(ctx, later)
	require.NoError(t, err)
	assert.True(t, got.Stats.CacheHit)
	want, err := plain.Do(ctx, later)
	require.NoError(t, err)
	assert.Equal(t, want.Value, got.Value, "cached + new steps equal an uncached evaluation")
	assert.Less(t, got.Stats.SamplesRead, want.Stats.SamplesRead)

	// unaligned requests bypass the cache
	odd := req
	odd.Start = odd.Start.Add(7 * time.Second)
	r, err := cached.Do(ctx, odd)
	require.NoError(t, err)
	assert.False(t, r.Stats.CacheHit)

	entries, bytes := cached.CacheStats()
	assert.Equal(t, 1, entries)
	assert.Positive(t, bytes)
}

func TestCacheRespectsFreshnessAndMemory(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	db := testDB(t, now)
	e := newEngine(t, db, func(c *Config) { c.Cache.MaxFreshness = time.Hour })
	ctx := context.Background()
	req := Request{Query: `temperature`, Start: now.Add(-30 * time.Minute), End: now, Step: time.Minute}
	_, err := e.Do(ctx, req)
	require.NoError(t, err)
	r, err := e.Do(ctx, req)
	require.NoError(t, err)
	assert.False(t, r.Stats.CacheHit, "steps newer than now-max_freshness are never cached")

	small := newEngine(t, db, func(c *Config) { c.Cache.MaxFreshness = 0; c.Cache.MaxBytes = 4096 })
	for i := range 5 {
		_, err := small.Do(ctx, Request{Query: fmt.Sprintf(`requests_total{path="/p%d"}`, i), Start: now.Add(-time.Hour), End: now.Add(-10 * time.Minute), Step: time.Minute})
		require.NoError(t, err)
	}
	_, bytes := small.CacheStats()
	assert.LessOrEqual(t, bytes, int64(4096))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Timeout = 0 }, "timeout: must be positive"},
		{func(c *Config) { c.MaxSamples = 0 }, "max_samples: must be positive"},
		{func(c *Config) { c.Cache.MaxBytes = 0 }, "cache.max_bytes"},
		{func(c *Config) { c.Remote.Endpoint = "prometheus:9090" }, `remote.endpoint: "prometheus:9090" is not an http(s) URL`},
		{func(c *Config) { c.MaxRangeSteps = 0 }, "max_range_steps: must be positive"},
		{func(c *Config) { c.MaxSubquerySteps = -1 }, "max_subquery_steps: must be positive"},
		{func(c *Config) { c.MaxSubqueryPoints = 0 }, "max_subquery_points: must be positive"},
		{func(c *Config) { c.MaxConcurrent = 0 }, "max_concurrent: must be positive"},
		{func(c *Config) { c.MaxQueued = -1 }, "max_queued: must not be negative"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.mutate(&c)
		assert.ErrorContains(t, c.Validate(), tt.want)
	}
}

func TestCacheInvalidatedByLateSamples(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	db := testDB(t, now)
	e := newEngine(t, db, func(c *Config) { c.Cache.MaxFreshness = 0 })
	ctx := context.Background()
	req := Request{Query: `sum(temperature)`, Start: now.Add(-60 * time.Minute), End: now.Add(-10 * time.Minute), Step: time.Minute}
	before, err := e.Do(ctx, req)
	require.NoError(t, err)

	// a late sample changes a step in the middle of the cached range
	app := db.Appender(ctx)
	late := now.Add(-30*time.Minute - 5*time.Second)
	_, err = app.Append(0, labels.FromStrings(labels.MetricName, "temperature", "sensor", "late"), late.UnixMilli(), 1000)
	require.NoError(t, err)
	require.NoError(t, app.Commit())

	stale, err := e.Do(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, before.Value, stale.Value, "without invalidation the cache still answers the old value")

	e.InvalidateFrom(late)
	fresh, err := e.Do(ctx, req)
	require.NoError(t, err)
	assert.True(t, fresh.Stats.CacheHit, "the steps before the late sample stay cached")
	want, err := newEngine(t, db, func(c *Config) { c.Cache.Enabled = false }).Do(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, want.Value, fresh.Value)
	assert.NotEqual(t, before.Value, fresh.Value)
}

func TestGovernanceKeysUnmarshal(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"max_range_steps": 5000, "max_subquery_steps": 10, "max_subquery_points": 100, "max_concurrent": 3, "max_queued": 0,
	}).Unmarshal(&cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, int64(5000), cfg.MaxRangeSteps)
	assert.Equal(t, int64(10), cfg.MaxSubquerySteps)
	assert.Equal(t, int64(100), cfg.MaxSubqueryPoints)
	assert.Equal(t, 3, cfg.MaxConcurrent)
	assert.Equal(t, 0, cfg.MaxQueued)
	assert.GreaterOrEqual(t, DefaultConfig().MaxConcurrent, 1)
}
