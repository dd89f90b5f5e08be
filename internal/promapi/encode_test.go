package promapi

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncodingMatchesEncodingJSON keeps the fast encoder byte-identical to
// the JSON Prometheus' own types produce.
func TestEncodingMatchesEncodingJSON(t *testing.T) {
	h := &histogram.FloatHistogram{Schema: 0, Count: 3, Sum: 4.5, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []float64{1, 2}}
	ls := labels.FromStrings("__name__", "up", "job", "a\"b", "path", "/ü")
	values := []any{
		promql.Matrix{
			{Metric: ls, Floats: []promql.FPoint{{T: 1700000000123, F: 1.5}, {T: 1700000015000, F: math.NaN()}, {T: 1700000030000, F: math.Inf(1)}}},
			{Metric: labels.FromStrings("job", "h"), Histograms: []promql.HPoint{{T: 1700000000000, H: h}}},
			{Metric: labels.EmptyLabels(), Floats: []promql.FPoint{{T: -5, F: 1e-9}, {T: 0, F: 12345678901234}}},
		},
		promql.Vector{
			{Metric: ls, T: 1700000000001, F: 0.1},
			{Metric: labels.FromStrings("x", "y"), T: 1700000000002, H: h},
		},
		promql.Matrix{},
		promql.Vector{},
		promql.Scalar{T: 1700000000000, V: 2},
		promql.String{T: 1700000000000, V: "s"},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		require.NoError(t, err)
		got, err := appendResult(nil, v)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(got))
		assert.Equal(t, string(want), string(got), "byte-identical")
	}
}
