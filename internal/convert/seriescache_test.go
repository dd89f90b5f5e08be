package convert

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// rawOf encodes labels as MetricData field 4 entries, in the given order
// (duplicates kept), as a client sends them.
func rawOf(labels [][2]string) []byte {
	out := []byte{}
	for _, l := range labels {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, l[0])
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, l[1])
		out = protowire.AppendTag(out, 4, protowire.BytesType)
		out = protowire.AppendBytes(out, e)
	}
	return out
}

// testValidator is a CachingValidator: label b may not be "forbidden",
// gauge g gets the default label zone=z1, values above 1e6 are refused.
type testValidator struct {
	token     int
	forbidden string
	validates int
}

func (v *testValidator) Validate(m *pb.MetricData) *Issue {
	v.validates++
	if m.Name == "g" {
		if _, ok := m.Labels["zone"]; !ok {
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels["zone"] = "z1"
		}
	}
	if m.Labels["b"] == v.forbidden {
		return invalid(`.labels["b"]`, "schema_value_not_allowed", "b is "+v.forbidden, "send another value")
	}
	return v.ValidateValues(m)
}

func (v *testValidator) ValidateValues(m *pb.MetricData) *Issue {
	if m.Value > 1e6 {
		return invalid(".value", "schema_above_max", fmt.Sprintf("value %v is above 1e6", m.Value), "send less")
	}
	return nil
}

func (v *testValidator) AllowsNaN(name string) bool { return name == "nan_ok" }

func (v *testValidator) DefinitionsToken() any { return v.token }

// testAdmitter is a SeriesAdmitter: points older than oldest are refused,
// and series whose name is in refused, or with a label named "path" and
// unit "s" (a collision that depends on the unit).
type testAdmitter struct {
	gen            uint64
	oldest         int64
	refused        map[string]bool
	points, series int
}

func (ad *testAdmitter) Admit(m *pb.MetricData, names iter.Seq[string], ts int64) *Issue {
	if iss := ad.AdmitPoint(m, ts); iss != nil {
		return iss
	}
	return ad.AdmitSeries(m, names)
}

func (ad *testAdmitter) AdmitPoint(_ *pb.MetricData, ts int64) *Issue {
	ad.points++
	if ts < ad.oldest {
		return &Issue{Field: ".timestamp", Code: "outside_store_window", Kind: KindOutOfRange, Message: "too old", Suggestion: "send newer"}
	}
	return nil
}

func (ad *testAdmitter) AdmitSeries(m *pb.MetricData, names iter.Seq[string]) *Issue {
	ad.series++
	if ad.refused[m.Name] {
		return &Issue{Field: ".name", Code: "name_collision", Kind: KindInvalid, Message: m.Name + " is claimed", Suggestion: "rename"}
	}
	if m.Unit == "s" && slices.Contains(slices.Collect(names), "path") {
		return &Issue{Field: `.labels["path"]`, Code: "label_collision", Kind: KindInvalid, Message: "path collides", Suggestion: "rename"}
	}
	return nil
}

func (ad *testAdmitter) Generation() uint64 { return ad.gen }

// genRecord returns a random record twice: with a label map (the reference
// path) and with raw labels (the wire path).
func genRecord(rng *rand.Rand) (withMap *pb.MetricData, wire *pb.MetricData, raw []byte) {
	names := []string{"c_total", "c_total", "g", "g", "nan_ok", "t", "bad-name", "c2_total"}
	types := map[string]pb.MetricType{
		"c_total": pb.MetricType_METRIC_TYPE_COUNTER, "c2_total": pb.MetricType_METRIC_TYPE_COUNTER,
		"g": pb.MetricType_METRIC_TYPE_GAUGE, "nan_ok": pb.MetricType_METRIC_TYPE_GAUGE,
		"t": pb.MetricType_METRIC_TYPE_TIMER, "bad-name": pb.MetricType_METRIC_TYPE_GAUGE,
	}
	keys := []string{"a", "b", "path", "method", "zone", "__x", "1bad", strings.Repeat("k", 70)}
	vals := []string{"", "1", "x", "forbidden", "\xff", strings.Repeat("v", 130)}
	name := names[rng.IntN(len(names))]
	typ := types[name]
	if rng.IntN(20) == 0 { // a type conflict
		typ = pb.MetricType_METRIC_TYPE_GAUGE
		if name == "g" {
			typ = pb.MetricType_METRIC_TYPE_COUNTER
		}
	}
	var labels [][2]string
	for range rng.IntN(6) {
		k := keys[rng.IntN(3)]
		if rng.IntN(8) == 0 {
			k = keys[rng.IntN(len(keys))]
		}
		v := vals[rng.IntN(3)]
		if rng.IntN(8) == 0 {
			v = vals[rng.IntN(len(vals))]
		}
		labels = append(labels, [2]string{k, v})
	}
	rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	m := &pb.MetricData{Name: name, Type: typ}
	switch rng.IntN(10) {
	case 0:
		m.Value = -1
	case 1:
		m.Value = math.NaN()
	case 2:
		m.Value = 2e6
	default:
		m.Value = float64(rng.IntN(100))
	}
	if typ == pb.MetricType_METRIC_TYPE_COUNTER && rng.IntN(3) == 0 {
		m.Cumulative = true
	}
	switch rng.IntN(8) {
	case 0:
		m.Unit = strings.Repeat("u", 70)
	case 1:
		m.Unit = "s"
	}
	switch rng.IntN(6) {
	case 0:
	case 1:
		m.Timestamp = at(600) // too far ahead
	default:
		m.Timestamp = at(-rng.IntN(5))
	}
	if rng.IntN(15) == 0 {
		m.Resource = &pb.Resource{Attributes: map[string]string{"host": "h1"}}
	}
	wire = m.CloneVT()
	withMap = m.CloneVT()
	for _, l := range labels {
		if withMap.Labels == nil {
			withMap.Labels = map[string]string{}
		}
		withMap.Labels[l[0]] = l[1] // a later entry wins, as in the wire decoding
	}
	return withMap, wire, rawOf(labels)
}

// checkCacheMatchesSlowPath runs random batches through two accumulators,
// one with label maps (no series cache in play) and one with raw labels and
// the series cache, and requires the same refusals, series ids and pdata.
// It returns the series cache's hits (one seed may have none: restarts,
// sweeps and refusals; the callers require them over all seeds).
func checkCacheMatchesSlowPath(t *testing.T, seed uint64, batches, size int, cacheSize int) uint64 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ad := &testAdmitter{oldest: t0.Add(-3 * time.Second).UnixNano(), refused: map[string]bool{}}
	mk := func() *Accumulator {
		a := newTestAccumulator(t, func(c *Config) {
			c.Limits.MaxLabels = 4
			c.Limits.MaxLabelNameBytes = 64
			c.Limits.MaxLabelValueBytes = 128
			c.Limits.MaxSeriesPerMetric = 12 // reached: refusals and rollbacks
			c.SeriesCacheSize = cacheSize
		})
		a.SetValidator(&testValidator{forbidden: "forbidden"})
		a.SetAdmitter(ad)
		return a
	}
	// The reference also builds its pdata through pdata's public API, the
	// fast one in its arena (pdatafast.go).
	mkRef := func() *Accumulator { a := mk(); a.noArena = true; return a }
	ref, fast := mkRef(), mk()
	// each with its own store: counters resume from it after Sweep
	refStore, fastStore := newFakeStore(), newFakeStore()
	var hitsBefore uint64 // hits of the fast accumulators restarted away
	ref.SetResumer(refStore)
	fast.SetResumer(fastStore)
	clock := t0
	for _, a := range []*Accumulator{ref, fast} {
		a.SetClock(func() time.Time { return clock })
	}
	res := &pb.Resource{Attributes: map[string]string{"service.name": "svc"}}
	for bi := range batches {
		var ms, ws []*pb.MetricData
		var raws [][]byte
		for range 1 + rng.IntN(size) {
			m, w, raw := genRecord(rng)
			ms, ws, raws = append(ms, m), append(ws, w), append(raws, raw)
		}
		if rng.IntN(4) == 0 {
			// idle series expire (their gauge marks die)
			clock = clock.Add(2 * time.Hour)
			require.Equal(t, ref.Sweep(), fast.Sweep())
		}
		if bi < batches/2 && rng.IntN(8) == 0 {
			// a restart: no state, the same stores (counters and histograms resume)
			hitsBefore += fast.SeriesCacheStats().Hits
			ref, fast = mkRef(), mk()
			ref.SetResumer(refStore)
			fast.SetResumer(fastStore)
			for _, a := range []*Accumulator{ref, fast} {
				a.SetClock(func() time.Time { return clock })
			}
		}
		if rng.IntN(3) == 0 {
			// the store's claims change: a name is refused (or no longer)
			n := []string{"c_total", "g", "t", "c2_total"}[rng.IntN(4)]
			ad.refused[n] = !ad.refused[n]
			ad.gen++
		}
		atomic := rng.IntN(3) == 0
		rb := ref.Prepare(ms, res, false)
		fb := fast.PrepareWire(ws, res, raws)
		rmd, fmd := pmetric.NewMetrics(), pmetric.NewMetrics()
		_, rerr := ref.Apply(rb, atomic, func(md pmetric.Metrics) error { rmd = md; return refStore.consume(md) })
		_, ferr := fast.Apply(fb, atomic, func(md pmetric.Metrics) error { fmd = md; return fastStore.consume(md) })
		require.Equal(t, rerr, ferr)
		require.Equal(t, len(rb.Issues), len(fb.Issues), "batch %d: refusals", bi)
		for i := range rb.Issues {
			require.Equal(t, *rb.Issues[i], *fb.Issues[i], "batch %d: refusal %d", bi, i)
		}
		for i := range ms {
			if !rb.Refused(i) {
				require.Equal(t, rb.SeriesID(i), fb.SeriesID(i), "batch %d item %d", bi, i)
			}
		}
		require.Equal(t, rmd.DataPointCount(), fmd.DataPointCount())
		if rmd.DataPointCount() > 0 {
			want, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(rmd)
			require.NoError(t, err)
			got, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(fmd)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(got), "batch %d", bi)
		}
	}
	require.Equal(t, refStore.asked, fastStore.asked, "the store was asked as often on both paths")
	return hitsBefore + fast.SeriesCacheStats().Hits
}

func TestSeriesCacheMatchesSlowPath(t *testing.T) {
	var hits uint64
	for seed := range uint64(40) {
		hits += checkCacheMatchesSlowPath(t, seed, 6, 40, DefaultSeriesCacheSize)
	}
	require.Positive(t, hits, "the series cache was never hit")
	// a tiny cache evicts all the time
	checkCacheMatchesSlowPath(t, 99, 10, 60, 16)
	// and no cache
	checkCacheMatchesSlowPath(t, 100, 4, 40, 0)
}

func FuzzSeriesCacheMatchesSlowPath(f *testing.F) {
	f.Add(uint64(1), uint8(20))
	f.Add(uint64(7), uint8(200))
	f.Fuzz(func(t *testing.T, seed uint64, size uint8) {
		checkCacheMatchesSlowPath(t, seed, 3, 1+int(size), 32)
	})
}

func TestSeriesCacheHitSkipsSeriesChecksButNotValues(t *testing.T) {
	a := newTestAccumulator(t, nil)
	v := &testValidator{forbidden: "forbidden"}
	a.SetValidator(v)
	raw := rawOf([][2]string{{"b", "ok"}, {"a", "1"}})
	send := func(m *pb.MetricData) *Batch {
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{raw})
		_, err := a.Apply(b, false, nopConsume)
		require.NoError(t, err)
		return b
	}
	g := func(value float64, unit string) *pb.MetricData {
		return &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: value, Unit: unit, Timestamp: at(0)}
	}
	require.Empty(t, send(g(1, "")).Issues)
	require.Equal(t, 1, v.validates)
	require.Empty(t, send(g(2, "")).Issues)
	require.Equal(t, 1, v.validates, "a cached series is not validated again")
	require.Equal(t, SeriesCacheStats{Hits: 1, Misses: 1, Size: 1}, a.SeriesCacheStats())

	// point-level checks and limits still apply on a hit
	b := send(g(2e6, ""))
	require.Len(t, b.Issues, 1)
	require.Equal(t, "schema_above_max", b.Issues[0].Code)
	b = send(g(1, strings.Repeat("u", 65)))
	require.Len(t, b.Issues, 1)
	require.Equal(t, "unit_too_long", b.Issues[0].Code)
	future := g(1, "")
	future.Timestamp = at(3600)
	b = send(future)
	require.Len(t, b.Issues, 1)
	require.Equal(t, "timestamp_in_future", b.Issues[0].Code)
	require.Equal(t, uint64(4), a.SeriesCacheStats().Hits)
}

func TestSeriesCacheInvalidatedByDefinitions(t *testing.T) {
	a := newTestAccumulator(t, nil)
	v := &testValidator{forbidden: "nope"}
	a.SetValidator(v)
	raw := rawOf([][2]string{{"b", "forbidden"}})
	send := func() *Batch {
		m := &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{raw})
		_, err := a.Apply(b, false, nopConsume)
		require.NoError(t, err)
		return b
	}
	require.Empty(t, send().Issues)
	require.Empty(t, send().Issues)
	require.Equal(t, 1, v.validates)

	// the definitions change: the value "forbidden" is now refused, and the
	// cached series is checked again
	v.forbidden, v.token = "forbidden", 1
	b := send()
	require.Len(t, b.Issues, 1)
	require.Equal(t, "schema_value_not_allowed", b.Issues[0].Code)
	require.Equal(t, 2, v.validates)
}

func TestSeriesCacheOffWithoutCachingValidator(t *testing.T) {
	a := newTestAccumulator(t, nil)
	a.SetValidator(plainValidator{})
	raw := rawOf([][2]string{{"a", "1"}})
	for range 3 {
		m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{raw})
		require.Empty(t, b.Issues)
		require.Equal(t, "1", m.Labels["a"], "the validator sees the labels in the map")
	}
	require.Equal(t, SeriesCacheStats{}, a.SeriesCacheStats())
}

type plainValidator struct{}

func (plainValidator) Validate(*pb.MetricData) *Issue { return nil }
func (plainValidator) AllowsNaN(string) bool          { return false }

func TestSeriesCacheIsBounded(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.SeriesCacheSize = 32 })
	a.SetClock(time.Now)
	for i := range 2000 {
		m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{rawOf([][2]string{{"id", fmt.Sprint(i)}})})
		require.Empty(t, b.Issues)
	}
	st := a.SeriesCacheStats()
	require.LessOrEqual(t, st.Size, 32)
	require.Equal(t, uint64(2000), st.Misses)
}

func TestRawLabelsOverTheLimit(t *testing.T) {
	a := newTestAccumulator(t, func(c *Config) { c.Limits.MaxLabels = 2 })
	raw := rawOf([][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}})
	for range 2 { // refused twice: a refused series is not cached
		m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{raw})
		require.Len(t, b.Issues, 1)
		require.Equal(t, "too_many_labels", b.Issues[0].Code)
		require.Equal(t, `metrics[0].labels`, b.Issues[0].Field)
	}
	m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1}
	b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{{0x22, 0x01}})
	require.Len(t, b.Issues, 1)
	require.Equal(t, "invalid_labels", b.Issues[0].Code)
}

func TestSeriesCacheLabelOrder(t *testing.T) {
	a := newTestAccumulator(t, nil)
	orders := [][][2]string{
		{{"a", "1"}, {"b", "2"}, {"c", "3"}},
		{{"c", "3"}, {"a", "1"}, {"b", "2"}},
		{{"b", "2"}, {"c", "3"}, {"a", "1"}},
	}
	var ids []string
	for _, o := range orders {
		m := &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{rawOf(o)})
		require.Empty(t, b.Issues)
		ids = append(ids, b.SeriesID(0))
		_, err := a.Apply(b, true, nopConsume)
		require.NoError(t, err)
	}
	require.Equal(t, []string{ids[0], ids[0], ids[0]}, ids, "one series whatever the order")
	// the later orders found the entry by series key: not cached again
	require.Equal(t, SeriesCacheStats{Hits: 2, Misses: 1, Size: 1}, a.SeriesCacheStats())
	total, ok := a.CounterTotal(b0key(t, a, orders[0]))
	require.True(t, ok)
	require.Equal(t, 3.0, total)
}

// b0key returns the series key of a counter c_total with labels.
func b0key(t *testing.T, a *Accumulator, labels [][2]string) uint64 {
	t.Helper()
	m := &pb.MetricData{Name: "c_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Value: 1}
	b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{rawOf(labels)})
	require.Empty(t, b.Issues)
	return b.SeriesKey(0)
}

func TestSeriesCacheKeepsStoreAdmissionUntilGenerationChanges(t *testing.T) {
	a := newTestAccumulator(t, nil)
	a.SetValidator(&testValidator{forbidden: "forbidden"})
	ad := &testAdmitter{oldest: t0.Add(-time.Minute).UnixNano(), refused: map[string]bool{}}
	a.SetAdmitter(ad)
	raw := rawOf([][2]string{{"path", "/"}, {"a", "1"}})
	send := func(unit string, ts int) *Batch {
		m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1, Unit: unit, Timestamp: at(ts)}
		b := a.PrepareWire([]*pb.MetricData{m}, nil, [][]byte{raw})
		_, err := a.Apply(b, false, nopConsume)
		require.NoError(t, err)
		return b
	}
	code := func(b *Batch) string {
		if len(b.Issues) == 0 {
			return ""
		}
		return b.Issues[0].Code
	}
	require.Empty(t, code(send("", 0)))
	require.Empty(t, code(send("", 0)))
	require.Empty(t, code(send("", 0)))
	require.Equal(t, 3, ad.points, "every point's time is checked")
	require.Equal(t, 2, ad.series, "a miss and the first hit check the series; later hits do not")

	// a point outside the window is refused on a hit
	require.Equal(t, "outside_store_window", code(send("", -120)))
	require.Equal(t, 2, ad.series)

	// another unit is checked again (the unit is not in the cache key)
	require.Equal(t, "label_collision", code(send("s", 0)))
	require.Equal(t, 3, ad.series)
	require.Empty(t, code(send("", 0)))
	require.Equal(t, 3, ad.series, "a refusal does not replace the cached pass")

	// the store's claims change: the cached pass is dropped
	ad.refused["g"] = true
	require.Empty(t, code(send("", 0)), "a pass is kept while the generation stays")
	ad.gen++
	require.Equal(t, "name_collision", code(send("", 0)))
	require.Equal(t, "name_collision", code(send("", 0)), "a refusal is not cached")
	ad.refused["g"] = false
	require.Empty(t, code(send("", 0)))
	before := ad.series
	require.Empty(t, code(send("", 0)))
	require.Equal(t, before, ad.series)
	require.Positive(t, a.SeriesCacheStats().Hits)
}

// The per-item arrays of a batch above maxPooledItems are not kept for reuse.
func TestLargeBatchBufsAreNotPooled(t *testing.T) {
	b := &Batch{bufs: getPrepBufs(maxPooledItems + 1)}
	b.Release()
	for range 4 {
		p := getPrepBufs(10)
		require.LessOrEqual(t, cap(p.recs), maxPooledItems)
		(&Batch{bufs: p}).Release()
	}
}

func TestCachedSeriesLabelsRoundTrip(t *testing.T) {
	ni := &nameInfo{typ: pb.MetricType_METRIC_TYPE_GAUGE, name: "g"}
	m := &pb.MetricData{Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE}
	raw := rawOf([][2]string{{"b", "2"}, {"a", ""}, {"c", "three"}})
	_, fromRaw, ok := appendRawLabels(nil, raw)
	require.True(t, ok)
	// a default label that is not in raw, as a Validator adds it
	labels := append(slices.Clone(fromRaw), kv{"zone", "z1"})
	e := newCachedSeries(raw, m, 7, nil, labels, 9, ni)
	require.NotNil(t, e)
	require.Equal(t, string(raw), e.raw())
	require.Equal(t, labels, e.appendLabels(nil))
	require.True(t, e.is(m, raw, 7, nil))
	require.False(t, e.is(m, raw, 8, nil))

	t.Run("labels over 64 KiB are not cached", func(t *testing.T) {
		big := rawOf([][2]string{{"k", strings.Repeat("v", 70_000)}})
		_, l, ok := appendRawLabels(nil, big)
		require.True(t, ok)
		require.Nil(t, newCachedSeries(big, m, 7, nil, l, 9, ni))
		require.Nil(t, newCachedSeries(raw, m, 7, nil, []kv{{"k", strings.Repeat("v", 70_000)}}, 9, ni))
	})
}

// TestBatchDetachedOnlyWhenEveryItemIsCachedAndAccepted: a server reuses a
// request's buffer only for a Detached batch, so it must be false whenever
// something built from the batch may still point into the request.
func TestBatchDetachedOnlyWhenEveryItemIsCachedAndAccepted(t *testing.T) {
	g := func(name string, value float64) *pb.MetricData {
		// strings of their own, as if each pointed into its request
		return &pb.MetricData{
			Name: strings.Clone(name), Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: value,
			Unit: strings.Clone("By"), Description: strings.Clone("bytes"), Timestamp: at(0),
		}
	}
	raw := rawOf([][2]string{{"a", "1"}})
	for _, tc := range []struct {
		name  string
		items func() ([]*pb.MetricData, [][]byte)
		want  bool
	}{
		{"every item cached", func() ([]*pb.MetricData, [][]byte) {
			return []*pb.MetricData{g("seen", 1), g("seen", 2)}, [][]byte{raw, raw}
		}, true},
		{"a new series", func() ([]*pb.MetricData, [][]byte) {
			return []*pb.MetricData{g("seen", 1), g("new", 2)}, [][]byte{raw, raw}
		}, false},
		{"a refused item", func() ([]*pb.MetricData, [][]byte) {
			bad := g("seen", 1)
			bad.Timestamp = nil
			bad.Unit = "\xff"
			return []*pb.MetricData{g("seen", 1), bad}, [][]byte{raw, raw}
		}, false},
		{"labels in a map", func() ([]*pb.MetricData, [][]byte) {
			m := g("seen", 1)
			m.Labels = map[string]string{"a": "1"}
			return []*pb.MetricData{m}, [][]byte{nil}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAccumulator(t, nil)
			first := a.PrepareWire([]*pb.MetricData{g("seen", 0)}, nil, [][]byte{raw})
			require.False(t, first.Detached(), "a batch of new series")
			_, err := a.Apply(first, false, nopConsume)
			require.NoError(t, err)
			first.Release()

			ms, raws := tc.items()
			b := a.PrepareWire(ms, nil, raws)
			defer b.Release()
			require.Equal(t, tc.want, b.Detached())
			if tc.want {
				// names, units and descriptions are owned strings now
				for _, m := range ms {
					// (pointers compared, not what they point to)
					require.True(t, unsafe.StringData(ms[0].Name) == unsafe.StringData(m.Name), "name")
					require.True(t, unsafe.StringData(ms[0].Unit) == unsafe.StringData(m.Unit), "unit")
					require.True(t, unsafe.StringData(ms[0].Description) == unsafe.StringData(m.Description), "description")
				}
			}
		})
	}
}
