package reads

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
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

// TestHistogramAnswersWithFractionalCountsAreRefused: rate() of a
// histogram has fractional counts, which a HistogramValue (whole counts)
// cannot carry: the query is refused naming the field and the fix, not
// answered with truncated counts; whole-count answers go through.
func TestHistogramAnswersWithFractionalCountsAreRefused(t *testing.T) {
	s := openStore(t, nil)
	now := time.Now().Truncate(time.Minute)
	ls := labels.FromStrings(labels.MetricName, "rpc_seconds", "job", "api")
	app := s.db.Appender(context.Background())
	for i := range 5 {
		h := &histogram.Histogram{
			Schema: 0, Count: uint64(3 * (i + 1)), Sum: float64(i + 1), ZeroThreshold: 1e-128,
			PositiveSpans: []histogram.Span{{Offset: 1, Length: 1}}, PositiveBuckets: []int64{int64(3 * (i + 1))},
		}
		_, err := app.AppendHistogram(0, ls, now.Add(time.Duration(i-4)*20*time.Second).UnixMilli(), h, nil)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	at := tsOf(now.Add(time.Second))

	resp, err := s.eng.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: "rpc_seconds", Time: at})
	require.NoError(t, err)
	require.EqualValues(t, 15, resp.Series[0].Samples[0].Histogram.Count)

	_, err = s.eng.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: "rate(rpc_seconds[2m])", Time: at})
	var re *Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, KindInvalid, re.Kind)
	require.Equal(t, "query", re.Field)
	require.Contains(t, re.Fix, "histogram_quantile()")

	resp, err = s.eng.QueryMetrics(context.Background(), &pb.QueryMetricsRequest{Query: "histogram_count(rate(rpc_seconds[2m]))", Time: at})
	require.NoError(t, err)
	require.Positive(t, resp.Series[0].Samples[0].Value)
}
