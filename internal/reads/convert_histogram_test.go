package reads

import (
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestExponentialHistogramAnswerKeepsBucketIndexesAndGaps: observations 1.5
// and 100 at scale 4 are in OTel buckets 9 and 106 (Prometheus 10 and 107),
// two spans apart. The answer is dense from offset 9, zeros in the gap.
func TestExponentialHistogramAnswerKeepsBucketIndexesAndGaps(t *testing.T) {
	h := &histogram.FloatHistogram{
		Schema: 4, Count: 3, Sum: 103, ZeroThreshold: 1e-128, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 10, Length: 1}, {Offset: 96, Length: 1}},
		PositiveBuckets: []float64{1, 1},
		NegativeSpans:   []histogram.Span{{Offset: -2, Length: 2}},
		NegativeBuckets: []float64{0, 2},
	}
	got := toHistogramValue(h)
	want := make([]uint64, 98)
	want[0], want[97] = 1, 1
	require.Equal(t, &pb.ExponentialBuckets{
		Scale: 4, ZeroCount: 1, ZeroThreshold: 1e-128,
		PositiveOffset: 9, PositiveBucketCounts: want,
		NegativeOffset: -3, NegativeBucketCounts: []uint64{0, 2},
	}, got.Exponential)
	require.EqualValues(t, 3, got.Count)
}
