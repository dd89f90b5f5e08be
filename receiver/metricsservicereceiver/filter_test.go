package metricsservicereceiver

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter/metricfiltertest"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// corpusNames maps series names to their corpus names and keeps those (the
// store adds series of its own, such as target_info), sorted and without
// duplicates.
func corpusNames(names []string) []string {
	in := map[string]bool{}
	for _, m := range metricfiltertest.Corpus() {
		in[m.Name] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		n = metricfiltertest.FamilyOf(n)
		if in[n] && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TestFilterConformance records the metricfilter corpus through the
// receiver into its store and reads it back with each conformance filter:
// GetMetrics and GetMetricsSummary select the names the case selects.
func TestFilterConformance(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	ctx := context.Background()
	_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Metrics: metricfiltertest.Records()})
	require.NoError(t, err)
	for _, tc := range metricfiltertest.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			resp, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: tc.Filter, PageSize: 1000})
			require.NoError(t, err)
			var got []string
			for _, s := range resp.Series {
				got = append(got, s.Name)
			}
			assert.Equal(t, tc.Want, corpusNames(got), "GetMetrics")

			sum, err := c.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{Filter: tc.Filter, TopN: 1000})
			require.NoError(t, err)
			got = got[:0]
			for _, r := range sum.TopBySeries {
				got = append(got, r.Name)
			}
			assert.Equal(t, tc.Want, corpusNames(got), "GetMetricsSummary top_by_series")
			got = got[:0]
			for _, r := range sum.TopByRate {
				got = append(got, r.Name)
			}
			assert.Subset(t, append([]string{}, tc.Want...), corpusNames(got), "GetMetricsSummary top_by_rate")
		})
	}
}

func TestInvalidFilterConformance(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	ctx := context.Background()
	for _, tc := range metricfiltertest.Invalid() {
		_, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: tc.Filter})
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "GetMetrics %v", tc.Filter)
		assert.Contains(t, status.Convert(err).Message(), tc.Field+": ")
		_, err = c.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{Filter: tc.Filter})
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "GetMetricsSummary %v", tc.Filter)
		assert.Contains(t, status.Convert(err).Message(), tc.Field+": ")
	}
}
