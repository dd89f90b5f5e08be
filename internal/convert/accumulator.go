package convert

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const (
	msNanos = int64(time.Millisecond)
	// maxStep bounds how far ahead of the receive time a series' timestamp
	// moves to keep one sample per millisecond.
	maxStep = int64(time.Second)

	numShards = 64
	// parallelMin is the batch size from which Prepare validates and hashes
	// items on several goroutines.
	parallelMin = 1024
)

// Accumulator holds per-series state and turns prepared batches into pdata.
// It is safe for concurrent use.
type Accumulator struct {
	cfg    Config
	bounds []float64
	names  nameTable
	shards [numShards]shard
	now    func() time.Time
	calls  sync.Pool
	scope  Scope

	validator Validator
	cacheVal  CachingValidator // validator, when it supports the series cache
	admitter  Admitter
	resumer   Resumer
	seriesAdm SeriesAdmitter // admitter, when its series checks can be cached
	gauges    gaugeSeries    // gauge series keys (limits.max_series_per_metric)
	cache     *seriesCache
	noArena   bool // build through pdata's public API only (tests)
}

type shard struct {
	mu sync.Mutex
	m  map[uint64]*series
}

// Scope is the instrumentation scope set on emitted metrics.
type Scope struct {
	Name    string
	Version string
}

// NewAccumulator returns an accumulator for cfg, which must be valid.
func NewAccumulator(cfg Config, scope Scope) *Accumulator {
	a := &Accumulator{cfg: cfg, bounds: cfg.Histogram.Buckets, now: time.Now, scope: scope}
	a.cache = newSeriesCache(cfg.SeriesCacheSize)
	for i := range a.shards {
		a.shards[i].m = make(map[uint64]*series)
	}
	a.calls.New = func() any {
		return &call{metrics: make(map[metricKey]int32)}
	}
	return a
}

// Validator checks records against registered metric definitions. Validate
// may add default labels to the record; it returns nil when the record
// passes. Field paths of its issues are relative to the item (".labels").
type Validator interface {
	Validate(m *pb.MetricData) *Issue
	AllowsNaN(name string) bool
}

// SetValidator installs the definition checks (call before serving). The
// series cache stays in use only if v is a CachingValidator.
func (a *Accumulator) SetValidator(v Validator) {
	a.validator = v
	a.cacheVal, _ = v.(CachingValidator)
	if a.cacheVal == nil && v != nil {
		a.cache = nil
	}
}

// Admitter checks a record against the store before it is accepted (time
// window, name collisions).
type Admitter interface {
	// Admit returns nil or the refusal of record m whose resolved timestamp
	// is ts (unix ns) and whose label names (with the Validator's defaults;
	// m.Labels may be empty when the labels came as raw bytes) are
	// labelNames. Field paths of its issues are relative to the item
	// (".timestamp"). It is called once per record that passed validation and
	// the Validator, possibly from several goroutines at once.
	Admit(m *pb.MetricData, labelNames iter.Seq[string], ts int64) *Issue
}

// SeriesAdmitter is an Admitter whose checks split into those of a
// record's series (name, unit, type and label names: the store's name and
// label collisions) and those of each point (the time window). Admit is
// AdmitPoint, then AdmitSeries. The series cache keeps a series' pass of
// AdmitSeries (with the unit it was checked with) while Generation returns
// the value it returned before that check.
type SeriesAdmitter interface {
	Admitter
	// AdmitPoint checks what depends on the point: ts (unix ns).
	AdmitPoint(m *pb.MetricData, ts int64) *Issue
	// AdmitSeries checks what depends on m's name, unit and type and its
	// label names only.
	AdmitSeries(m *pb.MetricData, labelNames iter.Seq[string]) *Issue
	// Generation changes whenever a pass of AdmitSeries may no longer hold.
	Generation() uint64
}

// SetAdmitter installs the store's admission checks (call before serving).
// A SeriesAdmitter's series checks are cached with the series.
func (a *Accumulator) SetAdmitter(ad Admitter) {
	a.admitter = ad
	a.seriesAdm, _ = ad.(SeriesAdmitter)
}

// Resumer gives the accumulator the stored running total of a counter,
// histogram or summary series it holds no state for: after a restart, or
// after Sweep dropped the idle series. The accumulator asks it once per
// series creation (never per point) and goes on from the stored total
// instead of from zero.
type Resumer interface {
	// ResumeCounter returns the newest stored value of the counter series
	// of record m (a counter increment) with labels (sorted by name, with
	// the Validator's defaults) in a resource with attributes res, its time
	// (unix ns) and the time (unix ns) of the series' oldest stored sample;
	// ok is false when nothing is stored (or the store cannot tell). It is
	// called while the series' shard is locked, possibly from several
	// goroutines at once, and must not call back into the Accumulator.
	ResumeCounter(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (total float64, last, first int64, ok bool)
	// ResumeHistogram is ResumeCounter for the explicit-bucket histogram
	// series (with bucket bounds) of record m (observations of a histogram
	// or timer): the stored observation count of each bucket (not
	// cumulative; len(bounds)+1) and their sum.
	ResumeHistogram(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, bounds []float64) (counts []uint64, sum float64, last, first int64, ok bool)
	// ResumeSummary is ResumeCounter for the summary series of record m
	// (observations of a summary): its stored observation count and sum
	// (the quantiles are not resumed).
	ResumeSummary(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (count uint64, sum float64, last, first int64, ok bool)
	// ResumeExponential is ResumeCounter for the exponential histogram
	// series of record m (observations of a histogram or timer under
	// histogram.kind exponential): the stored histogram in OTel's layout,
	// only when it is exactly the one the accumulator had, at its scale,
	// with at most maxSize buckets per range (histogram.max_size).
	ResumeExponential(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, maxSize int32) (h ExponentialState, last, first int64, ok bool)
}

// PdataUnit is the unit of the pdata metric records like m become (a timer
// without a unit is in seconds).
func PdataUnit(m *pb.MetricData) string {
	if m.Type == pb.MetricType_METRIC_TYPE_TIMER && m.Unit == "" {
		return "s"
	}
	return m.Unit
}

// SetResumer installs the stored-total lookup (call before serving). Without
// one a new counter series starts from zero.
func (a *Accumulator) SetResumer(r Resumer) { a.resumer = r }

// PdataKind says which pdata metric type, temporality and monotonicity
// records of type t become under this config. It describes records carrying
// values or observations; a pre-aggregated histogram keeps its own layout
// (explicit: Histogram, exponential: ExponentialHistogram) and is cumulative.
// Types without temporality (gauge, summary) give
// AggregationTemporalityUnspecified; an unknown type gives MetricTypeEmpty.
func (a *Accumulator) PdataKind(t pb.MetricType) (typ pmetric.MetricType, temporality pmetric.AggregationTemporality, monotonic bool) {
	switch t {
	case pb.MetricType_METRIC_TYPE_GAUGE:
		return pmetric.MetricTypeGauge, pmetric.AggregationTemporalityUnspecified, false
	case pb.MetricType_METRIC_TYPE_COUNTER:
		return pmetric.MetricTypeSum, pdataTemporality(a.cfg.CounterTemporality), true
	case pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER:
		if a.cfg.Histogram.Kind == HistogramExponential {
			return pmetric.MetricTypeExponentialHistogram, pdataTemporality(a.cfg.HistogramTemporality), false
		}
		return pmetric.MetricTypeHistogram, pdataTemporality(a.cfg.HistogramTemporality), false
	case pb.MetricType_METRIC_TYPE_SUMMARY:
		return pmetric.MetricTypeSummary, pmetric.AggregationTemporalityUnspecified, false
	}
	return pmetric.MetricTypeEmpty, pmetric.AggregationTemporalityUnspecified, false
}

// SetClock replaces the clock (tests).
func (a *Accumulator) SetClock(now func() time.Time) { a.now = now }

// Limits returns the record limits in force.
func (a *Accumulator) Limits() Limits { return a.cfg.Limits }

// record is one prepared item of a batch.
type record struct {
	m *pb.MetricData
	// labels are m.Labels (with the validator's defaults) sorted by name;
	// nil for a record whose labels are those of its cache entry cs (see
	// labelsOf).
	labels []kv
	name   *nameInfo
	key    uint64
	resKey uint64
	ts     int64
	weight float64
	res    int32
	bad    bool
	cs     *cachedSeries // the series cache's entry, when the record has one
}

type resource struct {
	attrs map[string]string
	key   uint64
}

// Batch is a validated and keyed request, ready for Apply.
type Batch struct {
	recs      []record
	bufs      *prepBufs // recs and scratch, reused after Release
	resources []resource
	now       int64
	single    bool
	// cachedAll: every item's series came from the series cache
	cachedAll bool
	// Issues are the refused items, in index order.
	Issues []*Issue
}

// prepBufs are the per-item arrays of a Batch: about 100 bytes per item.
type prepBufs struct {
	recs   []record
	issues []*Issue
}

var prepPool sync.Pool // *prepBufs, zeroed

// maxPooledItems bounds the prepBufs kept for reuse (about 400 KiB): those
// of a larger batch are left to the garbage collector.
const maxPooledItems = 4096

func getPrepBufs(n int) *prepBufs {
	p, _ := prepPool.Get().(*prepBufs)
	if p == nil || cap(p.recs) < n {
		return &prepBufs{recs: make([]record, n), issues: make([]*Issue, n)}
	}
	p.recs, p.issues = p.recs[:n], p.issues[:n]
	return p
}

// Release lets the next batch reuse b's arrays: b must not be used after.
// Calling it is optional (without it they are garbage collected).
func (b *Batch) Release() {
	if p := b.bufs; p != nil {
		b.bufs, b.recs = nil, nil
		if cap(p.recs) > maxPooledItems {
			return
		}
		clear(p.recs[:cap(p.recs)])
		clear(p.issues[:cap(p.issues)])
		prepPool.Put(p)
	}
}

// Len is the number of items in the batch.
func (b *Batch) Len() int { return len(b.recs) }

// Detached reports whether nothing the batch built, or will build, holds a
// string or byte of its request: every item's series came from the series
// cache (its labels are the entry's; its name, unit and description owned
// copies) and no item was refused (an Issue may quote the request). The
// request's buffer may then be reused once the call has ended and the
// answer holds none of its strings either.
func (b *Batch) Detached() bool { return b.cachedAll && len(b.Issues) == 0 }

// SeriesID returns the series identity of item i as 16 hex digits.
func (b *Batch) SeriesID(i int) string {
	return fmt.Sprintf("%016x", b.recs[i].key)
}

// Refused reports whether item i was refused.
func (b *Batch) Refused(i int) bool { return b.recs[i].bad }

func (b *Batch) itemPath(i int) string {
	if b.single {
		return "metric"
	}
	return "metrics[" + strconv.Itoa(i) + "]"
}

func (b *Batch) refuse(i int, iss *Issue) {
	iss.Index = i
	iss.Field = b.itemPath(i) + iss.Field
	b.recs[i].bad = true
	b.Issues = append(b.Issues, iss)
}

// Prepare validates and keys the items of a request. single says the request
// is a RecordMetric (field paths start with "metric" instead of "metrics[i]").
// Refused items are listed in Batch.Issues; the batch holds all items.
func (a *Accumulator) Prepare(ms []*pb.MetricData, res *pb.Resource, single bool) *Batch {
	return a.prepare(ms, res, single, nil)
}

// PrepareWire is Prepare for a RecordBatchMetrics request whose records'
// labels may come as raw bytes: for an item i with rawLabels[i] != nil and
// no ms[i].Labels, rawLabels[i] is the protobuf encoding of its label map
// entries (field 4 of MetricData) as received (see
// internal/grpccodec.BatchLabels). Such items go through the series cache:
// a series seen before skips label decoding, validation and keying.
// rawLabels may be nil or shorter than ms.
func (a *Accumulator) PrepareWire(ms []*pb.MetricData, res *pb.Resource, rawLabels [][]byte) *Batch {
	return a.prepare(ms, res, false, rawLabels)
}

func (a *Accumulator) prepare(ms []*pb.MetricData, res *pb.Resource, single bool, rawLabels [][]byte) *Batch {
	now := a.now().UnixNano()
	b := &Batch{now: now, single: single}
	b.bufs = getPrepBufs(len(ms))
	b.recs = b.bufs.recs
	h := hasherPool.Get().(*hasher)
	var reqAttrs map[string]string
	if res != nil {
		reqAttrs = res.Attributes
	}
	b.resources = append(b.resources, resource{attrs: reqAttrs, key: h.resourceKey(reqAttrs)})
	hasherPool.Put(h)
	reqKey := b.resources[0].key
	if iss := validateResource(reqAttrs, "resource.attributes", &a.cfg.Limits); iss != nil {
		// the request's resource would label every item: refuse them all
		for i := range b.recs {
			b.recs[i].m = ms[i]
			c := *iss
			c.Index = i
			b.recs[i].bad = true
			b.Issues = append(b.Issues, &c)
		}
		return b
	}

	issues := b.bufs.issues
	// The series of the request's previous batch, by position: clients
	// send the same series in the same order again and again.
	var hints []*cachedSeries
	if a.cache != nil && len(rawLabels) > 0 {
		hints = a.cache.hintsFor(reqKey)
	}
	prep := func(lo, hi int) {
		h := hasherPool.Get().(*hasher)
		n := 0
		for _, m := range ms[lo:hi] {
			if m != nil {
				n += len(m.Labels)
			}
		}
		if len(hints) == 0 && lo < len(rawLabels) {
			for _, raw := range rawLabels[lo:min(hi, len(rawLabels))] {
				n += len(raw) / 16 // (an entry takes at least 6 bytes; 16 is typical)
			}
		}
		// one backing array for the sorted labels of the chunk's records
		// (records from the series cache use its labels instead)
		arena := make([]kv, 0, n+8)
		var counts cacheCounts
		for i := lo; i < hi; i++ {
			var raw []byte
			if i < len(rawLabels) {
				raw = rawLabels[i]
			}
			var hint *cachedSeries
			if i < len(hints) {
				hint = hints[i]
			}
			issues[i] = a.prepareOne(h, &arena, &b.recs[i], ms[i], raw, hint, &counts, reqKey, now)
		}
		if a.cache != nil {
			a.cache.hits.Add(counts.hits)
			a.cache.misses.Add(counts.misses)
		}
		hasherPool.Put(h)
	}
	workers := runtime.GOMAXPROCS(0)
	if len(ms) < parallelMin || workers < 2 {
		prep(0, len(ms))
	} else {
		chunk := (len(ms) + workers - 1) / workers
		var wg sync.WaitGroup
		for lo := 0; lo < len(ms); lo += chunk {
			hi := min(lo+chunk, len(ms))
			wg.Go(func() { prep(lo, hi) })
		}
		wg.Wait()
	}
	b.cachedAll = true // (until an item refused or not from the cache)
	for i := range b.recs {
		if issues[i] != nil {
			b.refuse(i, issues[i])
			b.cachedAll = false
			continue
		}
		r := &b.recs[i]
		if r.cs == nil || r.labels != nil {
			b.cachedAll = false
		}
		if r.resKey != reqKey {
			r.res = b.resourceIndex(r.m.Resource.Attributes, r.resKey)
		}
	}
	if a.cache != nil && len(rawLabels) > 0 {
		a.cache.updateHints(reqKey, hints, b.recs)
	}
	return b
}

func (b *Batch) resourceIndex(attrs map[string]string, key uint64) int32 {
	for i := range b.resources {
		if b.resources[i].key == key {
			return int32(i)
		}
	}
	b.resources = append(b.resources, resource{attrs: attrs, key: key})
	return int32(len(b.resources) - 1)
}

// prepareOne validates and keys one record. Its sorted labels are appended
// to *arena (records keep subslices of it). raw, when not nil, is the raw
// encoding of the record's labels (see PrepareWire).
//
// hint is the cached series at the record's position in the previous batch
// of the request's resource; counts gets the record's cache hit or miss.
func (a *Accumulator) prepareOne(h *hasher, arena *[]kv, r *record, m *pb.MetricData, raw []byte, hint *cachedSeries, counts *cacheCounts, reqKey uint64, now int64) *Issue {
	r.m = m
	lim := &a.cfg.Limits
	// The series cache: records of a series seen before (same resource,
	// name, type and label bytes, same definitions) skip the series-level
	// checks, which gave the same answer then.
	var (
		hk     uint64
		token  any
		cached bool // eligible for the cache
	)
	if a.cache != nil && raw != nil && m != nil && len(m.Labels) == 0 && m.Resource == nil {
		cached = true
		if a.cacheVal != nil {
			token = a.cacheVal.DefinitionsToken()
		}
		if hint.is(m, raw, reqKey, token) {
			counts.hits++
			return a.prepareCached(r, m, hint, reqKey, now)
		}
		hk = h.rawKey(reqKey, m, raw)
		if e := a.cache.get(hk, m, raw, reqKey, token); e != nil {
			counts.hits++
			return a.prepareCached(r, m, e, reqKey, now)
		}
		counts.misses++
	}

	var labels []kv
	nLabels := 0
	defaulted := false // the Validator added labels
	if m != nil {
		nLabels = len(m.Labels)
		if raw != nil && len(m.Labels) == 0 {
			var ok bool
			if *arena, labels, ok = appendRawLabels(*arena, raw); !ok {
				return invalid(".labels", "invalid_labels", "the labels are not a valid protobuf map<string,string> encoding",
					"send labels as a map of strings (check the client's proto)")
			}
			nLabels = len(labels)
			if lim.MaxLabels > 0 && nLabels > lim.MaxLabels {
				*arena = (*arena)[:len(*arena)-len(labels)]
				labels = nil
			} else if cached {
				// the labels in another order than when cached
				key := h.seriesKeySorted(reqKey, m, labels)
				if e := a.cache.getByKey(key, m, labels, reqKey, token); e != nil {
					// the record uses the entry's labels: give back the arena
					*arena = (*arena)[:len(*arena)-len(labels)]
					counts.misses--
					counts.hits++
					return a.prepareCached(r, m, e, reqKey, now)
				}
			}
		} else if lim.MaxLabels <= 0 || len(m.Labels) <= lim.MaxLabels {
			// (over the limit, validateRecord refuses before it reads the labels)
			*arena, labels = appendSorted(*arena, m.Labels)
		}
	}
	if iss := validateRecord(m, labels, nLabels, false, now, lim, a.allowsNaN); iss != nil {
		return iss
	}
	if a.validator != nil {
		if len(m.Labels) == 0 && len(labels) > 0 {
			// the validator reads (and may add to) the label map
			m.Labels = make(map[string]string, len(labels)+2)
			for _, l := range labels {
				m.Labels[l.k] = l.v
			}
		}
		if iss := a.validator.Validate(m); iss != nil {
			return iss
		}
		if len(m.Labels) != len(labels) {
			// the validator added default labels: collect again
			*arena = (*arena)[:len(*arena)-len(labels)]
			*arena, labels = appendSorted(*arena, m.Labels)
			defaulted = true
		}
	}
	r.labels = labels
	r.ts = now
	if m.Timestamp != nil {
		r.ts = unixNano(m.Timestamp)
	}
	if a.admitter != nil {
		if iss := a.admitter.Admit(m, labelNames(labels), r.ts); iss != nil {
			return iss
		}
	}
	r.weight = 1
	if m.SampleRate > 0 {
		r.weight = 1 / m.SampleRate
	}
	r.resKey = reqKey
	if m.Resource != nil {
		r.resKey = h.resourceKey(m.Resource.Attributes)
	}
	r.key = h.seriesKeySorted(r.resKey, m, labels)
	ni, iss := a.nameInfo(m)
	if iss != nil {
		return iss
	}
	r.name = ni
	if cached {
		if e := newCachedSeries(raw, m, reqKey, token, labels, r.key, ni); e != nil {
			// (by series key only when its labels are the record's)
			a.cache.put(hk, e, !defaulted)
			r.cs = e
		}
	}
	return nil
}

// prepareCached is prepareOne for a record whose series is in the cache:
// only the checks that depend on the record's other fields and values run.
func (a *Accumulator) prepareCached(r *record, m *pb.MetricData, e *cachedSeries, reqKey uint64, now int64) *Issue {
	e.ni.adopt(m) // (before anything reads m: see Batch.Detached)
	if iss := validateRecord(m, nil, 0, true, now, &a.cfg.Limits, a.allowsNaN); iss != nil {
		return iss
	}
	if a.cacheVal != nil {
		if iss := a.cacheVal.ValidateValues(m); iss != nil {
			return iss
		}
	}
	r.labels = nil // (the entry's: see labelsOf)
	r.cs = e
	r.ts = now
	if m.Timestamp != nil {
		r.ts = unixNano(m.Timestamp)
	}
	if sa := a.seriesAdm; sa != nil {
		if iss := sa.AdmitPoint(m, r.ts); iss != nil {
			return iss
		}
		gen := sa.Generation()
		if am := e.admitted.Load(); am == nil || am.gen != gen || am.unit != m.Unit {
			if iss := sa.AdmitSeries(m, labelNames(e.appendLabels(nil))); iss != nil {
				return iss
			}
			e.admitted.Store(&admitMark{gen: gen, unit: strings.Clone(m.Unit)}) // (m.Unit may alias the request)
		}
	} else if a.admitter != nil {
		if iss := a.admitter.Admit(m, e.labelNames(), r.ts); iss != nil {
			return iss
		}
	}
	r.weight = 1
	if m.SampleRate > 0 {
		r.weight = 1 / m.SampleRate
	}
	r.resKey = reqKey
	r.key = e.key
	r.name = e.ni
	return nil
}

// nameInfo returns the name entry of m, creating it within
// limits.max_metric_names, and refuses a type other than the name's.
func (a *Accumulator) nameInfo(m *pb.MetricData) (*nameInfo, *Issue) {
	ni := a.names.lookup(m.Name, m.Type, a.cfg.Limits.MaxMetricNames)
	if ni == nil {
		return nil, &Issue{
			Field: ".name", Code: "too_many_metric_names", Kind: KindResourceExhausted,
			Message:    fmt.Sprintf("metric %q would pass the limit of %d metric names", m.Name, a.cfg.Limits.MaxMetricNames),
			Suggestion: "reuse existing metric names with labels, or raise limits.max_metric_names",
		}
	}
	if ni.typ != m.Type {
		return nil, &Issue{
			Field: ".type", Code: "type_conflict", Kind: KindInvalid,
			Message:    fmt.Sprintf("metric %q is a %s; a %s record of the same name is refused", m.Name, typeName(ni.typ), typeName(m.Type)),
			Suggestion: "use another name for the " + typeName(m.Type) + ", or record the metric as a " + typeName(ni.typ),
		}
	}
	return ni, nil
}

// labelsOf returns the sorted labels of r: from the request, or a copy of
// those of its cache entry (the hot paths read the entry in place).
func labelsOf(r *record) []kv {
	if r.labels == nil && r.cs != nil && r.cs.nl > 0 {
		return r.cs.appendLabels(make([]kv, 0, r.cs.nl))
	}
	return r.labels
}

// labelNames yields the names of e's labels, sorted.
func (e *cachedSeries) labelNames() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range int(e.nl) {
			if !yield(e.label(i).k) {
				return
			}
		}
	}
}

// labelNames yields the names of sorted labels.
func labelNames(labels []kv) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, l := range labels {
			if !yield(l.k) {
				return
			}
		}
	}
}

// stateful reports whether records of this type keep per-series state.
func stateful(t pb.MetricType) bool { return t != pb.MetricType_METRIC_TYPE_GAUGE }

// Outcome reports what Apply did.
type Outcome struct {
	// Accepted is the number of items applied.
	Accepted int
	// DataPoints is the number of data points handed to the consumer.
	DataPoints int
	// SeriesCreated is the number of new stateful series.
	SeriesCreated int
}

// staged is the change one call makes to one stateful series. Its fields
// from ts on describe the series' last point of the call; earlier points of
// the call are in prior.
type staged struct {
	key    uint64
	target *series // nil for a new series
	next   series
	rec    int32  // last record (by index) of the series: labels, resource, metadata
	multi  *multi // with more than one record of the series in the call

	ts      int64         // timestamp of the last point
	delta   float64       // counter change of the last point
	cloned  bool          // next's histogram/summary is this point's own copy
	dhist   *explicitHist // delta temporality: the last point's observations
	dexpo   *expoHist
	pre     *pb.MetricData // pre-aggregated histogram/summary value
	started bool
	resumed bool // a new series that goes on from its stored total (Resumer)
}

// multi is what a staged series with several records in one call needs.
type multi struct {
	recs  []int32 // every record of the series, in index order (then time order)
	prior []point // earlier points of this call, in timestamp order
}

// point is a closed data point of a series with several points in one call.
type point struct {
	ts, start int64
	total     float64
	delta     float64
	hist      *explicitHist // cumulative state (shared, copied on the next write)
	expo      *expoHist
	summary   *summaryState
	dhist     *explicitHist // delta temporality: the point's observations
	dexpo     *expoHist
	pre       *pb.MetricData
}

// gaugeGroup is the records of a gauge series with several records in one
// call.
type gaugeGroup struct {
	rec  int32   // the last record by index (resource, metadata)
	recs []int32 // the records, then (after gaugePoints) the points in timestamp order
}

type metricKey struct {
	res  int32
	name string
}

// call is the scratch of one Apply; pooled.
type call struct {
	staged  []staged
	gauges  []gaugeGroup // gauge series with several records
	gmark   []int32      // nil without gauge groups; else per record: group+1 on a group's first record, -1 on its others
	index   keyTable     // series key -> staged series or gauge group
	locked  [numShards]bool
	metrics map[metricKey]int32 // index in slots
	slots   []metricSlot
	order   []int32 // slot of each gauge group, then of each staged series
	rms     []pmetric.ScopeMetrics
	arena   pointArena // of the build under way
}

func (c *call) reset() {
	clear(c.staged)
	c.staged = c.staged[:0]
	clear(c.gauges)
	c.gauges = c.gauges[:0]
	c.gmark = nil
	c.locked = [numShards]bool{}
	clear(c.metrics)
	clear(c.slots)
	c.slots = c.slots[:0]
	c.order = c.order[:0]
	clear(c.rms) // (the pooled call must not keep the pdata alive)
	c.rms = c.rms[:0]
}

// Apply stages the batch's state changes, builds the pdata, hands it to
// consume and commits the changes only if consume succeeded: on error no
// counter, histogram or series changes. Items already refused in b.Issues are
// skipped. With atomic set, an item refused during Apply (series limit)
// refuses the batch with that *Issue; otherwise it is added to b.Issues.
//
// Timestamps. Every distinct timestamp of a series in the batch gives one
// data point, in timestamp order; records of one series are applied in
// timestamp order (item order for equal timestamps), and a stateful point
// holds the state after every record up to its timestamp. The store keeps
// one sample per series per millisecond, so:
//   - records of one series in the same millisecond make one point, at the
//     latest of their timestamps, holding the later state (for gauges: the
//     value of the latest timestamp, the later item on a tie);
//   - a stateful record older than the series' last committed point counts
//     at that point's time;
//   - a stateful point in the millisecond of the series' previous point (a
//     repeated update, or a record moved as above) moves to the next
//     millisecond, at most maxStep (1s) ahead of the receive time. Beyond
//     that it stays in the previous point's millisecond: across requests the
//     store then keeps the earlier value until the next update; within one
//     request it merges into the previous point of the request.
func (a *Accumulator) Apply(b *Batch, atomic bool, consume func(pmetric.Metrics) error) (Outcome, error) {
	c := a.calls.Get().(*call)
	defer func() {
		c.reset()
		a.calls.Put(c)
	}()
	var out Outcome

	for i := range b.recs {
		r := &b.recs[i]
		if !r.bad && stateful(r.m.Type) {
			c.locked[r.key%numShards] = true
		}
	}
	for s := range c.locked {
		if c.locked[s] {
			a.shards[s].mu.Lock()
		}
	}
	defer func() {
		for s := range c.locked {
			if c.locked[s] {
				a.shards[s].mu.Unlock()
			}
		}
	}()

	c.index.reset(len(b.recs))
	created := 0
	rollbackNames := func() {
		for i := range c.staged {
			if c.staged[i].target == nil {
				c.staged[i].next.name.series.Add(-c.staged[i].next.weight)
			}
		}
	}
	var newGauges []int32 // records whose gauge series key is new
	// The gauge series set is locked once for the batch, at its first gauge.
	gaugeLimit := a.cfg.Limits.MaxSeriesPerMetric
	gaugesLocked := false
	defer func() {
		if gaugesLocked {
			a.gauges.mu.Unlock()
		}
	}()
	rollbackGauges := func() {
		for _, i := range newGauges {
			if gaugesLocked {
				a.gauges.forgetLocked(b.recs[i].name, b.recs[i].key)
			} else {
				a.gauges.forget(b.recs[i].name, b.recs[i].key)
			}
		}
	}
	// Group the records by series (and create the staged series).
	// refuseAll refuses item i: in an atomic batch it undoes what Apply
	// counted so far and reports that the whole batch is refused; otherwise
	// the item joins b.Issues.
	refuseAll := func(i int, iss *Issue) bool {
		if !atomic {
			b.refuse(i, iss)
			return false
		}
		rollbackNames()
		rollbackGauges()
		iss.Index = i
		iss.Field = b.itemPath(i) + iss.Field
		return true
	}
	for i := range b.recs {
		r := &b.recs[i]
		if r.bad {
			continue
		}
		if !stateful(r.m.Type) {
			var added bool
			var iss *Issue
			// (a series with an earlier record in this call was admitted then)
			if gaugeLimit > 0 && c.index.find(r.key).v >= 0 {
				if !gaugesLocked {
					a.gauges.mu.Lock()
					gaugesLocked = true
				}
				if m := r.cs.gaugeMark(); m != nil && !m.dead {
					m.seen = b.now // the series cache knows its mark
				} else {
					var mark *gaugeMark
					added, mark, iss = a.gauges.admitLocked(r.name, r.m.Name, r.key, b.now, gaugeLimit)
					if mark != nil && r.cs != nil {
						r.cs.gauge.Store(mark)
					}
				}
			}
			if iss != nil {
				if refuseAll(i, iss) {
					return Outcome{}, iss
				}
				continue
			}
			if added {
				newGauges = append(newGauges, int32(i))
			}
			c.groupGauge(r.key, int32(i), len(b.recs))
			out.Accepted++
			continue
		}
		if iss := a.stage(c, b, int32(i)); iss != nil {
			if refuseAll(i, iss) {
				return Outcome{}, iss
			}
			continue
		}
		out.Accepted++
	}
	if gaugesLocked {
		a.gauges.mu.Unlock()
		gaugesLocked = false
	}
	if !slices.IsSortedFunc(b.Issues, byIndex) {
		// refusals of this pass came after those of Prepare: Issues are in
		// index order (batch results rely on it)
		slices.SortStableFunc(b.Issues, byIndex)
	}
	// Apply them, series by series, in timestamp order.
	for i := range c.gauges {
		g := &c.gauges[i]
		g.recs = gaugePoints(b, g.recs)
	}
	for i := range c.staged {
		st := &c.staged[i]
		if st.target == nil {
			created++
		}
		if st.multi == nil {
			a.applyOne(st, b, &b.recs[st.rec])
			continue
		}
		sortByTime(b, st.multi.recs)
		a.applySeries(st, b, st.multi.recs)
	}

	md := a.build(c, b)
	out.DataPoints = md.DataPointCount()
	if out.DataPoints > 0 {
		if err := consume(md); err != nil {
			rollbackNames()
			rollbackGauges()
			return Outcome{}, err
		}
	}
	// commit
	for i := range c.staged {
		st := &c.staged[i]
		st.next.last = st.ts
		st.next.lastSeen = b.now
		if st.target != nil {
			*st.target = st.next
			continue
		}
		s := new(series)
		*s = st.next
		a.shards[st.key%numShards].m[st.key] = s
		if cs := b.recs[st.rec].cs; cs != nil {
			cs.ser.Store(s)
		}
	}
	out.SeriesCreated = created
	return out, nil
}

// keyTable maps series keys (already hashes) to the records' groups of one
// call: open addressing on the key's low bits, at most half full. It is
// cheaper than a map[uint64]int32 for the one lookup per record.
type keyTable struct {
	slots []keySlot
	mask  uint64
}

// keySlot is one entry: v > 0 is staged series v-1, v < 0 a gauge series
// whose first record is -v-1 (and g > 0 its group g-1 once it has several),
// v == 0 an empty slot.
type keySlot struct {
	key uint64
	v   int32
	g   int32
}

// reset empties the table and sizes it for n keys.
func (t *keyTable) reset(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	if cap(t.slots) < size {
		t.slots = make([]keySlot, size)
	} else {
		t.slots = t.slots[:size]
		clear(t.slots)
	}
	t.mask = uint64(size - 1)
}

// find returns the slot of key, or the empty slot where it goes.
func (t *keyTable) find(key uint64) *keySlot {
	for i := key & t.mask; ; i = (i + 1) & t.mask {
		if s := &t.slots[i]; s.v == 0 || s.key == key {
			return s
		}
	}
}

func byIndex(x, y *Issue) int { return cmp.Compare(x.Index, y.Index) }

// groupGauge notes gauge record ri of a batch of n records. Only series with
// several records get a group (and the batch a gmark); the common case costs
// one table probe.
func (c *call) groupGauge(key uint64, ri int32, n int) {
	e := c.index.find(key)
	switch {
	case e.v == 0:
		*e = keySlot{key: key, v: -ri - 1}
		return
	case e.v > 0: // a 64-bit collision with a stateful key: not grouped
		return
	}
	if c.gmark == nil {
		c.gmark = make([]int32, n)
	}
	if e.g == 0 {
		first := -e.v - 1
		c.gauges = append(c.gauges, gaugeGroup{recs: append(make([]int32, 0, 4), first)})
		e.g = int32(len(c.gauges))
		c.gmark[first] = e.g
	}
	g := &c.gauges[e.g-1]
	g.recs = append(g.recs, ri)
	g.rec = ri
	c.gmark[ri] = -1
}

// sortByTime sorts record indices (given in index order) by timestamp,
// keeping index order for equal timestamps.
func sortByTime(b *Batch, recs []int32) {
	slices.SortStableFunc(recs, func(x, y int32) int { return cmp.Compare(b.recs[x].ts, b.recs[y].ts) })
}

// gaugePoints sorts the records of one gauge series by time and keeps one per
// millisecond: the latest timestamp, the later item on a tie.
func gaugePoints(b *Batch, recs []int32) []int32 {
	sortByTime(b, recs)
	out := recs[:0]
	for j, ri := range recs {
		if j+1 < len(recs) && b.recs[recs[j+1]].ts/msNanos == b.recs[ri].ts/msNanos {
			continue
		}
		out = append(out, ri)
	}
	return out
}

// stage adds stateful record ri to the staged entry of its series, creating
// the entry (and counting the series against its limit) on first use.
func (a *Accumulator) stage(c *call, b *Batch, ri int32) *Issue {
	r := &b.recs[ri]
	m := r.m
	e := c.index.find(r.key)
	if e.v > 0 {
		st := &c.staged[e.v-1]
		if st.multi == nil {
			st.multi = &multi{recs: append(make([]int32, 0, 4), st.rec)}
		}
		st.multi.recs = append(st.multi.recs, ri)
		st.rec = ri
		return nil
	}
	st := staged{key: r.key, rec: ri}
	s := r.cs.state() // the series cache knows the state, unless it was dropped
	if s == nil || s.dead {
		s = a.shards[r.key%numShards].m[r.key]
		if s != nil && r.cs != nil {
			r.cs.ser.Store(s)
		}
	}
	if s != nil {
		st.target = s
		st.next = *s
		st.started = true
	} else {
		w := a.storedSeries(m)
		if lim := a.cfg.Limits.MaxSeriesPerMetric; lim > 0 {
			if n := r.name.series.Add(w); n > int64(lim) {
				r.name.series.Add(-w)
				return &Issue{
					Field: ".labels", Code: "series_limit", Kind: KindResourceExhausted,
					Message: fmt.Sprintf("metric %q has reached its limit of %d series (limits.max_series_per_metric); this label set would add %d more",
						m.Name, lim, w),
					Suggestion: "drop high-cardinality labels (ids, timestamps), use fewer histogram buckets, or raise limits.max_series_per_metric",
				}
			}
		} else {
			r.name.series.Add(w)
		}
		st.next = series{name: r.name, start: r.ts - int64(time.Millisecond), weight: w}
		a.resume(&st, b, r)
	}
	if e.v == 0 { // (not on a 64-bit collision with a gauge key)
		*e = keySlot{key: r.key, v: int32(len(c.staged)) + 1}
	}
	c.staged = append(c.staged, st)
	return nil
}

// resume starts the staged new series st of record r from its stored
// state, when the Resumer has it: a counter of increments whose points are
// cumulative, a cumulative histogram or timer (explicit or exponential)
// built from observations, or the count and sum of a summary built from
// observations. The series then goes on as if the accumulator had kept it:
// the same totals, its points after the stored one, and a start time before
// the series' oldest stored sample (the original start is not stored).
func (a *Accumulator) resume(st *staged, b *Batch, r *record) {
	m := r.m
	if a.resumer == nil {
		return
	}
	var res map[string]string
	if int(r.res) < len(b.resources) {
		res = b.resources[r.res].attrs
	}
	var last, first int64
	switch m.Type {
	case pb.MetricType_METRIC_TYPE_COUNTER:
		if m.Cumulative || a.cfg.CounterTemporality != TemporalityCumulative {
			return
		}
		total, l, f, ok := a.resumer.ResumeCounter(m, labelPairs(labelsOf(r)), res)
		if !ok || math.IsNaN(total) || math.IsInf(total, 0) || total < 0 {
			return
		}
		st.next.total = total
		last, first = l, f
	case pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER:
		if m.Histogram != nil || m.Summary != nil || a.cfg.HistogramTemporality != TemporalityCumulative {
			return
		}
		if a.cfg.Histogram.Kind == HistogramExponential {
			h, l, f, ok := a.resumer.ResumeExponential(m, labelPairs(labelsOf(r)), res, a.cfg.Histogram.MaxSize)
			if !ok {
				return
			}
			e, ok := resumedExpoHist(h, a.cfg.Histogram.MaxSize)
			if !ok {
				return
			}
			st.next.expo = e
			last, first = l, f
			break
		}
		if a.cfg.Histogram.Kind != HistogramExplicit {
			return
		}
		counts, sum, l, f, ok := a.resumer.ResumeHistogram(m, labelPairs(labelsOf(r)), res, a.bounds)
		if !ok || len(counts) != len(a.bounds)+1 || math.IsNaN(sum) || math.IsInf(sum, 0) {
			return
		}
		h := newExplicitHist(len(a.bounds))
		copy(h.counts, counts)
		for _, c := range counts {
			h.count += c
		}
		h.sum = sum
		h.noMinMax = true // not stored
		st.next.hist = h
		last, first = l, f
	case pb.MetricType_METRIC_TYPE_SUMMARY:
		if m.Histogram != nil || m.Summary != nil {
			return
		}
		count, sum, l, f, ok := a.resumer.ResumeSummary(m, labelPairs(labelsOf(r)), res)
		if !ok || math.IsNaN(sum) || math.IsInf(sum, 0) {
			return
		}
		s := newSummaryState(a.cfg.Summary.RelativeAccuracy)
		s.count, s.sum = count, sum
		st.next.summary = s
		last, first = l, f
	default:
		return
	}
	st.next.last = last
	st.next.start = min(first, last) - msNanos
	st.resumed = true
	st.started = true
}

// labelPairs yields sorted labels.
func labelPairs(labels []kv) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, l := range labels {
			if !yield(l.k, l.v) {
				return
			}
		}
	}
}

// storedSeries is how many stored series one series of record m makes, as
// it counts toward limits.max_series_per_metric: a histogram with B buckets
// is B+2 (the buckets, _sum and _count), a summary its quantiles+2, an
// exponential (native) histogram and other types 1.
func (a *Accumulator) storedSeries(m *pb.MetricData) int64 {
	switch m.Type {
	case pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER:
		if h := m.Histogram; h != nil {
			if h.Exponential != nil {
				return 1
			}
			return int64(len(h.ExplicitBounds)) + 1 + 2
		}
		if m.Summary == nil && a.cfg.Histogram.Kind != HistogramExponential {
			return int64(len(a.bounds)) + 1 + 2
		}
		return 1
	case pb.MetricType_METRIC_TYPE_SUMMARY:
		if s := m.Summary; s != nil {
			return int64(len(s.Quantiles)) + 2
		}
		return int64(len(a.cfg.Summary.Quantiles)) + 2
	}
	return 1
}

// applyOne is applySeries for a series with one record in the call.
func (a *Accumulator) applyOne(st *staged, b *Batch, r *record) {
	last := st.next.last
	ts := max(r.ts, last)
	if st.target == nil && !st.resumed {
		if r.m.StartTime != nil {
			st.next.start = unixNano(r.m.StartTime)
		} else {
			st.next.start = r.ts - msNanos
		}
	} else if ts/msNanos <= last/msNanos {
		if bumped := (last/msNanos + 1) * msNanos; bumped <= b.now+maxStep {
			ts = bumped
		}
	}
	a.applyRecord(st, r, last)
	st.ts = ts
}

// applySeries applies the records of one series, sorted by time, to its
// staged state and places its points (see Apply for the timestamp rules).
func (a *Accumulator) applySeries(st *staged, b *Batch, recs []int32) {
	last := st.next.last // the last committed point (0 for a new series)
	prev := last         // the previous point: committed, or of this call
	open := false        // st holds a point of this call
	if st.target == nil && !st.resumed {
		if m := b.recs[recs[0]].m; m.StartTime != nil {
			st.next.start = unixNano(m.StartTime)
		} else {
			st.next.start = b.recs[recs[0]].ts - msNanos
		}
	}
	for j := 0; j < len(recs); {
		// the records of one millisecond (after moving old ones to last)
		ts := max(b.recs[recs[j]].ts, last)
		k := j + 1
		for k < len(recs) && max(b.recs[recs[k]].ts, last)/msNanos == ts/msNanos {
			ts = max(b.recs[recs[k]].ts, last)
			k++
		}
		switch {
		case open && ts/msNanos <= st.ts/msNanos:
			if bumped := (st.ts/msNanos + 1) * msNanos; bumped <= b.now+maxStep {
				st.closePoint()
				prev = st.ts
				ts = bumped
			} else {
				ts = st.ts // merge into the open point
			}
		case open:
			st.closePoint()
			prev = st.ts
		case (st.target != nil || st.resumed) && ts/msNanos <= last/msNanos:
			if bumped := (last/msNanos + 1) * msNanos; bumped <= b.now+maxStep {
				ts = bumped
			}
		}
		for _, ri := range recs[j:k] {
			a.applyRecord(st, &b.recs[ri], prev)
		}
		st.ts = ts
		open = true
		j = k
	}
}

// closePoint moves the open point of st into st.multi.prior; the state goes on
// from it (copied on the next write).
func (st *staged) closePoint() {
	st.multi.prior = append(st.multi.prior, point{
		ts: st.ts, start: st.next.start, total: st.next.total, delta: st.delta,
		hist: st.next.hist, expo: st.next.expo, summary: st.next.summary,
		dhist: st.dhist, dexpo: st.dexpo, pre: st.pre,
	})
	st.delta = 0
	st.dhist, st.dexpo, st.pre = nil, nil, nil
	st.cloned = false
}

// applyRecord applies record r to the staged state of its series; prev is the
// time of the series' previous point.
func (a *Accumulator) applyRecord(st *staged, r *record, prev int64) {
	m := r.m
	switch m.Type {
	case pb.MetricType_METRIC_TYPE_COUNTER:
		if m.Cumulative {
			switch {
			case !st.started:
				st.delta += m.Value
			case m.Value < st.next.total: // reset
				st.next.start = max(prev, st.next.start)
				st.delta += m.Value
			default:
				st.delta += m.Value - st.next.total
			}
			if m.StartTime != nil {
				st.next.start = unixNano(m.StartTime)
			}
			st.next.total = m.Value
		} else {
			inc := m.Value * r.weight
			st.next.total += inc
			st.delta += inc
		}
		st.started = true
	case pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER, pb.MetricType_METRIC_TYPE_SUMMARY:
		if m.Histogram != nil || m.Summary != nil {
			st.pre = m
			if m.StartTime != nil {
				st.next.start = unixNano(m.StartTime)
			}
			return
		}
		n := uint64(math.Round(r.weight))
		if len(m.Observations) > 0 {
			for _, v := range m.Observations {
				a.observe(st, m.Type, v, n)
			}
		} else {
			a.observe(st, m.Type, m.Value, n)
		}
	}
}

func (a *Accumulator) observe(st *staged, t pb.MetricType, v float64, n uint64) {
	if t == pb.MetricType_METRIC_TYPE_SUMMARY {
		if !st.cloned {
			if st.next.summary == nil {
				st.next.summary = newSummaryState(a.cfg.Summary.RelativeAccuracy)
			} else {
				st.next.summary = st.next.summary.clone()
			}
			st.cloned = true
		}
		st.next.summary.observe(v, n)
		return
	}
	delta := a.cfg.HistogramTemporality == TemporalityDelta
	if a.cfg.Histogram.Kind == HistogramExponential {
		var e *expoHist
		switch {
		case delta:
			if st.dexpo == nil {
				st.dexpo = newExpoHist(a.cfg.Histogram.MaxSize)
			}
			e = st.dexpo
		default:
			if !st.cloned {
				if st.next.expo == nil {
					st.next.expo = newExpoHist(a.cfg.Histogram.MaxSize)
				} else {
					st.next.expo = st.next.expo.clone()
				}
				st.cloned = true
			}
			e = st.next.expo
		}
		e.observe(v, n)
		return
	}
	var h *explicitHist
	switch {
	case delta:
		if st.dhist == nil {
			st.dhist = newExplicitHist(len(a.bounds))
		}
		h = st.dhist
	default:
		if !st.cloned {
			if st.next.hist == nil {
				st.next.hist = newExplicitHist(len(a.bounds))
			} else {
				st.next.hist = st.next.hist.clone()
			}
			st.cloned = true
		}
		h = st.next.hist
	}
	h.observe(a.bounds, v, n)
}

// Sweep drops the state of series without records since before now-SeriesTTL
// (and forgets such gauge series) and returns how many were dropped.
func (a *Accumulator) Sweep() int {
	cutoff := a.now().Add(-a.cfg.SeriesTTL).UnixNano()
	dropped := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for k, s := range sh.m {
			if s.lastSeen < cutoff {
				s.dead = true
				delete(sh.m, k)
				s.name.series.Add(-s.weight)
				dropped++
			}
		}
		sh.mu.Unlock()
	}
	return dropped + a.gauges.sweep(cutoff)
}

// SeriesCount returns the number of series holding state.
func (a *Accumulator) SeriesCount() int {
	n := 0
	for i := range a.shards {
		a.shards[i].mu.Lock()
		n += len(a.shards[i].m)
		a.shards[i].mu.Unlock()
	}
	return n
}

// CounterTotal returns the committed running total of a counter series (tests
// and diagnostics); ok is false when the series holds no state.
func (a *Accumulator) CounterTotal(key uint64) (total float64, ok bool) {
	sh := &a.shards[key%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.m[key]
	if s == nil {
		return 0, false
	}
	return s.total, true
}

// SeriesKey returns the key of item i (tests and diagnostics).
func (b *Batch) SeriesKey(i int) uint64 { return b.recs[i].key }

func (a *Accumulator) allowsNaN(name string) bool {
	return a.validator != nil && a.validator.AllowsNaN(name)
}
