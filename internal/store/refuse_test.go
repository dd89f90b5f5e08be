package store

import (
	"context"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// kv is an attribute in order (collisions depend on which key comes second).
type kv struct{ k, v string }

// point is one number data point.
type point struct {
	ts    time.Time
	v     float64
	attrs []kv
}

// batch builds pmetric.Metrics; resource has service.name=checkout unless
// res says otherwise.
type batch struct {
	md pmetric.Metrics
	sm pmetric.ScopeMetrics
	rm pmetric.ResourceMetrics
}

func newBatch(res ...kv) *batch {
	b := &batch{md: pmetric.NewMetrics()}
	b.rm = b.md.ResourceMetrics().AppendEmpty()
	if res == nil {
		res = []kv{{"service.name", "checkout"}}
	}
	for _, a := range res {
		b.rm.Resource().Attributes().PutStr(a.k, a.v)
	}
	b.sm = b.rm.ScopeMetrics().AppendEmpty()
	return b
}

func putAttrs(m pcommon.Map, attrs []kv) {
	for _, a := range attrs {
		m.PutStr(a.k, a.v)
	}
}

func (b *batch) gauge(name string, pts ...point) *batch {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	g := m.SetEmptyGauge()
	for _, p := range pts {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(p.ts))
		dp.SetDoubleValue(p.v)
		putAttrs(dp.Attributes(), p.attrs)
	}
	return b
}

func (b *batch) counter(name string, pts ...point) *batch {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, p := range pts {
		dp := s.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(p.ts))
		dp.SetDoubleValue(p.v)
		putAttrs(dp.Attributes(), p.attrs)
	}
	return b
}

func (b *batch) histogram(name string, pts ...point) *batch {
	m := b.sm.Metrics().AppendEmpty()
	m.SetName(name)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, p := range pts {
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(p.ts))
		dp.ExplicitBounds().FromRaw([]float64{1, 2})
		dp.BucketCounts().FromRaw([]uint64{1, 1, 1})
		dp.SetCount(3)
		dp.SetSum(p.v)
		putAttrs(dp.Attributes(), p.attrs)
	}
	return b
}

// totalSamples counts every sample in the store.
func totalSamples(t *testing.T, s *Store) int64 {
	t.Helper()
	_, n, err := s.Count(context.Background(), labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	require.NoError(t, err)
	return n
}

const bad = "bad\xff"

func TestStageRefusesWholeBatch(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	ok := point{ts: now, v: 1, attrs: []kv{{"ok", "yes"}}}
	tests := []struct {
		name   string
		setup  func(*Store) // committed before the refused batch
		batch  func() *batch
		reason Reason
		field  string
		metric string
		msg    string // part of Message
		count  int
	}{
		{
			name:  "2h ago after newer data, 1h out-of-order window",
			setup: func(s *Store) { commit(t, s, newBatch().gauge("fresh", point{ts: now, v: 1})) },
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("late", point{ts: now.Add(-2 * time.Hour), v: 1})
			},
			reason: ReasonTooOld, field: "timestamp", metric: "late", msg: "the store takes samples in [", count: 1,
		},
		{
			name: "20 days ago (retention 15 days)",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("old", point{ts: now.Add(-20 * 24 * time.Hour), v: 1})
			},
			reason: ReasonTooOld, field: "timestamp", metric: "old", count: 1,
		},
		{
			name: "year 1",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("y1", point{ts: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), v: 1})
			},
			reason: ReasonTooOld, field: "timestamp", metric: "y1", count: 1,
		},
		{
			name:   "unix epoch",
			batch:  func() *batch { return newBatch().gauge("valid", ok).gauge("zero", point{ts: time.Unix(0, 0), v: 1}) },
			reason: ReasonTooOld, field: "timestamp", metric: "zero", count: 1,
		},
		{
			name: "an hour ahead",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("ahead", point{ts: now.Add(time.Hour), v: 1})
			},
			reason: ReasonTooNew, field: "timestamp", metric: "ahead", msg: "ahead of the server clock", count: 1,
		},
		{
			name: "two values of one series at one timestamp in the batch",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("dup", point{ts: now, v: 1}, point{ts: now, v: 2})
			},
			reason: ReasonDuplicate, field: "timestamp", metric: "dup", count: 1,
		},
		{
			name:  "another value already stored at that timestamp",
			setup: func(s *Store) { commit(t, s, newBatch().gauge("dup", point{ts: now, v: 1})) },
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("dup", point{ts: now, v: 2})
			},
			reason: ReasonDuplicate, field: "timestamp", metric: "dup", count: 1,
		},
		{
			name: "out-of-order value at a stored in-order timestamp",
			setup: func(s *Store) {
				commit(t, s, newBatch().gauge("dup", point{ts: now.Add(-10 * time.Minute), v: 1}))
				commit(t, s, newBatch().gauge("dup", point{ts: now, v: 1}))
			},
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("dup", point{ts: now.Add(-10 * time.Minute), v: 2})
			},
			reason: ReasonDuplicate, field: "timestamp", metric: "dup", msg: "already has another value", count: 1,
		},
		{
			name: "out-of-order value at a stored out-of-order timestamp",
			setup: func(s *Store) {
				commit(t, s, newBatch().gauge("dup", point{ts: now, v: 1}))
				commit(t, s, newBatch().gauge("dup", point{ts: now.Add(-10 * time.Minute), v: 1}))
			},
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("dup", point{ts: now.Add(-10 * time.Minute), v: 2})
			},
			reason: ReasonDuplicate, field: "timestamp", metric: "dup", msg: "already has another value", count: 1,
		},
		{
			name: "out-of-order value at a timestamp staged earlier in the batch",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("dup",
					point{ts: now.Add(-time.Second), v: 1}, point{ts: now, v: 1}, point{ts: now.Add(-time.Second), v: 2})
			},
			reason: ReasonDuplicate, field: "timestamp", metric: "dup", count: 1,
		},
		{
			name:  "coll.ide after coll_ide",
			setup: func(s *Store) { commit(t, s, newBatch().gauge("coll_ide", point{ts: now, v: 1})) },
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("coll.ide", point{ts: now.Add(time.Second), v: 2})
			},
			reason: ReasonNameCollision, field: "name", metric: "coll.ide", msg: `metric "coll_ide" (gauge)`, count: 1,
		},
		{
			name: "coll.ide and coll_ide in one batch",
			batch: func() *batch {
				return newBatch().gauge("coll.ide", point{ts: now, v: 1}).gauge("coll_ide", point{ts: now, v: 2})
			},
			reason: ReasonNameCollision, field: "name", metric: "coll_ide", msg: `metric "coll.ide" (gauge)`, count: 1,
		},
		{
			name:  "gauge collx_total after counter collx",
			setup: func(s *Store) { commit(t, s, newBatch().counter("collx", point{ts: now, v: 1})) },
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("collx_total", point{ts: now, v: 5})
			},
			reason: ReasonNameCollision, field: "name", metric: "collx_total", msg: `"collx_total", which metric "collx" (counter)`, count: 1,
		},
		{
			name:  "gauge req_count after histogram req",
			setup: func(s *Store) { commit(t, s, newBatch().histogram("req", point{ts: now, v: 1})) },
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("req_count", point{ts: now, v: 5})
			},
			reason: ReasonNameCollision, field: "name", metric: "req_count", msg: `metric "req" (histogram)`, count: 1,
		},
		{
			name:   "gauge target.info",
			batch:  func() *batch { return newBatch().gauge("valid", ok).gauge("target.info", point{ts: now, v: 1}) },
			reason: ReasonNameCollision, field: "name", metric: "target.info", msg: "resource attributes", count: 1,
		},
		{
			name: "keys a.b and a_b on one point",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("lc", point{ts: now, v: 1, attrs: []kv{{"a.b", "one"}, {"a_b", "two"}}})
			},
			reason: ReasonLabelCollision, field: `attributes["a_b"]`, metric: "lc", msg: `"a.b" (attributes["a.b"]) and "a_b"`, count: 1,
		},
		{
			name: "point attribute job with resource service.name",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("lc", point{ts: now, v: 1, attrs: []kv{{"job", "x"}}})
			},
			reason: ReasonLabelCollision, field: `attributes["job"]`, metric: "lc", msg: `resource.attributes["service.name"]`, count: 1,
		},
		{
			name: "point attribute le on a histogram",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).histogram("lh", point{ts: now, v: 1, attrs: []kv{{"le", "x"}}})
			},
			reason: ReasonLabelCollision, field: `attributes["le"]`, metric: "lh", msg: "bucket bounds", count: 5,
		},
		{
			name: "resource attributes k.a and k_a (target_info)",
			batch: func() *batch {
				return newBatch(kv{"service.name", "x"}, kv{"k.a", "1"}, kv{"k_a", "2"}).gauge("valid", ok)
			},
			reason: ReasonLabelCollision, field: `resource.attributes["k_a"]`, metric: "valid", count: 1,
		},
		{
			name: "empty attribute key",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("ek", point{ts: now, v: 1, attrs: []kv{{"", "x"}}})
			},
			reason: ReasonInvalid, field: `attributes[""]`, metric: "ek", count: 1,
		},
		{
			name:   "invalid UTF-8 metric name",
			batch:  func() *batch { return newBatch().gauge("valid", ok).gauge(bad, point{ts: now, v: 1}) },
			reason: ReasonInvalidUTF8, field: "name", metric: bad, count: 1,
		},
		{
			name: "invalid UTF-8 unit",
			batch: func() *batch {
				b := newBatch().gauge("valid", ok).gauge("u", point{ts: now, v: 1})
				b.sm.Metrics().At(1).SetUnit(bad)
				return b
			},
			reason: ReasonInvalidUTF8, field: "unit", metric: "u", count: 1,
		},
		{
			name: "invalid UTF-8 description",
			batch: func() *batch {
				b := newBatch().gauge("valid", ok).gauge("d", point{ts: now, v: 1})
				b.sm.Metrics().At(1).SetDescription(bad)
				return b
			},
			reason: ReasonInvalidUTF8, field: "description", metric: "d", count: 1,
		},
		{
			name: "invalid UTF-8 attribute key",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("ak", point{ts: now, v: 1, attrs: []kv{{bad, "x"}}})
			},
			reason: ReasonInvalidUTF8, field: `attributes["bad\xff"]`, metric: "ak", count: 1,
		},
		{
			name: "invalid UTF-8 attribute value",
			batch: func() *batch {
				return newBatch().gauge("valid", ok).gauge("av", point{ts: now, v: 1, attrs: []kv{{"k", bad}}})
			},
			reason: ReasonInvalidUTF8, field: `attributes["k"]`, metric: "av", count: 1,
		},
		{
			name:   "invalid UTF-8 resource attribute value",
			batch:  func() *batch { return newBatch(kv{"service.name", bad}).gauge("valid", ok) },
			reason: ReasonInvalidUTF8, field: `resource.attributes["service.name"]`, metric: "valid", count: 1,
		},
		{
			name:   "invalid UTF-8 resource attribute key",
			batch:  func() *batch { return newBatch(kv{"service.name", "x"}, kv{bad, "v"}).gauge("valid", ok) },
			reason: ReasonInvalidUTF8, field: `resource.attributes["bad\xff"]`, metric: "valid", count: 1,
		},
		{
			name: "invalid UTF-8 scope name",
			batch: func() *batch {
				b := newBatch().gauge("valid", ok)
				b.sm.Scope().SetName(bad)
				return b
			},
			reason: ReasonInvalidUTF8, field: "scope.name", metric: "valid", count: 1,
		},
		{
			name: "invalid UTF-8 scope attribute",
			batch: func() *batch {
				b := newBatch().gauge("valid", ok)
				b.sm.Scope().Attributes().PutStr("k", bad)
				return b
			},
			reason: ReasonInvalidUTF8, field: `scope.attributes["k"]`, metric: "valid", count: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), nil)
			defer func() { require.NoError(t, s.Close()) }()
			if tt.setup != nil {
				tt.setup(s)
			}
			before := totalSamples(t, s)
			rejected := s.Rejected()

			txn, err := s.Stage(context.Background(), tt.batch().md)
			require.Nil(t, txn)
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tt.reason, re.Reason)
			assert.Equal(t, tt.field, re.Field)
			assert.Equal(t, tt.metric, re.Metric)
			assert.Contains(t, re.Message, tt.msg)
			assert.NotEmpty(t, re.Fix)
			assert.Equal(t, tt.count, re.Count)
			assert.Equal(t, rejected+int64(tt.count), s.Rejected(), "refusals are counted")
			assert.Equal(t, before, totalSamples(t, s), "nothing of a refused batch is stored")
			assert.Empty(t, samples(t, s, "valid", now.Add(-time.Hour), now.Add(time.Hour)))
		})
	}
}

func commit(t *testing.T, s *Store, b *batch) {
	t.Helper()
	require.NoError(t, stage(t, s, b.md).Commit())
}

func TestWindowRefusalNamesTheWindowAndTheSetting(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now()
	commit(t, s, newBatch().gauge("fresh", point{ts: now, v: 1}))
	oldest, newest := s.Window(time.Now())
	assert.WithinDuration(t, now.Add(-time.Hour), oldest, time.Second, "head max time minus the out-of-order window")
	assert.WithinDuration(t, now.Add(10*time.Minute), newest, time.Second, "now + max_future")

	_, err := s.Stage(context.Background(), newBatch().gauge("late", point{ts: now.Add(-2 * time.Hour), v: 1}).md)
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Message, oldest.Format(time.RFC3339Nano))
	assert.Contains(t, re.Fix, "store.out_of_order_window")
	assert.Contains(t, err.Error(), "too_old")
}

func TestWindowOfEmptyStoreIsRetention(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *Config) { c.MaxFuture = 0 })
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now()
	oldest, newest := s.Window(now)
	assert.WithinDuration(t, now.Add(-15*24*time.Hour), oldest, time.Millisecond)
	assert.WithinDuration(t, now, newest, time.Millisecond)
}

func TestValidBatchIsStoredWhole(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	require.NoError(t, stage(t, s, benchBatch(0, 0, start)).Commit())
	require.NoError(t, stage(t, s, benchBatch(0, 1, start)).Commit())
	assert.Equal(t, int64(2*benchSamplesPerBatch), totalSamples(t, s))

	// out of order within the window, an identical duplicate, in-batch disorder
	now := time.Now().Truncate(time.Millisecond)
	commit(t, s, newBatch().gauge("g", point{ts: now, v: 1}))
	commit(t, s, newBatch().gauge("g",
		point{ts: now.Add(-30 * time.Minute), v: 2},
		point{ts: now, v: 1},
		point{ts: now.Add(-40 * time.Minute), v: 3},
		point{ts: now.Add(-40 * time.Minute), v: 3}))
	commit(t, s, newBatch().gauge("g", point{ts: now.Add(-40 * time.Minute), v: 3}))
	got := samples(t, s, "g", now.Add(-time.Hour), now.Add(time.Minute))
	require.Len(t, got, 1, "an identical out-of-order resend is fine")
	for _, vs := range got {
		assert.Equal(t, []float64{3, 2, 1}, vs)
	}
	assert.Zero(t, s.Rejected())
}

func TestCheckMetric(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now()
	commit(t, s, newBatch().gauge("coll.ide", point{ts: now, v: 1}).counter("collx", point{ts: now, v: 1}))
	keys := func(k ...string) iter.Seq[string] { return slices.Values(k) }
	tests := []struct {
		name      string
		metric    string
		typ       pmetric.MetricType
		monotonic bool
		keys      []string
		reason    Reason
		field     string
	}{
		{name: "same metric again", metric: "coll.ide", typ: pmetric.MetricTypeGauge, keys: []string{"a", "b.c"}},
		{name: "other name, same stored name", metric: "coll_ide", typ: pmetric.MetricTypeGauge, reason: ReasonNameCollision, field: "name"},
		{name: "same name, other type", metric: "coll.ide", typ: pmetric.MetricTypeHistogram, reason: ReasonNameCollision, field: "name"},
		{name: "gauge named like a counter", metric: "collx_total", typ: pmetric.MetricTypeGauge, reason: ReasonNameCollision, field: "name"},
		{name: "keys collide", metric: "fresh", typ: pmetric.MetricTypeGauge, keys: []string{"a.b", "a_b"}, reason: ReasonLabelCollision, field: `attributes["a_b"]`},
		{name: "key le of a histogram", metric: "h", typ: pmetric.MetricTypeHistogram, keys: []string{"le"}, reason: ReasonLabelCollision, field: `attributes["le"]`},
		{name: "invalid UTF-8 key", metric: "fresh", typ: pmetric.MetricTypeGauge, keys: []string{bad}, reason: ReasonInvalidUTF8, field: `attributes["bad\xff"]`},
		{name: "invalid UTF-8 name", metric: bad, typ: pmetric.MetricTypeGauge, reason: ReasonInvalidUTF8, field: "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.CheckMetric(tt.metric, "", tt.typ, pmetric.AggregationTemporalityCumulative, tt.monotonic, keys(tt.keys...))
			if tt.reason == "" {
				assert.Nil(t, r)
				return
			}
			require.NotNil(t, r)
			assert.Equal(t, tt.reason, r.Reason)
			assert.Equal(t, tt.field, r.Field)
			assert.Equal(t, tt.metric, r.Metric)
		})
	}
	assert.Nil(t, s.CheckMetric("fresh", "", pmetric.MetricTypeGauge, pmetric.AggregationTemporalityUnspecified, false, nil), "CheckMetric claims nothing")
	assert.Nil(t, s.CheckMetric("fresh", "", pmetric.MetricTypeGauge, pmetric.AggregationTemporalityUnspecified, false, nil))
}

func TestCanonicalLabelMatchesTranslator(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	lc := newLabelChecker(s)
	for _, k := range []string{"a", "a_b", "_a", "A9", "a.b", "a__b", "9a", "a-b", "a_", "__x__"} {
		lc.reset()
		lc.add(k, "attributes")
		lc.slow = true // compare with the translator's namer
		require.Nil(t, lc.finish("m", extraLabels{}, resourceLabels{}), k)
		if canonicalLabel(k) {
			assert.Equal(t, k, lc.names[0], "a canonical key is kept as is: %q", k)
		}
	}
}

func TestInBatchDisorderIsRefusedWithoutOutOfOrderWindow(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *Config) { c.OutOfOrderWindow = 0 })
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now().Truncate(time.Millisecond)
	_, err := s.Stage(context.Background(), newBatch().gauge("g", point{ts: now, v: 1}, point{ts: now.Add(-time.Second), v: 2}).md)
	var re *RefusedError
	require.ErrorAs(t, err, &re, "Commit would drop the older point silently")
	assert.Equal(t, ReasonTooOld, re.Reason)
	assert.Contains(t, re.Message, "older than another point of the same series in the batch")
	assert.Zero(t, totalSamples(t, s))
}

func TestConcurrentBatchesCannotBothClaimAName(t *testing.T) {
	for i := range 20 {
		s := openStore(t, t.TempDir(), nil)
		now := time.Now()
		names := []string{"coll.ide", "coll_ide"}
		errs := make(chan error, 2)
		for _, n := range names {
			go func() {
				txn, err := s.Stage(context.Background(), newBatch().gauge(n, point{ts: now, v: float64(i)}).md)
				if err == nil {
					err = txn.Commit()
				}
				errs <- err
			}()
		}
		refused := 0
		for range names {
			if err := <-errs; err != nil {
				var re *RefusedError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, ReasonNameCollision, re.Reason)
				refused++
			}
		}
		assert.Equal(t, 1, refused, "exactly one of two colliding batches is stored")
		require.NoError(t, s.Close())
	}
}

func TestWindowMirrorsTheHead(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	for _, tt := range []struct {
		name   string
		ooo    time.Duration
		oldest time.Duration // behind the newest sample
	}{
		{"out-of-order off: half a block", 0, time.Hour},
		{"short out-of-order window: in-order bound is older", 10 * time.Minute, time.Hour},
		{"long out-of-order window", 3 * time.Hour, 3 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), func(c *Config) { c.OutOfOrderWindow = tt.ooo })
			defer func() { require.NoError(t, s.Close()) }()
			commit(t, s, newBatch().gauge("a", point{ts: now, v: 1}))
			oldest, _ := s.Window(time.Now())
			assert.Equal(t, now.Add(-tt.oldest).UTC(), oldest)
			// a new series at the oldest bound is stored; one ms before is refused
			commit(t, s, newBatch().gauge("b", point{ts: oldest, v: 1}))
			_, err := s.Stage(context.Background(), newBatch().gauge("c", point{ts: oldest.Add(-time.Millisecond), v: 1}).md)
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, ReasonTooOld, re.Reason)
		})
	}
}

// A pass of CheckMetric can turn into a collision once another metric
// claims the name: ClaimsGeneration changes with every new claim (and only
// then), and survives a restart's reload.
func TestClaimsGenerationChangesWithNewClaims(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	now := time.Now()
	check := func(metric string) *RefusedError {
		return s.CheckMetric(metric, "", pmetric.MetricTypeGauge, pmetric.AggregationTemporalityCumulative, false, nil)
	}
	g0 := s.ClaimsGeneration()
	require.Nil(t, check("coll_ide"), "nothing claimed yet")
	commit(t, s, newBatch().gauge("coll.ide", point{ts: now, v: 1}))
	g1 := s.ClaimsGeneration()
	require.NotEqual(t, g0, g1, "a new claim")
	require.NotNil(t, check("coll_ide"), "the pass before the claim no longer holds")
	commit(t, s, newBatch().gauge("coll.ide", point{ts: now.Add(time.Second), v: 2}))
	require.Equal(t, g1, s.ClaimsGeneration(), "the same metric again claims nothing")
	require.NoError(t, s.Close())

	s = openStore(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	require.NotNil(t, check("coll_ide"), "claims reloaded")
}
