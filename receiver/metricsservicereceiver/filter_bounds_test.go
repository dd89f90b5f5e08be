package metricsservicereceiver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// oversizedFilters are filters over the bounds of package metricfilter and
// the field and text each refusal names.
func oversizedFilters() []struct {
	filter *pb.MetricFilter
	want   string
} {
	names := make([]string, 1001)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	return []struct {
		filter *pb.MetricFilter
		want   string
	}{
		{&pb.MetricFilter{Names: names}, "filter.names: 1001 entries, at most 1000 are allowed (fix: send at most 1000; match a family of names"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a"}, {Name: "b", Value: strings.Repeat("v", 4097)}}},
			"filter.label_matchers[1].value: has 4097 bytes, at most 4096 are allowed (fix: shorten the value"},
		{&pb.MetricFilter{NameRegex: strings.Repeat(".{1000}", 66)},
			"filter.name_regex: compiles to about 66000 regex instructions, 66000 with the filter's other globs and regexes; at most 65536 are allowed together (fix: "},
	}
}

// GetMetrics and GetMetricsSummary refuse a filter over its bounds with
// INVALID_ARGUMENT naming the field, the size, the limit and the fix; a
// filter at the limit is served.
func TestReadsRefuseOversizedFilter(t *testing.T) {
	c, _ := startWithStore(t, t.TempDir())
	ctx := context.Background()
	for _, tc := range oversizedFilters() {
		_, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: tc.filter})
		st := status.Convert(err)
		assert.Equal(t, codes.InvalidArgument, st.Code(), "GetMetrics: %s", st.Message())
		assert.Contains(t, st.Message(), tc.want, "GetMetrics")
		_, err = c.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{Filter: tc.filter})
		st = status.Convert(err)
		assert.Equal(t, codes.InvalidArgument, st.Code(), "GetMetricsSummary: %s", st.Message())
		assert.Contains(t, st.Message(), tc.want, "GetMetricsSummary")
	}
	names := oversizedFilters()[0].filter.GetNames()[:1000]
	_, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: names}})
	require.NoError(t, err, "1000 names are served")
}

// StreamMetrics refuses a subscription whose filter is over its bounds with
// INVALID_ARGUMENT naming the field, the size, the limit and the fix.
func TestStreamRefusesOversizedFilter(t *testing.T) {
	r := startStreamReceiver(t, nil)
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	for _, tc := range oversizedFilters() {
		s := openRaw(t, c, &pb.StreamMetricsRequest{Filter: tc.filter}, true)
		st := status.Convert(s.err())
		assert.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
		assert.Contains(t, st.Message(), tc.want)
	}
}
