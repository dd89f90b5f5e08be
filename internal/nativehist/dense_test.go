package nativehist

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"
)

func TestToExponential(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h         *histogram.Histogram
		max       int
		wantScale int32
		wantPos   Buckets[uint64]
		wantNeg   Buckets[uint64]
	}{
		{
			name: "one span: the OTel index is the Prometheus index minus one",
			h: &histogram.Histogram{Schema: 0, PositiveSpans: []histogram.Span{{Offset: 1, Length: 3}},
				PositiveBuckets: []int64{2, 1, -2}}, // counts 2, 3, 1 (deltas)
			max: 100, wantScale: 0, wantPos: Buckets[uint64]{Offset: 0, Counts: []uint64{2, 3, 1}},
		},
		{
			name: "a gap between spans is zero buckets",
			h: &histogram.Histogram{Schema: 2, PositiveSpans: []histogram.Span{{Offset: -3, Length: 1}, {Offset: 2, Length: 2}},
				PositiveBuckets: []int64{1, 3, -1}}, // indexes -3, 0, 1 with counts 1, 4, 3
			max: 100, wantScale: 2, wantPos: Buckets[uint64]{Offset: -4, Counts: []uint64{1, 0, 0, 4, 3}},
		},
		{
			name: "negative buckets",
			h: &histogram.Histogram{Schema: 1, NegativeSpans: []histogram.Span{{Offset: 5, Length: 2}},
				NegativeBuckets: []int64{7, -6}}, // indexes 5, 6 with counts 7, 1
			max: 100, wantScale: 1, wantNeg: Buckets[uint64]{Offset: 4, Counts: []uint64{7, 1}},
		},
		{
			name: "buckets far apart: a lower scale, neighbours merged",
			h: &histogram.Histogram{Schema: 3, PositiveSpans: []histogram.Span{{Offset: 1, Length: 2}, {Offset: 998, Length: 1}},
				PositiveBuckets: []int64{1, 1, 3}}, // OTel indexes 0, 1, 1000 with counts 1, 2, 5
			// 1001 buckets at scale 3; 1000>>4 = 62: 63 buckets at scale -1
			max: 100, wantScale: -1, wantPos: Buckets[uint64]{Offset: 0, Counts: append(append([]uint64{3}, make([]uint64, 61)...), 5)},
		},
		{
			name: "the lowest scale is the limit",
			h: &histogram.Histogram{Schema: 0, PositiveSpans: []histogram.Span{{Offset: -1000, Length: 1}, {Offset: 1999, Length: 1}},
				PositiveBuckets: []int64{1, 0}}, // OTel indexes -1001 and 999
			// at scale -4: -1001>>4 = -63, 999>>4 = 62
			max: 10, wantScale: MinScale, wantPos: Buckets[uint64]{Offset: -63, Counts: append(append([]uint64{1}, make([]uint64, 124)...), 1)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scale, p, n := ToExponential(tc.h.Schema, tc.h.PositiveBucketIterator(), tc.h.NegativeBucketIterator(), tc.max)
			require.Equal(t, tc.wantScale, scale)
			require.Equal(t, tc.wantPos, p)
			require.Equal(t, tc.wantNeg, n)
		})
	}
}

// TestToExponentialKeepsEveryObservationInItsBucket checks the bucket
// boundaries, not only the counts: every observation of a native histogram
// lands in the OTel bucket (at the returned scale) whose bounds hold it.
func TestToExponentialKeepsEveryObservationInItsBucket(t *testing.T) {
	values := []float64{0.001, 0.3, 1.01, 1.5, 2.2, 3.7, 100, 1e6, -0.02, -5, -1e4} // none on a bucket boundary (float logs are inexact there)
	for _, schema := range []int32{-2, 0, 3, 8} {
		for _, max := range []int{4, 1000} {
			h := &histogram.FloatHistogram{Schema: schema, ZeroThreshold: 1e-128}
			for _, v := range values {
				one := &histogram.FloatHistogram{Schema: schema, ZeroThreshold: 1e-128, Count: 1, Sum: v}
				idx := promIndex(v, schema)
				span := []histogram.Span{{Offset: idx, Length: 1}}
				if v > 0 {
					one.PositiveSpans, one.PositiveBuckets = span, []float64{1}
				} else {
					one.NegativeSpans, one.NegativeBuckets = span, []float64{1}
				}
				var err error
				h, _, _, err = h.Add(one)
				require.NoError(t, err)
			}
			scale, p, n := ToExponential(h.Schema, h.PositiveBucketIterator(), h.NegativeBucketIterator(), max)
			base := math.Pow(2, math.Pow(2, float64(-scale)))
			for _, v := range values {
				b := p
				if v < 0 {
					b = n
				}
				a := math.Abs(v)
				k := int32(math.Ceil(math.Log(a)/math.Log(base))) - 1 // (base^k, base^(k+1)]
				j := int(k - b.Offset)
				require.True(t, j >= 0 && j < len(b.Counts) && b.Counts[j] >= 1,
					"schema %d max %d: %v not in OTel bucket %d at scale %d (offset %d, %d buckets)", schema, max, v, k, scale, b.Offset, len(b.Counts))
			}
			var total float64
			for _, c := range append(p.Counts, n.Counts...) {
				total += c
			}
			require.Equal(t, float64(len(values)), total)
		}
	}
}

// promIndex is the Prometheus bucket of |v| at schema: (base^(i-1), base^i].
func promIndex(v float64, schema int32) int32 {
	base := math.Pow(2, math.Pow(2, float64(-schema)))
	return int32(math.Ceil(math.Log(math.Abs(v)) / math.Log(base)))
}
