package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// ErrClosed is returned by Stage after Close.
var ErrClosed = errors.New("store is closed")

// Txn is a staged batch: samples are in the appender, not yet visible.
type Txn struct {
	s    *Store
	app  storage.AppenderV2
	meta map[string]metadata.Metadata
	// points are the data points per family (see isDataPoint), for rates;
	// samples all stored samples.
	points  map[string]int
	samples int
	minT    int64
	entries []*metricEntry // metrics whose claims are not persisted yet

	md             pmetric.Metrics
	oldest, newest int64
	batch          *batchState
	refusal        *RefusedError
	refused        int
	rec            SampleRecorder
}

// SampleRecorder receives every sample a Txn stages, as the store will keep
// it (translated name and labels, metadata): the shared store mode writes
// them to its backend before the batch is acknowledged.
type SampleRecorder interface {
	// Sample is one staged sample; h or fh is set for a native histogram.
	Sample(ls labels.Labels, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, md metadata.Metadata)
}

// Stage checks md and translates it to Prometheus series (Prometheus' OTLP
// translator) in a new appender. If any sample of md would not be kept
// (outside Window, a duplicate timestamp, a name or label collision after
// translation, invalid UTF-8), Stage stages nothing and returns a
// *RefusedError. Delta sums and histograms are stored as their
// per-interval values (query them with sum_over_time, not rate).
func (s *Store) Stage(ctx context.Context, md pmetric.Metrics) (*Txn, error) {
	return s.StageTo(ctx, md, nil)
}

// StageTo is Stage that also hands every staged sample to rec (when not
// nil). rec sees the samples of a batch that is then refused: use what it
// recorded only when StageTo returned no error.
func (s *Store) StageTo(ctx context.Context, md pmetric.Metrics, rec SampleRecorder) (*Txn, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	t := &Txn{s: s, meta: map[string]metadata.Metadata{}, points: map[string]int{}, minT: math.MaxInt64, md: md, rec: rec}
	t.oldest, t.newest = s.windowMillis(time.Now())
	sc := scanner{s: s, oldest: t.oldest, newest: t.newest}
	if r := sc.scan(md); r != nil {
		s.rejected.Add(int64(r.Count))
		return nil, r
	}
	t.entries = sc.entries
	t.batch = getBatchState(sc.samples)
	t.app = &recordingAppender{AppenderV2: s.db.AppenderV2(ctx), txn: t}
	conv := s.convs.Get().(*otlptranslator.PrometheusConverter)
	conv.Reset(t.app)
	_, err := conv.FromMetrics(ctx, md, s.settings)
	conv.Reset(nil)
	s.convs.Put(conv)
	if t.refusal != nil {
		t.Rollback()
		r := *t.refusal
		r.Count = t.refused
		s.rejected.Add(int64(r.Count))
		return nil, &r
	}
	if r, n, derr := t.checkStoredDuplicates(ctx); r != nil || derr != nil {
		t.Rollback()
		if derr != nil {
			return nil, derr
		}
		r.Count = n
		s.rejected.Add(int64(n))
		return nil, r
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			t.Rollback()
			return nil, fmt.Errorf("stage batch: %w", ctxErr)
		}
		// empty metrics: nothing to store
		s.logger.Debug("Some metrics were not translated", zap.Error(err))
	}
	return t, nil
}

// Commit makes the staged samples visible and records the metadata and
// name claims they bring (journaled, so they survive a crash).
func (t *Txn) Commit() error {
	defer t.release()
	if err := t.app.Commit(); err != nil {
		return fmt.Errorf("commit samples to store: %w", err)
	}
	resets := t.countResets()
	for _, rs := range t.batch.all {
		t.s.last.storeMax(rs.ref, rs.t)
	}
	var err error
	if jerr := t.s.meta.commit(t.meta, t.entries); jerr != nil {
		err = fmt.Errorf("save metric metadata: %w", jerr)
	}
	t.s.stats.Add(t.points, t.samples)
	t.s.stats.AddResets(resets)
	if h := t.s.lateHook; h != nil && t.samples > 0 && t.minT < time.Now().Add(-t.s.lateAge).UnixMilli() {
		h(time.UnixMilli(t.minT))
	}
	return err
}

// counterSample is a staged float sample of a counter.
type counterSample struct {
	ref    storage.SeriesRef
	family string
	t      int64
	v      float64
}

// countResets counts, per family, the committed counter samples lower than
// their series' previous value (what PromQL's resets() counts), skipping
// samples older than their series' newest, and remembers each series' last
// value. The first sample of a series since start is not compared.
func (t *Txn) countResets() map[string]int {
	var out map[string]int
	for _, c := range t.batch.counters {
		if c.t < t.s.last.get(c.ref) {
			continue
		}
		bits := math.Float64bits(c.v)
		if bits == 0 { // 0 is "unknown": keep +0 as -0, equal in comparisons
			bits = math.Float64bits(math.Copysign(0, -1))
		}
		prev := t.s.counters.slot(c.ref).Swap(int64(bits))
		if prev != 0 && c.v < math.Float64frombits(uint64(prev)) {
			if out == nil {
				out = map[string]int{}
			}
			out[c.family]++
		}
	}
	return out
}

// Rollback discards the staged samples.
func (t *Txn) Rollback() {
	_ = t.app.Rollback()
	t.release()
}

func (t *Txn) release() {
	if t.batch != nil {
		putBatchState(t.batch)
		t.batch = nil
	}
}

// otelName returns the OTel name of the batch's metric stored as family.
func (t *Txn) otelName(family string) string {
	rms := t.md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if e, r := t.s.translate(m.Name(), m.Unit(), m.Type(), m.Type() == pmetric.MetricTypeSum && m.Sum().IsMonotonic()); r == nil && e.family == family {
					return m.Name()
				}
			}
		}
	}
	return family
}

// batchState finds samples of one batch that Commit would drop: two values
// of a series at one timestamp, or (without out-of-order ingestion) a
// sample older than another of its series in the batch. A bitset over
// series refs says which series may have an earlier sample in the batch;
// only those scan the batch's samples (refs are sequential, so distinct
// series of a batch rarely share a bit).
type batchState struct {
	bits []uint64
	mask uint64
	all  []refStaged
	ooo  []oooCandidate
	// counters are the float samples of counters, for reset counts
	counters []counterSample
}

type staged struct {
	t  int64
	v  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

type refStaged struct {
	ref storage.SeriesRef
	staged
}

func (a staged) same(b staged) bool {
	switch {
	case a.h != nil || b.h != nil:
		return a.h != nil && b.h != nil && a.h.Equals(b.h)
	case a.fh != nil || b.fh != nil:
		return a.fh != nil && b.fh != nil && a.fh.Equals(b.fh)
	}
	return math.Float64bits(a.v) == math.Float64bits(b.v)
}

var batchStates = sync.Pool{New: func() any { return &batchState{} }}

// getBatchState returns a state sized for about n samples (64 bits each).
func getBatchState(n int) *batchState {
	b := batchStates.Get().(*batchState)
	words := 64 // 4096 bits
	for words*64 < 64*n && words < 1<<18 {
		words *= 2
	}
	if cap(b.bits) < words {
		b.bits = make([]uint64, words)
	}
	b.bits = b.bits[:words]
	b.mask = uint64(words*64 - 1)
	return b
}

func putBatchState(b *batchState) {
	if len(b.all) > 1<<16 {
		return
	}
	clear(b.bits)
	clear(b.all) // drop histogram pointers
	b.all = b.all[:0]
	clear(b.ooo)
	b.ooo = b.ooo[:0]
	clear(b.counters)
	b.counters = b.counters[:0]
	batchStates.Put(b)
}

// seen marks ref and reports whether it may have been marked before.
func (b *batchState) seen(ref storage.SeriesRef) bool {
	i := uint64(ref) & b.mask
	w, bit := i>>6, uint64(1)<<(i&63)
	was := b.bits[w]&bit != 0
	b.bits[w] |= bit
	return was
}

// recordingAppender counts appended samples per metric family, keeps their
// metadata, and turns samples the TSDB refuses (now, or at Commit) into the
// batch's refusal. After the first refusal it appends nothing more and
// only counts.
type recordingAppender struct {
	storage.AppenderV2
	txn *Txn
}

func (a *recordingAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	txn := a.txn
	if txn.refusal != nil { // count what else is plainly outside the window
		if t < txn.oldest || t > txn.newest {
			txn.refused++
		}
		return 0, nil
	}
	family := opts.MetricFamilyName
	if family == "" {
		family = ls.Get(labels.MetricName)
	}
	if t < txn.oldest || t > txn.newest { // target_info spans a resource's points
		a.refuse(txn.s.windowRefusal(txn.otelName(family), t, txn.oldest, txn.newest))
		return 0, nil
	}
	r, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		var partial *storage.AppendPartialError
		if !errors.As(err, &partial) { // exemplars only: the sample is in
			a.refuse(a.appendRefusal(err, family, ls, t))
			return 0, nil
		}
	}
	if rr := a.inBatch(r, ls, family, staged{t: t, v: v, h: h, fh: fh}); rr != nil {
		a.refuse(rr)
		return 0, nil
	}
	if h == nil && fh == nil {
		if last := txn.s.last.get(r); last != 0 && t < last {
			txn.batch.ooo = append(txn.batch.ooo, oooCandidate{ls: ls, family: family, t: t, v: v})
		}
	}
	if h == nil && fh == nil && opts.Metadata.Type == model.MetricTypeCounter {
		txn.batch.counters = append(txn.batch.counters, counterSample{ref: r, family: family, t: t, v: v})
	}
	if _, ok := txn.meta[family]; !ok && opts.Metadata.Type != "" {
		txn.meta[family] = opts.Metadata
	}
	if txn.rec != nil {
		txn.rec.Sample(ls, t, v, h, fh, opts.Metadata)
	}
	if isDataPoint(family, ls, h, fh, opts.Metadata.Type) {
		txn.points[family]++
	}
	txn.samples++
	txn.minT = min(txn.minT, t)
	return r, nil
}

// isDataPoint says whether a stored sample stands for one data point in the
// ingest statistics (GetMetricsSummary's rates are data points per second):
// not a resource's target_info sample, and of a classic histogram or summary
// (many samples per point) only its _count sample.
func isDataPoint(family string, ls labels.Labels, h *histogram.Histogram, fh *histogram.FloatHistogram, typ model.MetricType) bool {
	if family == targetInfoName {
		return false
	}
	if h != nil || fh != nil {
		return true
	}
	switch typ {
	case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram, model.MetricTypeSummary:
		return ls.Get(labels.MetricName) == family+"_count"
	}
	return true
}

func (a *recordingAppender) refuse(r *RefusedError) {
	a.txn.refusal = r
	a.txn.refused++
}

// inBatch checks a sample against the earlier samples of its series in
// the batch: what the TSDB's Commit would drop without an error.
func (a *recordingAppender) inBatch(ref storage.SeriesRef, ls labels.Labels, family string, cur staged) *RefusedError {
	b := a.txn.batch
	if !b.seen(ref) {
		b.all = append(b.all, refStaged{ref: ref, staged: cur})
		return nil
	}
	maxT, found := int64(math.MinInt64), false
	for _, o := range b.all {
		if o.ref != ref {
			continue
		}
		found = true
		maxT = max(maxT, o.t)
		if o.t == cur.t && !o.same(cur) {
			return &RefusedError{
				Reason: ReasonDuplicate, Metric: a.txn.otelName(family), Field: "timestamp",
				Message: fmt.Sprintf("the batch has two different values of series %s at %s; the store keeps one value per series and timestamp.", ls.String(), rfc(cur.t)),
				Fix:     "send one value per series and timestamp (check for two points with the same attributes).",
			}
		}
	}
	b.all = append(b.all, refStaged{ref: ref, staged: cur})
	if found && cur.t < maxT && a.txn.s.cfg.OutOfOrderWindow <= 0 {
		return &RefusedError{
			Reason: ReasonTooOld, Metric: a.txn.otelName(family), Field: "timestamp",
			Message: fmt.Sprintf("timestamp %s of series %s is older than another point of the same series in the batch (%s), and out-of-order ingestion is off.", rfc(cur.t), ls.String(), rfc(maxT)),
			Fix:     "send the points of a series in time order, or set store.out_of_order_window.",
		}
	}
	return nil
}

// appendRefusal describes an error of the TSDB appender.
func (a *recordingAppender) appendRefusal(err error, family string, ls labels.Labels, t int64) *RefusedError {
	txn := a.txn
	metric := txn.otelName(family)
	switch {
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
		// the window may have moved since Stage began (an empty head starts
		// at the batch's first sample)
		oldest, newest := txn.s.windowMillis(time.Now())
		r := txn.s.windowRefusal(metric, t, oldest, newest)
		if t >= oldest {
			r.Message = fmt.Sprintf("timestamp %s of series %s is older than the series' last sample and more than store.out_of_order_window (%s) behind the store's newest sample (%s).",
				rfc(t), ls.String(), txn.s.cfg.OutOfOrderWindow, rfc(txn.s.db.Head().MaxTime()))
		}
		return r
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return &RefusedError{
			Reason: ReasonTooOld, Metric: metric, Field: "timestamp",
			Message: fmt.Sprintf("timestamp %s of series %s is not newer than the series' last stored sample, and out-of-order ingestion is off.", rfc(t), ls.String()),
			Fix:     "send the points of a series in time order, or set store.out_of_order_window.",
		}
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return &RefusedError{
			Reason: ReasonDuplicate, Metric: metric, Field: "timestamp",
			Message: fmt.Sprintf("series %s already has another value at %s.", ls.String(), rfc(t)),
			Fix:     "send one value per series and timestamp; resend only the values that were stored.",
		}
	}
	return &RefusedError{
		Reason: ReasonInvalid, Metric: metric, Field: "value",
		Message: fmt.Sprintf("the store cannot keep a point of series %s: %v.", ls.String(), err),
		Fix:     "fix the point (see the message) or drop it at the source.",
	}
}

// scanner checks a batch before anything is appended: invalid UTF-8, time
// window, label keys that collide after translation, and stored names
// (claims).
type scanner struct {
	s              *Store
	oldest, newest int64
	first          *RefusedError
	count          int // samples refused
	samples        int // samples checked
	entries        []*metricEntry
	pending        []pendingMetric
	lc             labelChecker
}

type pendingMetric struct {
	key     metricKey
	e       *metricEntry
	samples int
}

func (sc *scanner) refuse(r *RefusedError) {
	if sc.first == nil {
		sc.first = r
	}
}

// scan returns the refusal of md, or nil after claiming its new names.
func (sc *scanner) scan(md pmetric.Metrics) *RefusedError {
	sc.lc.s = sc.s
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		var rl resourceLabels
		resR := sc.checkResource(rm.Resource().Attributes(), &rl)
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			sm := sms.At(j)
			scopeR := resR
			if scopeR == nil {
				scopeR = checkScope(sm.Scope())
			}
			ms := sm.Metrics()
			for k := range ms.Len() {
				sc.scanMetric(ms.At(k), scopeR, rl)
			}
		}
	}
	sc.claim()
	if sc.first != nil {
		r := *sc.first
		r.Count = sc.count
		return &r
	}
	return nil
}

func (sc *scanner) checkResource(attrs pcommon.Map, rl *resourceLabels) *RefusedError {
	var r *RefusedError
	nonIdentifying := 0
	attrs.Range(func(k string, v pcommon.Value) bool {
		if r = checkAttrUTF8("", "resource.attributes", k, k); r != nil {
			return false
		}
		if v.Type() == pcommon.ValueTypeStr {
			if r = checkAttrUTF8("", "resource.attributes", k, v.Str()); r != nil {
				return false
			}
		}
		switch k {
		case "service.name":
			rl.job = k
		case "service.instance.id":
			rl.instance = k
		case "service.namespace":
		default:
			nonIdentifying++
		}
		return true
	})
	if r != nil || nonIdentifying == 0 || (rl.job == "" && rl.instance == "") || sc.s.settings.DisableTargetInfo {
		return r
	}
	// the resource becomes a target_info series: its other attributes are labels
	sc.lc.reset()
	attrs.Range(func(k string, _ pcommon.Value) bool {
		switch k {
		case "service.name", "service.instance.id", "service.namespace":
		default:
			sc.lc.add(k, "resource.attributes")
		}
		return true
	})
	return sc.lc.finish("", extraLabels{}, *rl)
}

func checkScope(s pcommon.InstrumentationScope) *RefusedError {
	if r := checkUTF8("", s.Name(), "scope.name"); r != nil {
		return r
	}
	if r := checkUTF8("", s.Version(), "scope.version"); r != nil {
		return r
	}
	var r *RefusedError
	s.Attributes().Range(func(k string, v pcommon.Value) bool {
		if r = checkAttrUTF8("", "scope.attributes", k, k); r != nil {
			return false
		}
		if v.Type() == pcommon.ValueTypeStr {
			r = checkAttrUTF8("", "scope.attributes", k, v.Str())
		}
		return r == nil
	})
	return r
}

func (sc *scanner) scanMetric(m pmetric.Metric, parentR *RefusedError, rl resourceLabels) {
	name := m.Name()
	typ := m.Type()
	var temporality pmetric.AggregationTemporality
	monotonic := false
	switch typ {
	case pmetric.MetricTypeSum:
		temporality, monotonic = m.Sum().AggregationTemporality(), m.Sum().IsMonotonic()
	case pmetric.MetricTypeHistogram:
		temporality = m.Histogram().AggregationTemporality()
	case pmetric.MetricTypeExponentialHistogram:
		temporality = m.ExponentialHistogram().AggregationTemporality()
	}
	if !sc.s.stored(typ, temporality) {
		return
	}
	metricR := parentR
	if metricR != nil && metricR.Metric == "" {
		r := *metricR
		r.Metric = name
		metricR = &r
	}
	if metricR == nil {
		metricR = checkUTF8(name, name, "name")
	}
	if metricR == nil {
		metricR = checkUTF8(name, m.Unit(), "unit")
	}
	if metricR == nil {
		metricR = checkUTF8(name, m.Description(), "description")
	}
	var pend *pendingMetric
	if metricR == nil {
		key := metricKey{name: name, unit: m.Unit(), kind: kindOf(typ, monotonic)}
		if e := sc.s.lookup(key); e != nil {
			if !e.persisted.Load() {
				sc.entries = append(sc.entries, e)
			}
		} else if e, r := sc.s.translate(name, m.Unit(), typ, monotonic); r != nil {
			metricR = r
		} else {
			sc.pending = append(sc.pending, pendingMetric{key: key, e: e})
			pend = &sc.pending[len(sc.pending)-1]
		}
	}
	ex := extrasFor(typ, sc.s.settings.ConvertHistogramsToNHCB)
	point := func(ts pcommon.Timestamp, attrs pcommon.Map, samples int) {
		sc.samples += samples
		r := metricR
		if r == nil {
			r = sc.checkPoint(name, ts, attrs, ex, rl)
		}
		if r != nil {
			sc.refuse(r)
			sc.count += samples
		} else if pend != nil {
			pend.samples += samples
		}
	}
	switch typ {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			point(dp.Timestamp(), dp.Attributes(), 1)
		}
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			point(dp.Timestamp(), dp.Attributes(), 1)
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			n := 1
			if !sc.s.settings.ConvertHistogramsToNHCB {
				n = 2 + min(dp.ExplicitBounds().Len(), dp.BucketCounts().Len())
				if dp.HasSum() {
					n++
				}
			}
			point(dp.Timestamp(), dp.Attributes(), n)
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			point(dp.Timestamp(), dp.Attributes(), 1)
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			dp := dps.At(i)
			point(dp.Timestamp(), dp.Attributes(), 2+dp.QuantileValues().Len())
		}
	}
}

// checkPoint checks one data point: timestamp, UTF-8, label keys.
func (sc *scanner) checkPoint(metric string, ts pcommon.Timestamp, attrs pcommon.Map, ex extraLabels, rl resourceLabels) *RefusedError {
	t := int64(ts) / 1e6
	if t < sc.oldest || t > sc.newest {
		return sc.s.windowRefusal(metric, t, sc.oldest, sc.newest)
	}
	sc.lc.reset()
	for k, v := range attrs.All() {
		if !sc.lc.add(k, "attributes") { // canonical keys are ASCII
			if r := checkAttrUTF8(metric, "attributes", k, k); r != nil {
				return r
			}
		}
		if v.Type() == pcommon.ValueTypeStr {
			if r := checkAttrUTF8(metric, "attributes", k, v.Str()); r != nil {
				return r
			}
		}
	}
	return sc.lc.finish(metric, ex, rl)
}

// claim checks the batch's new metrics against the stored names and each
// other and, when the whole batch passes, claims their names.
func (sc *scanner) claim() {
	if len(sc.pending) == 0 {
		return
	}
	x := sc.s.meta
	x.mu.Lock()
	defer x.mu.Unlock()
	overlay := make(map[string]claim, 4*len(sc.pending))
	ok := make([]bool, len(sc.pending))
	for i := range sc.pending {
		p := &sc.pending[i]
		if e := x.cache[p.key]; e != nil { // claimed by a concurrent batch
			p.e = e
			ok[i] = true
			continue
		}
		if r := sc.s.checkClaims(p.e, overlay); r != nil {
			sc.refuse(r)
			sc.count += p.samples
			continue
		}
		for _, sn := range p.e.series {
			overlay[sn] = p.e.owner
		}
		ok[i] = true
	}
	if sc.first != nil {
		return
	}
	for i := range sc.pending {
		p := &sc.pending[i]
		if !ok[i] {
			continue
		}
		if x.cache[p.key] != p.e {
			persisted := true
			for _, sn := range p.e.series {
				if _, had := x.claims[sn]; !had {
					x.claims[sn] = p.e.owner
					persisted = false
				}
			}
			p.e.persisted.Store(persisted)
			x.cache[p.key] = p.e
			x.gen.Add(1)
		}
		if !p.e.persisted.Load() {
			sc.entries = append(sc.entries, p.e)
		}
	}
}
