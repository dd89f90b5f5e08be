package metricsservicereceiver

import (
	"context"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/value"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// storeResumer gives the accumulator the stored state of a counter or
// histogram series it starts (after a restart, or after its idle state was
// dropped), so their totals survive both. It asks the store for the series the
// record's point becomes, with the store's own name translation.
type storeResumer struct {
	st     *store.Store
	logger *zap.Logger
	warned *atomic.Bool // a read error was logged (once: not per series)
	// node is the identity the receiver stamps on running totals in a
	// fleet (shared store): the stored series carry it, so the lookup does.
	node nodeIdentity
	// refused counts the stored series that were found but could not be
	// resumed exactly, by reason (nil: not counted).
	refused *resumeRefusals
}

// resumeRefusals counts, by reason, the stored series that were found but
// not resumed because their stored state cannot be told exactly (the
// series then starts from zero, as without a store), and logs each reason
// once.
type resumeRefusals struct {
	mu sync.Mutex
	n  map[string]int64
}

func newResumeRefusals() *resumeRefusals { return &resumeRefusals{n: map[string]int64{}} }

// counts returns the refusals so far by reason.
func (r *resumeRefusals) counts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.n)
}

// refuse notes that the stored state of a series of m was not resumed, and
// why; it returns false (for the callers' ok).
func (r storeResumer) refuse(m *pb.MetricData, reason string) bool {
	if r.refused == nil {
		return false
	}
	r.refused.mu.Lock()
	r.refused.n[reason]++
	first := r.refused.n[reason] == 1
	r.refused.mu.Unlock()
	if first {
		r.logger.Warn("A stored series cannot be resumed exactly; it starts again from zero with a new start time (logged once per reason)",
			zap.String("metric", m.Name), zap.String("reason", reason))
	}
	return false
}

var _ convert.Resumer = storeResumer{}

// ResumeCounter implements convert.Resumer.
func (r storeResumer) ResumeCounter(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (total float64, last, first int64, ok bool) {
	md, pm := lookupMetric(m, res)
	sum := pm.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	putPairs(dp.Attributes(), labels)
	r.node.put(dp.Attributes())
	smp, ok, err := r.st.LastSample(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return 0, 0, 0, false
	}
	if !ok {
		return 0, 0, 0, false
	}
	return smp.Value, smp.Last * msNanos, smp.First * msNanos, true
}

// ResumeHistogram implements convert.Resumer. It reads the classic series
// of the histogram (each bucket, _count, _sum) and resumes only when all of
// them are stored at the same time and agree (the store writes them in one
// commit); a histogram stored as a native histogram (store.histograms:
// native) is not resumed.
func (r storeResumer) ResumeHistogram(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, bounds []float64) (counts []uint64, sum float64, last, first int64, ok bool) {
	md, pm := lookupMetric(m, res)
	h := pm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(make([]uint64, len(bounds)+1))
	dp.SetSum(0)
	putPairs(dp.Attributes(), labels)
	r.node.put(dp.Attributes())
	got, err := r.st.LastSamples(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return nil, 0, 0, 0, false
	}
	if len(got) == 0 {
		// with store.histograms: native, one native histogram with
		// custom buckets
		return r.resumeCustomBuckets(m, md, bounds)
	}
	if len(got) != len(bounds)+3 {
		return nil, 0, 0, 0, false // not stored, or not all of it
	}
	cum := make([]float64, len(bounds)+1)
	seen := make([]bool, len(bounds)+1)
	var count float64
	last, first = got[0].Last, got[0].First
	for _, s := range got {
		if s.Last != last {
			return nil, 0, 0, 0, false // not one commit
		}
		first = min(first, s.First)
		name := s.Labels.Get(pmodelName)
		switch le := s.Labels.Get(pmodelBucket); {
		case le != "":
			i := bucketIndex(le, bounds)
			if i < 0 || seen[i] {
				return nil, 0, 0, 0, false
			}
			cum[i], seen[i] = s.Value, true
		case strings.HasSuffix(name, "_count"):
			count = s.Value
		case strings.HasSuffix(name, "_sum"):
			sum = s.Value
		}
	}
	counts = make([]uint64, len(cum))
	prev := 0.0
	for i, c := range cum {
		if !seen[i] || c < prev || c != math.Trunc(c) {
			return nil, 0, 0, 0, false
		}
		counts[i] = uint64(c - prev)
		prev = c
	}
	if prev != count {
		return nil, 0, 0, 0, false
	}
	return counts, sum, last * msNanos, first * msNanos, true
}

// resumeCustomBuckets is ResumeHistogram for a histogram the store keeps
// as a native histogram with custom buckets (store.histograms: native).
func (r storeResumer) resumeCustomBuckets(m *pb.MetricData, md pmetric.Metrics, bounds []float64) (counts []uint64, sum float64, last, first int64, ok bool) {
	smp, ok, err := r.st.LastHistogram(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return nil, 0, 0, 0, false
	}
	if !ok {
		return nil, 0, 0, 0, false
	}
	counts, why := customBucketsOf(smp.Histogram, bounds)
	if why != "" {
		return nil, 0, 0, 0, r.refuse(m, "histogram: "+why)
	}
	return counts, smp.Histogram.Sum, smp.Last * msNanos, smp.First * msNanos, true
}

// customBucketsOf is the observation count of each bucket (not cumulative;
// len(bounds)+1) of the native histogram with custom buckets h, or why it
// is not the histogram of these bounds.
func customBucketsOf(h *histogram.Histogram, bounds []float64) ([]uint64, string) {
	switch {
	case h == nil || !h.UsesCustomBuckets():
		return nil, "the stored histogram has no custom buckets"
	case !slices.Equal(h.CustomValues, bounds):
		return nil, "the stored bucket bounds are not aggregation.histogram.buckets"
	case math.IsNaN(h.Sum) || math.IsInf(h.Sum, 0):
		return nil, "the stored sum is not finite"
	}
	counts := make([]uint64, len(bounds)+1)
	var total uint64
	for it := h.PositiveBucketIterator(); it.Next(); {
		b := it.At()
		if b.Index < 0 || int(b.Index) >= len(counts) {
			return nil, "a stored bucket is outside the bounds"
		}
		counts[b.Index] += b.Count
		total += b.Count
	}
	if total != h.Count {
		return nil, "the stored bucket counts do not add up to the count"
	}
	return counts, ""
}

// ResumeSummary implements convert.Resumer. It reads the _count and _sum
// series of the summary and resumes only when both are stored at the same
// time (the store writes them in one commit) and the count is a whole
// number.
func (r storeResumer) ResumeSummary(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string) (count uint64, sum float64, last, first int64, ok bool) {
	md, pm := lookupMetric(m, res)
	dp := pm.SetEmptySummary().DataPoints().AppendEmpty() // (no quantiles: their series are not read)
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	putPairs(dp.Attributes(), labels)
	r.node.put(dp.Attributes())
	got, err := r.st.LastSamples(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return 0, 0, 0, 0, false
	}
	if len(got) == 0 {
		return 0, 0, 0, 0, false // not stored
	}
	if len(got) != 2 {
		return 0, 0, 0, 0, r.refuse(m, "summary: _count or _sum not stored")
	}
	var c float64
	var haveCount, haveSum bool
	last, first = got[0].Last, got[0].First
	for _, s := range got {
		if s.Last != last {
			return 0, 0, 0, 0, r.refuse(m, "summary: _count and _sum not of one time")
		}
		first = min(first, s.First)
		// (the names differ in their last suffix even when the metric's
		// own name ends in _count or _sum)
		switch name := s.Labels.Get(pmodelName); {
		case strings.HasSuffix(name, "_count"):
			c, haveCount = s.Value, true
		case strings.HasSuffix(name, "_sum"):
			sum, haveSum = s.Value, true
		}
	}
	switch {
	case !haveCount || !haveSum:
		return 0, 0, 0, 0, r.refuse(m, "summary: _count or _sum not stored")
	case c < 0 || c != math.Trunc(c) || c > 1<<53:
		return 0, 0, 0, 0, r.refuse(m, "summary: _count is not a whole number of observations")
	case math.IsNaN(sum) || math.IsInf(sum, 0):
		return 0, 0, 0, 0, r.refuse(m, "summary: _sum is not finite")
	}
	return uint64(c), sum, last * msNanos, first * msNanos, true
}

// ResumeExponential implements convert.Resumer. It reads the newest native
// histogram of the series (the store keeps an exponential histogram as one)
// and resumes only when it is exactly the histogram the accumulator had:
// see exponentialOf.
func (r storeResumer) ResumeExponential(m *pb.MetricData, labels iter.Seq2[string, string], res map[string]string, maxSize int32) (h convert.ExponentialState, last, first int64, ok bool) {
	md, pm := lookupMetric(m, res)
	eh := pm.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := eh.DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	putPairs(dp.Attributes(), labels)
	r.node.put(dp.Attributes())
	smp, ok, err := r.st.LastHistogram(context.Background(), md)
	if err != nil {
		r.readFailed(m, err)
		return convert.ExponentialState{}, 0, 0, false
	}
	if !ok {
		return convert.ExponentialState{}, 0, 0, false
	}
	h, why := exponentialOf(smp.Histogram, maxSize)
	if why != "" {
		return convert.ExponentialState{}, 0, 0, r.refuse(m, "exponential histogram: "+why)
	}
	return h, smp.Last * msNanos, smp.First * msNanos, true
}

// storedZeroThreshold is the zero threshold the store's OTLP translation
// gives every native histogram it makes of an exponential histogram
// (whose zero bucket holds exact zeros only).
const storedZeroThreshold = 1e-128

// exponentialOf is the exponential histogram (with at most maxSize buckets
// per range) the store's OTLP translation turned into the native histogram
// h, or why that cannot be told exactly. The translation keeps the scale,
// up to 8 (histogram.ExponentialSchemaMax): a higher scale is stored
// downscaled to 8, so a histogram of schema 8 resumes only when its buckets
// prove the accumulator's scale was 8 (at 9 one of its ranges would not fit
// in maxSize buckets). Bucket index i of the native histogram is i-1 in
// OpenTelemetry's layout.
func exponentialOf(h *histogram.Histogram, maxSize int32) (convert.ExponentialState, string) {
	switch {
	case h == nil:
		return convert.ExponentialState{}, "no histogram"
	case !histogram.IsExponentialSchema(h.Schema):
		return convert.ExponentialState{}, "schema " + strconv.Itoa(int(h.Schema)) + " is not an exponential one"
	case h.ZeroThreshold != storedZeroThreshold:
		return convert.ExponentialState{}, "zero threshold " + strconv.FormatFloat(h.ZeroThreshold, 'g', -1, 64) + " is not the translation's"
	case value.IsStaleNaN(h.Sum):
		return convert.ExponentialState{}, "the newest sample is a staleness marker"
	case math.IsNaN(h.Sum) || math.IsInf(h.Sum, 0):
		return convert.ExponentialState{}, "sum is not finite"
	}
	out := convert.ExponentialState{Scale: h.Schema, ZeroCount: h.ZeroCount, Count: h.Count, Sum: h.Sum}
	var why string
	var pos, neg int32 // index ranges (hi-lo)
	out.PositiveOffset, out.PositiveCounts, pos, why = denseBuckets(h.PositiveSpans, h.PositiveBuckets, maxSize)
	if why != "" {
		return convert.ExponentialState{}, "positive buckets: " + why
	}
	out.NegativeOffset, out.NegativeCounts, neg, why = denseBuckets(h.NegativeSpans, h.NegativeBuckets, maxSize)
	if why != "" {
		return convert.ExponentialState{}, "negative buckets: " + why
	}
	total := h.ZeroCount
	for _, cs := range [][]uint64{out.PositiveCounts, out.NegativeCounts} {
		for _, c := range cs {
			if total+c < total {
				return convert.ExponentialState{}, "counts overflow"
			}
			total += c
		}
	}
	if total != h.Count {
		return convert.ExponentialState{}, "bucket and zero counts do not add up to the count"
	}
	if h.Schema == histogram.ExponentialSchemaMax && total != h.ZeroCount &&
		2*int64(pos)-1 < int64(maxSize) && 2*int64(neg)-1 < int64(maxSize) {
		return convert.ExponentialState{}, "schema 8 is the store's highest: the accumulator's scale may have been higher"
	}
	return out, ""
}

// denseBuckets decodes the spans and delta-encoded counts of one range of
// a native histogram into OpenTelemetry's dense layout: the index of the
// first bucket (native index - 1), the counts, and the index range
// (last-first, 0 without buckets); or why it cannot (negative counts, more
// than maxSize buckets).
func denseBuckets(spans []histogram.Span, deltas []int64, maxSize int32) (offset int32, counts []uint64, span int32, why string) {
	n := 0
	for _, sp := range spans {
		n += int(sp.Length)
	}
	if n != len(deltas) {
		return 0, nil, 0, "spans and counts disagree"
	}
	type bucket struct {
		idx int64
		n   uint64
	}
	var bs []bucket
	var idx, cur int64
	d := 0
	for _, sp := range spans {
		idx += int64(sp.Offset)
		for range sp.Length {
			cur += deltas[d]
			d++
			if cur < 0 {
				return 0, nil, 0, "a negative bucket count"
			}
			if cur > 0 {
				bs = append(bs, bucket{idx - 1, uint64(cur)})
			}
			idx++
		}
	}
	if len(bs) == 0 {
		return 0, nil, 0, ""
	}
	lo, hi := bs[0].idx, bs[len(bs)-1].idx
	if hi-lo >= int64(maxSize) {
		return 0, nil, 0, "more buckets than histogram.max_size (" + strconv.Itoa(int(maxSize)) + ")"
	}
	if lo < math.MinInt32 || hi > math.MaxInt32 {
		return 0, nil, 0, "an index out of range"
	}
	counts = make([]uint64, hi-lo+1)
	for _, b := range bs {
		counts[b.idx-lo] += b.n
	}
	return int32(lo), counts, int32(hi - lo), ""
}

const (
	msNanos      = int64(time.Millisecond)
	pmodelName   = "__name__"
	pmodelBucket = "le"
)

// bucketIndex is the index of the bucket whose le label is le, or -1.
func bucketIndex(le string, bounds []float64) int {
	v, err := strconv.ParseFloat(le, 64)
	if err != nil {
		return -1
	}
	if math.IsInf(v, 1) {
		return len(bounds)
	}
	for i, b := range bounds {
		if b == v {
			return i
		}
	}
	return -1
}

// lookupMetric returns metrics of one resource (res) and one metric named
// and with the unit records like m become.
func lookupMetric(m *pb.MetricData, res map[string]string) (pmetric.Metrics, pmetric.Metric) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rattrs := rm.Resource().Attributes()
	for k, v := range res {
		rattrs.PutStr(k, v)
	}
	pm := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	pm.SetName(m.Name)
	pm.SetUnit(convert.PdataUnit(m))
	return md, pm
}

func putPairs(attrs pcommon.Map, labels iter.Seq2[string, string]) {
	for k, v := range labels {
		attrs.PutStr(k, v)
	}
}

// readFailed logs a store read error once: the series starts from zero, as
// without a store.
func (r storeResumer) readFailed(m *pb.MetricData, err error) {
	if r.warned.CompareAndSwap(false, true) {
		r.logger.Warn("Could not read the stored state of a series; it starts from zero (logged once)",
			zap.String("metric", m.Name), zap.Error(err))
	}
}
