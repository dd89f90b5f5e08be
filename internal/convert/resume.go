package convert

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// ExponentialState is a stored exponential histogram in OpenTelemetry's
// layout: what a Resumer gives back for an exponential histogram series.
// Bucket i of a range counts the observations in (base^(offset+i),
// base^(offset+i+1)], base = 2^(2^-Scale), by absolute value.
type ExponentialState struct {
	// Scale is the histogram's scale (resolution).
	Scale int32
	// ZeroCount is the number of observations that were zero.
	ZeroCount uint64
	// PositiveOffset is the index of PositiveCounts[0].
	PositiveOffset int32
	// PositiveCounts are the counts of the positive buckets (not cumulative).
	PositiveCounts []uint64
	// NegativeOffset is the index of NegativeCounts[0].
	NegativeOffset int32
	// NegativeCounts are the counts of the negative buckets (not cumulative).
	NegativeCounts []uint64
	// Count is the number of observations: ZeroCount and every bucket's.
	Count uint64
	// Sum is the sum of the observations.
	Sum float64
}

// Scales of go-expohisto's mappings (logarithm.MaxScale, exponent.MinScale).
const (
	expoMaxScale = 20
	expoMinScale = -10
)

// expoBase is the stored part of a resumed exponential histogram.
type expoBase struct {
	scale            int32 // of pos and neg (when they are not empty)
	zeroCount, count uint64
	pos, neg         expoRange
}

// expoRange is a dense range of buckets: counts[i] is bucket offset+i.
// Its first and last counts are not zero.
type expoRange struct {
	offset int32
	counts []uint64
}

// trimmedRange is the buckets without the empty ones at either end.
func trimmedRange(offset int32, counts []uint64) expoRange {
	i, j := 0, len(counts)
	for i < j && counts[i] == 0 {
		i++
	}
	for j > i && counts[j-1] == 0 {
		j--
	}
	if i == j {
		return expoRange{}
	}
	return expoRange{offset: offset + int32(i), counts: append([]uint64(nil), counts[i:j]...)}
}

// resumedExpoHist is the exponential histogram (of at most maxSize buckets
// per range) that goes on from the stored state s, or false when s is not
// one that histogram could have been: a sum that is not finite, counts that
// do not add up to the count, a scale outside go-expohisto's, or a range
// wider than maxSize buckets (it was kept at another scale).
func resumedExpoHist(s ExponentialState, maxSize int32) (*expoHist, bool) {
	if math.IsNaN(s.Sum) || math.IsInf(s.Sum, 0) {
		return nil, false
	}
	b := &expoBase{
		scale: s.Scale, zeroCount: s.ZeroCount, count: s.Count,
		pos: trimmedRange(s.PositiveOffset, s.PositiveCounts),
		neg: trimmedRange(s.NegativeOffset, s.NegativeCounts),
	}
	total := s.ZeroCount
	for _, r := range []expoRange{b.pos, b.neg} {
		if len(r.counts) > int(maxSize) || int64(r.offset)+int64(len(r.counts)) > math.MaxInt32 {
			return nil, false
		}
		for _, c := range r.counts {
			if total+c < total {
				return nil, false // overflows
			}
			total += c
		}
	}
	if total != s.Count {
		return nil, false
	}
	if len(b.pos.counts)+len(b.neg.counts) > 0 && (s.Scale < expoMinScale || s.Scale > expoMaxScale) {
		return nil, false
	}
	e := newExpoHist(maxSize)
	e.base, e.sum = b, s.Sum
	return e, true
}

// fillResumedExpo sets dp to the resumed histogram e: its stored base and
// the observations since (e.h) merged, exactly as go-expohisto would hold
// them had it seen every observation (the scale is the highest at which
// every range fits in maxSize buckets). Min and max are unknown (the store
// keeps none) and left unset.
func fillResumedExpo(dp pmetric.ExponentialHistogramDataPoint, e *expoHist) {
	b, h := e.base, &e.h
	count, zero := b.count+h.Count(), b.zeroCount+h.ZeroCount()
	dp.SetCount(count)
	dp.SetSum(e.sum)
	dp.SetZeroCount(zero)
	if count == zero {
		dp.SetScale(0) // only zeros: as go-expohisto's Scale
		return
	}
	live := [2]expoRange{liveRange((*structureBuckets)(h.Positive())), liveRange((*structureBuckets)(h.Negative()))}
	bs, ls := int32(expoMaxScale), int32(expoMaxScale)
	if len(b.pos.counts)+len(b.neg.counts) > 0 {
		bs = b.scale
	}
	if h.Count() != h.ZeroCount() {
		ls = h.Scale()
	}
	s := min(bs, ls)
	for s > expoMinScale {
		lo, hi, ok := mergedBounds(b.pos, bs-s, live[0], ls-s)
		nlo, nhi, nok := mergedBounds(b.neg, bs-s, live[1], ls-s)
		if (!ok || hi-lo < e.maxSize) && (!nok || nhi-nlo < e.maxSize) {
			break
		}
		s--
	}
	dp.SetScale(s)
	fillMerged(dp.Positive(), b.pos, bs-s, live[0], ls-s)
	fillMerged(dp.Negative(), b.neg, bs-s, live[1], ls-s)
}

// liveRange copies the buckets of go-expohisto's range src.
func liveRange(src *structureBuckets) expoRange {
	n := src.Len()
	if n == 0 {
		return expoRange{}
	}
	r := expoRange{offset: src.Offset(), counts: make([]uint64, n)}
	for i := range n {
		r.counts[i] = src.At(i)
	}
	return r
}

// mergedBounds is the lowest and highest index of ranges a and b once
// their indexes are shifted right by as and bs (scaled down); ok is false
// when both are empty.
func mergedBounds(a expoRange, as int32, b expoRange, bs int32) (lo, hi int32, ok bool) {
	for _, x := range []struct {
		r     expoRange
		shift int32
	}{{a, as}, {b, bs}} {
		if len(x.r.counts) == 0 {
			continue
		}
		l, h := x.r.offset>>x.shift, (x.r.offset+int32(len(x.r.counts))-1)>>x.shift
		if !ok {
			lo, hi, ok = l, h, true
			continue
		}
		lo, hi = min(lo, l), max(hi, h)
	}
	return lo, hi, ok
}

// fillMerged sets dst to the sum of ranges a and b scaled down by as and bs.
func fillMerged(dst pmetric.ExponentialHistogramDataPointBuckets, a expoRange, as int32, b expoRange, bs int32) {
	lo, hi, ok := mergedBounds(a, as, b, bs)
	if !ok {
		dst.SetOffset(0)
		return
	}
	counts := make([]uint64, hi-lo+1)
	for i, c := range a.counts {
		counts[(a.offset+int32(i))>>as-lo] += c
	}
	for i, c := range b.counts {
		counts[(b.offset+int32(i))>>bs-lo] += c
	}
	dst.SetOffset(lo)
	dst.BucketCounts().FromRaw(counts)
}
