package summary

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The case end to end over a real store: an API counter by route
// with 500 user routes (x 3 methods x 2 statuses) makes GetMetricsSummary
// recommend a look at the path label, and not at method or status; the
// threshold (recommendations.label_values_notable) moves the decision.
func TestFiveHundredValueLabelOverARealStore(t *testing.T) {
	cfg := store.DefaultConfig()
	cfg.Path = t.TempDir()
	st, err := store.Open(cfg, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "users-api")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http_requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	now := pcommon.NewTimestampFromTime(time.Now())
	for i, s := range apiSeries(500) {
		dp := sum.DataPoints().AppendEmpty()
		for k, v := range s {
			dp.Attributes().PutStr(k, v)
		}
		dp.SetTimestamp(now)
		dp.SetDoubleValue(float64(1 + i%7))
	}
	txn, err := st.Stage(context.Background(), md)
	require.NoError(t, err)
	require.NoError(t, txn.Commit())

	rules := func(th Thresholds) map[string]string {
		resp, err := New(st, Config{Recommendations: th}).Summarize(context.Background(), &pb.GetMetricsSummaryRequest{IncludeRecommendations: true})
		require.NoError(t, err)
		out := map[string]string{}
		for _, r := range resp.GetRecommendations() {
			if r.GetSubject() == "path" || r.GetSubject() == "method" || r.GetSubject() == "status" {
				out[r.GetSubject()] = r.GetRule()
				assert.Contains(t, r.GetMessage(), fmt.Sprintf("%d distinct values", 500))
			}
		}
		return out
	}
	assert.Equal(t, map[string]string{"path": "label_cardinality_notable"}, rules(Thresholds{}))
	assert.Empty(t, rules(Thresholds{LabelValuesNotable: 1000, LabelValuesHigh: 20000}))
}
