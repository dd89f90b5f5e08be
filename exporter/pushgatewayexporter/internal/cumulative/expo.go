package cumulative

import (
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// maxExpoBuckets bounds the buckets of each sign of an accumulated
// exponential histogram (the OpenTelemetry SDK default); merging wider
// deltas lowers the scale.
const maxExpoBuckets = 160

// expoHistogram is an exponential histogram with sparse buckets: bucket i
// of scale s holds values in (base^i, base^(i+1)], base = 2^(2^-s).
type expoHistogram struct {
	scale         int32
	zeroThreshold float64
	zeroCount     uint64
	pos, neg      map[int32]uint64
	count         uint64
	sum           float64
}

func expoFromPoint(dp pmetric.ExponentialHistogramDataPoint) *expoHistogram {
	h := &expoHistogram{
		scale:         dp.Scale(),
		zeroThreshold: dp.ZeroThreshold(),
		zeroCount:     dp.ZeroCount(),
		pos:           map[int32]uint64{},
		neg:           map[int32]uint64{},
		count:         dp.Count(),
	}
	if dp.HasSum() {
		h.sum = dp.Sum()
	}
	addBuckets(h.pos, dp.Positive(), 0)
	addBuckets(h.neg, dp.Negative(), 0)
	h.fit()
	return h
}

// addBuckets adds b, downscaled by shift, to m.
func addBuckets(m map[int32]uint64, b pmetric.ExponentialHistogramDataPointBuckets, shift int32) {
	counts := b.BucketCounts()
	for i := 0; i < counts.Len(); i++ {
		if c := counts.At(i); c > 0 {
			m[(b.Offset()+int32(i))>>shift] += c
		}
	}
}

func downscale(m map[int32]uint64, shift int32) map[int32]uint64 {
	if shift == 0 {
		return m
	}
	out := make(map[int32]uint64, len(m))
	for i, c := range m {
		out[i>>shift] += c
	}
	return out
}

// merge adds o (a later delta) to h, at the lower of both scales.
func (h *expoHistogram) merge(o *expoHistogram) {
	scale := min(h.scale, o.scale)
	h.pos = downscale(h.pos, h.scale-scale)
	h.neg = downscale(h.neg, h.scale-scale)
	for i, c := range downscale(o.pos, o.scale-scale) {
		h.pos[i] += c
	}
	for i, c := range downscale(o.neg, o.scale-scale) {
		h.neg[i] += c
	}
	h.scale = scale
	h.zeroThreshold = max(h.zeroThreshold, o.zeroThreshold)
	h.zeroCount += o.zeroCount
	h.count += o.count
	h.sum += o.sum
	h.fit()
}

// fit lowers the scale until each sign spans at most maxExpoBuckets buckets.
func (h *expoHistogram) fit() {
	for span(h.pos) > maxExpoBuckets || span(h.neg) > maxExpoBuckets {
		h.pos = downscale(h.pos, 1)
		h.neg = downscale(h.neg, 1)
		h.scale--
	}
}

func span(m map[int32]uint64) int {
	if len(m) == 0 {
		return 0
	}
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	for i := range m {
		lo, hi = min(lo, i), max(hi, i)
	}
	return int(hi-lo) + 1
}

// lowerBound returns base^index at the scale.
func lowerBound(index, scale int32) float64 {
	if scale <= 0 {
		return math.Ldexp(1, int(index)<<-scale)
	}
	return math.Exp2(float64(index) / float64(int64(1)<<scale))
}

// dto turns h into a classic histogram whose upper bounds are the bucket
// boundaries: negative buckets (most negative first), the zero bucket, then
// positive buckets. Only non-empty buckets are listed.
func (h *expoHistogram) dto() *dto.Histogram {
	out := &dto.Histogram{SampleCount: ptr(h.count), SampleSum: ptr(h.sum)}
	var cum uint64
	add := func(upper float64, c uint64) {
		cum += c
		out.Bucket = append(out.Bucket, &dto.Bucket{UpperBound: ptr(upper), CumulativeCount: ptr(cum)})
	}
	neg := sortedIndexes(h.neg)
	slices.Reverse(neg)
	for _, i := range neg {
		// Bucket i holds [-base^(i+1), -base^i).
		add(-lowerBound(i, h.scale), h.neg[i])
	}
	if h.zeroCount > 0 {
		add(h.zeroThreshold, h.zeroCount)
	}
	for _, i := range sortedIndexes(h.pos) {
		add(lowerBound(i+1, h.scale), h.pos[i])
	}
	return out
}

func sortedIndexes(m map[int32]uint64) []int32 {
	out := make([]int32, 0, len(m))
	for i := range m {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}
