// Package nativehist turns Prometheus native histogram buckets into
// OpenTelemetry's exponential histogram buckets.
//
// Prometheus keeps sparse buckets (spans of buckets with gaps between them);
// the Prometheus bucket of index i is (base^(i-1), base^i] (for negative
// buckets the mirror image), while the OpenTelemetry bucket of index k is
// (base^k, base^(k+1)]: k = i-1. OpenTelemetry's buckets are dense from an
// offset, so a gap becomes zero buckets. A histogram whose buckets are far
// apart would then take many zero buckets: ToExponential lowers the scale
// (merging neighbouring buckets, as an OpenTelemetry SDK does at its size
// limit) until both ranges fit in maxBuckets.
package nativehist

import "github.com/prometheus/prometheus/model/histogram"

// MinScale is the lowest scale Prometheus and OpenTelemetry share.
const MinScale = -4

// Buckets are dense OpenTelemetry buckets: Counts[j] is the bucket of
// index Offset+j.
type Buckets[BC histogram.BucketCount] struct {
	Offset int32
	Counts []BC
}

// sparse is one bucket: its OpenTelemetry index and count.
type sparse[BC histogram.BucketCount] struct {
	k int32
	n BC
}

// ToExponential converts the positive and negative buckets of a native
// histogram of the given schema into dense OpenTelemetry buckets at the
// returned scale: schema, or lower when that is what keeps each range
// within maxBuckets buckets (never below MinScale, where the range of
// float64 takes under 140 buckets).
func ToExponential[BC histogram.BucketCount](schema int32, pos, neg histogram.BucketIterator[BC], maxBuckets int) (scale int32, p, n Buckets[BC]) {
	ps, ns := collect(pos), collect(neg)
	scale = schema
	shift := uint(0)
	for scale > MinScale && (width(ps, shift) > maxBuckets || width(ns, shift) > maxBuckets) {
		scale--
		shift++
	}
	return scale, dense(ps, shift), dense(ns, shift)
}

func collect[BC histogram.BucketCount](it histogram.BucketIterator[BC]) []sparse[BC] {
	var out []sparse[BC]
	for it.Next() {
		b := it.At()
		out = append(out, sparse[BC]{k: b.Index - 1, n: b.Count})
	}
	return out
}

// width is the number of dense buckets bs take after shift scale steps
// down (index k becomes k >> shift, which rounds toward minus infinity as
// the downscaled bucket boundaries do).
func width[BC histogram.BucketCount](bs []sparse[BC], shift uint) int {
	if len(bs) == 0 {
		return 0
	}
	lo, hi := bs[0].k>>shift, bs[0].k>>shift
	for _, b := range bs {
		lo, hi = min(lo, b.k>>shift), max(hi, b.k>>shift)
	}
	return int(int64(hi) - int64(lo) + 1)
}

func dense[BC histogram.BucketCount](bs []sparse[BC], shift uint) Buckets[BC] {
	if len(bs) == 0 {
		return Buckets[BC]{}
	}
	lo := bs[0].k >> shift
	for _, b := range bs {
		lo = min(lo, b.k>>shift)
	}
	out := Buckets[BC]{Offset: lo, Counts: make([]BC, width(bs, shift))}
	for _, b := range bs {
		out.Counts[b.k>>shift-lo] += b.n
	}
	return out
}
