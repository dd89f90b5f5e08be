package query

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// blockingQueryable is a store whose selects wait until the query's
// context ends: a stand-in for a slow query.
type blockingQueryable struct {
	selects atomic.Int64
}

func (b *blockingQueryable) Querier(int64, int64) (storage.Querier, error) {
	return blockingQuerier{b}, nil
}

type blockingQuerier struct{ b *blockingQueryable }

func (q blockingQuerier) Select(ctx context.Context, _ bool, _ *storage.SelectHints, _ ...*labels.Matcher) storage.SeriesSet {
	q.b.selects.Add(1)
	<-ctx.Done()
	return storage.ErrSeriesSet(ctx.Err())
}

func (blockingQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (blockingQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (blockingQuerier) Close() error { return nil }

func kindOf(t *testing.T, err error) Kind {
	t.Helper()
	var qe *Error
	require.ErrorAs(t, err, &qe)
	return qe.Kind
}

func TestConcurrencyLimitRefusesBeyondTheQueue(t *testing.T) {
	const maxConcurrent, maxQueued = 2, 3
	bq := &blockingQueryable{}
	cfg := DefaultConfig()
	cfg.MaxConcurrent, cfg.MaxQueued = maxConcurrent, maxQueued
	e, err := New(cfg, bq, zap.NewNop())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, maxConcurrent+maxQueued)
	for range maxConcurrent + maxQueued {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Do(ctx, Request{Query: `up`, Instant: true, Time: time.Now()})
			errs <- err
		}()
	}
	require.Eventually(t, func() bool {
		return e.Running() == maxConcurrent && e.Queued() == maxQueued && bq.selects.Load() == maxConcurrent
	}, 10*time.Second, time.Millisecond, "running %d, queued %d", e.Running(), e.Queued())

	// one more than slots + queue: refused at once, naming the keys
	_, err = e.Do(context.Background(), Request{Query: `up`, Instant: true, Time: time.Now()})
	require.Error(t, err)
	assert.Equal(t, KindOverloaded, kindOf(t, err))
	assert.Contains(t, err.Error(), "query.max_concurrent")
	assert.Contains(t, err.Error(), "query.max_queued (3)")

	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.Equal(t, KindCanceled, kindOf(t, err), "%v", err)
	}
	assert.Zero(t, e.Running())
	assert.Zero(t, e.Queued())
}

func TestQueueWaitIsBoundedByTheDeadline(t *testing.T) {
	bq := &blockingQueryable{}
	cfg := DefaultConfig()
	cfg.MaxConcurrent, cfg.MaxQueued = 1, 1
	e, err := New(cfg, bq, zap.NewNop())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.Do(ctx, Request{Query: `up`, Instant: true, Time: time.Now()})
	}()
	require.Eventually(t, func() bool { return bq.selects.Load() == 1 }, 10*time.Second, time.Millisecond)

	_, err = e.Do(context.Background(), Request{Query: `up`, Instant: true, Time: time.Now(), Timeout: 20 * time.Millisecond})
	require.Error(t, err)
	assert.Equal(t, KindTimeout, kindOf(t, err))
	assert.Contains(t, err.Error(), "for one of the 1 query slots (query.max_concurrent)")
	cancel()
	<-done
}

// denseDB holds n series with a sample every 15 s over span.
func denseDB(t *testing.T, now time.Time, n int, span time.Duration) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (span + time.Hour).Milliseconds()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	app := db.Appender(context.Background())
	refs := make([]storage.SeriesRef, n)
	for ts := now.Add(-span); !ts.After(now); ts = ts.Add(15 * time.Second) {
		for i := range n {
			ls := labels.FromStrings(labels.MetricName, "latency", "pod", fmt.Sprintf("p%d", i))
			refs[i], err = app.Append(refs[i], ls, ts.UnixMilli(), float64(ts.Unix()%97+int64(i)))
			require.NoError(t, err)
		}
	}
	require.NoError(t, app.Commit())
	return db
}

// countingQueryable counts the series iterators the engine opens.
type countingQueryable struct {
	storage.Queryable
	iterators atomic.Int64
}

func (c *countingQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := c.Queryable.Querier(mint, maxt)
	return countingQuerier{Querier: q, c: c}, err
}

type countingQuerier struct {
	storage.Querier
	c *countingQueryable
}

func (q countingQuerier) Select(ctx context.Context, sorted bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &countingSet{SeriesSet: q.Querier.Select(ctx, sorted, hints, ms...), c: q.c}
}

type countingSet struct {
	storage.SeriesSet
	c *countingQueryable
}

func (s *countingSet) At() storage.Series { return countingSeries{Series: s.SeriesSet.At(), c: s.c} }

type countingSeries struct {
	storage.Series
	c *countingQueryable
}

func (s countingSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	s.c.iterators.Add(1)
	return s.Series.Iterator(it)
}

func TestCancelStopsALongEvaluation(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	const series = 100
	cq := &countingQueryable{Queryable: denseDB(t, now, series, 8*time.Hour)}
	e, err := New(DefaultConfig(), cq, zap.NewNop())
	require.NoError(t, err)

	// 100 series x 11,000 steps x a 2h window (480 samples) sorted at
	// every step: about a minute of CPU when left alone
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.Do(ctx, Request{Query: `quantile_over_time(0.99, latency[2h])`, Start: now.Add(-11000 * 2 * time.Second), End: now, Step: 2 * time.Second, NoCache: true})
		done <- err
	}()
	// cancel in the middle of the evaluation: after a few series
	require.Eventually(t, func() bool { return cq.iterators.Load() >= 2 }, time.Minute, time.Millisecond)
	require.Less(t, cq.iterators.Load(), int64(series), "the query must still be running when cancelled")
	cancelled := time.Now()
	cancel()
	var got error
	require.Eventually(t, func() bool {
		select {
		case got = <-done:
			return true
		default:
			return false
		}
	}, 30*time.Second, time.Millisecond, "the query stops when its context is cancelled")
	assert.Equal(t, KindCanceled, kindOf(t, got))
	t.Logf("returned %s after cancel, %d of %d series read", time.Since(cancelled), cq.iterators.Load(), series)
	assert.Less(t, cq.iterators.Load(), int64(series), "evaluation stopped before the last series")
	require.Eventually(t, func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "query.(*Engine).Do")
	}, 10*time.Second, time.Millisecond, "no goroutine evaluates the query any more")
	assert.Zero(t, e.Running())
}

func TestEvaluationTimesOutsideTheEngineRangeAreRefused(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	early := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"instant at 9999-12-31", Request{Query: `vector(1)`, Instant: true, Time: far}, "time: 9999-12-31T00:00:00Z is outside the range a query can be evaluated at, [1677-09-21T00:12:43Z, 2262-04-11T23:47:16Z]"},
		{"range end", Request{Query: `vector(1)`, Start: now, End: far, Step: time.Hour}, "end: 9999-12-31T00:00:00Z is outside"},
		{"range start", Request{Query: `vector(1)`, Start: early, End: now, Step: time.Hour}, "start: 1000-01-01T00:00:00Z is outside"},
		{"negative timeout", Request{Query: `vector(1)`, Instant: true, Time: now, Timeout: -time.Second}, "timeout: -1s is negative"},
		{"negative max samples", Request{Query: `vector(1)`, Instant: true, Time: now, MaxSamples: -1}, "max_samples: -1 is negative"},
		{"negative step", Request{Query: `vector(1)`, Start: now.Add(-time.Hour), End: now, Step: -time.Minute}, "step: -1m0s must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Do(context.Background(), tt.req)
			require.Error(t, err)
			assert.Equal(t, KindBadQuery, kindOf(t, err))
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	// the last representable times still answer with their own timestamp
	last := time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)
	res, err := e.Do(context.Background(), Request{Query: `vector(1)`, Instant: true, Time: last})
	require.NoError(t, err)
	vec := res.Value.(promql.Vector)
	require.Len(t, vec, 1)
	assert.Equal(t, last.UnixMilli(), vec[0].T)
}

func TestEvaluationErrorsAreExecutionErrors(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	_, err := e.Do(context.Background(), Request{Query: `label_replace(requests_total, "path", "x", "", "")`, Instant: true, Time: now})
	require.Error(t, err)
	assert.Equal(t, KindExecution, kindOf(t, err), "a query the engine refuses is the caller's to fix, not an internal error")
	assert.Contains(t, err.Error(), "same labelset")
}
