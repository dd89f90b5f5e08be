package statsd

import (
	"math"
	"slices"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// dist is a distribution over an interval: buckets and aggregates. For
// explicit histograms the buckets are keyed by position, for exponential ones
// by index (negative keys for negative values are kept apart).
type dist struct {
	count    uint64
	sum      float64
	hasSum   bool
	min, max float64
	hasMin   bool
	hasMax   bool

	// explicit
	bounds []float64
	counts []uint64

	// exponential
	expo          bool
	scale         int32
	zeroThreshold float64
	zero          uint64
	pos, neg      map[int32]uint64
}

func distFromHistogram(dp pmetric.HistogramDataPoint) *dist {
	d := &dist{
		count:  dp.Count(),
		sum:    dp.Sum(),
		hasSum: dp.HasSum(),
		min:    dp.Min(),
		hasMin: dp.HasMin(),
		max:    dp.Max(),
		hasMax: dp.HasMax(),
		bounds: dp.ExplicitBounds().AsRaw(),
	}
	d.counts = make([]uint64, len(d.bounds)+1)
	copy(d.counts, dp.BucketCounts().AsRaw())
	return d
}

func distFromExpo(dp pmetric.ExponentialHistogramDataPoint) *dist {
	d := &dist{
		count:         dp.Count(),
		sum:           dp.Sum(),
		hasSum:        dp.HasSum(),
		min:           dp.Min(),
		hasMin:        dp.HasMin(),
		max:           dp.Max(),
		hasMax:        dp.HasMax(),
		expo:          true,
		scale:         dp.Scale(),
		zeroThreshold: dp.ZeroThreshold(),
		zero:          dp.ZeroCount(),
		pos:           expoBuckets(dp.Positive()),
		neg:           expoBuckets(dp.Negative()),
	}
	return d
}

func expoBuckets(b pmetric.ExponentialHistogramDataPointBuckets) map[int32]uint64 {
	m := map[int32]uint64{}
	counts := b.BucketCounts()
	for i := 0; i < counts.Len(); i++ {
		if c := counts.At(i); c > 0 {
			m[b.Offset()+int32(i)] += c
		}
	}
	return m
}

func downscale(m map[int32]uint64, shift int32) map[int32]uint64 {
	if shift <= 0 {
		return m
	}
	out := make(map[int32]uint64, len(m))
	for i, c := range m {
		out[i>>shift] += c
	}
	return out
}

// minus returns d - prev, the distribution of the interval between two
// cumulative points, or false when d is not a continuation of prev (a reset:
// a count went down, or the layout changed in a way that cannot be aligned).
func (d *dist) minus(prev *dist) (*dist, bool) {
	if d.count < prev.count || d.expo != prev.expo {
		return nil, false
	}
	out := &dist{
		count: d.count - prev.count, sum: d.sum - prev.sum, hasSum: d.hasSum && prev.hasSum,
		// Min and max of a cumulative point cover the whole series lifetime:
		// they do not describe the interval.
	}
	if !d.expo {
		if !slices.Equal(d.bounds, prev.bounds) {
			return nil, false
		}
		out.bounds = d.bounds
		out.counts = make([]uint64, len(d.counts))
		for i := range d.counts {
			if d.counts[i] < prev.counts[i] {
				return nil, false
			}
			out.counts[i] = d.counts[i] - prev.counts[i]
		}
		return out, true
	}
	if d.scale > prev.scale {
		return nil, false // a cumulative histogram only ever lowers its scale
	}
	out.expo, out.scale, out.zeroThreshold = true, d.scale, d.zeroThreshold
	if d.zero < prev.zero {
		return nil, false
	}
	out.zero = d.zero - prev.zero
	var ok bool
	if out.pos, ok = subtract(d.pos, downscale(prev.pos, prev.scale-d.scale)); !ok {
		return nil, false
	}
	if out.neg, ok = subtract(d.neg, downscale(prev.neg, prev.scale-d.scale)); !ok {
		return nil, false
	}
	return out, true
}

func subtract(cur, prev map[int32]uint64) (map[int32]uint64, bool) {
	out := make(map[int32]uint64, len(cur))
	for i, p := range prev {
		if cur[i] < p {
			return nil, false
		}
	}
	for i, c := range cur {
		if d := c - prev[i]; d > 0 {
			out[i] = d
		}
	}
	return out, true
}

// bucket is a value interval (lo, hi] and its count; lo may be -Inf and hi +Inf.
type bucket struct {
	lo, hi float64
	count  uint64
}

// buckets lists the non-empty buckets of d in ascending value order.
func (d *dist) buckets() []bucket {
	var out []bucket
	if !d.expo {
		for i, c := range d.counts {
			if c == 0 {
				continue
			}
			lo, hi := math.Inf(-1), math.Inf(1)
			if i > 0 {
				lo = d.bounds[i-1]
			}
			if i < len(d.bounds) {
				hi = d.bounds[i]
			}
			out = append(out, bucket{lo, hi, c})
		}
		return out
	}
	neg := sortedIndexes(d.neg)
	slices.Reverse(neg)
	for _, i := range neg {
		out = append(out, bucket{-lowerBound(i+1, d.scale), -lowerBound(i, d.scale), d.neg[i]})
	}
	if d.zero > 0 {
		out = append(out, bucket{-d.zeroThreshold, d.zeroThreshold, d.zero})
	}
	for _, i := range sortedIndexes(d.pos) {
		out = append(out, bucket{lowerBound(i, d.scale), lowerBound(i+1, d.scale), d.pos[i]})
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

// lowerBound returns base^index at the scale, base = 2^(2^-scale).
func lowerBound(index, scale int32) float64 {
	if scale <= 0 {
		return math.Ldexp(1, int(index)<<-scale)
	}
	return math.Exp2(float64(index) / float64(int64(1)<<scale))
}

// clampedEdges returns the finite edges of b, using min and max of d where an
// edge is infinite and clamping to them where known; without them, the open
// lower bucket starts at 0 (or is its bound when that is not positive) and
// the open upper bucket is its bound.
func (d *dist) clampedEdges(b bucket) (lo, hi float64) {
	lo, hi = b.lo, b.hi
	if d.hasMin && (math.IsInf(lo, -1) || lo < d.min) {
		lo = d.min
	}
	if d.hasMax && (math.IsInf(hi, 1) || hi > d.max) {
		hi = d.max
	}
	if math.IsInf(lo, -1) {
		// As Prometheus' histogram_quantile: the first bucket of positive
		// bounds starts at 0.
		if hi > 0 {
			lo = 0
		} else {
			lo = hi
		}
	}
	if math.IsInf(hi, 1) {
		hi = lo
	}
	return lo, hi
}

// representative is the value a bucket's observations are sent as: the
// middle of the bucket, with infinite edges replaced by min, max or the
// other edge.
func (d *dist) representative(b bucket) float64 {
	lo, hi := d.clampedEdges(b)
	return lo + (hi-lo)/2
}

// quantile estimates the q-quantile by linear interpolation inside the
// bucket that holds the rank (as Prometheus' histogram_quantile does).
func (d *dist) quantile(q float64, bs []bucket) float64 {
	var total uint64
	for _, b := range bs {
		total += b.count
	}
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	var cum float64
	for _, b := range bs {
		next := cum + float64(b.count)
		if rank <= next {
			lo, hi := d.clampedEdges(b)
			return lo + (hi-lo)*(rank-cum)/float64(b.count)
		}
		cum = next
	}
	lo, hi := d.clampedEdges(bs[len(bs)-1])
	return max(lo, hi)
}
