package query

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostile are the queries of the issue "Safe under hostile queries": both
// must be refused before evaluation.
var hostile = []struct {
	name, query string
	rangeQuery  bool
}{
	{"30d subquery at 1ms (gRPC report)", `sum_over_time(vector(1)[30d:1ms])`, false},
	{"6h subquery at 1ms (HTTP report)", `count_over_time(vector(1)[6h:1ms])`, false},
}

func TestCostEstimate(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		query         string
		start, end    time.Time
		step          time.Duration
		rangeSteps    int64
		subquerySteps int64
		points        int64
	}{
		{"instant selector", `up`, now, now, 0, 1, 0, 0},
		{"range query without subquery", `rate(x[5m])`, now.Add(-time.Hour), now, time.Minute, 61, 0, 0},
		{"instant subquery", `max_over_time(x[1h:1m])`, now, now, 0, 1, 60, 60 + 60},
		{"subquery over a range query", `max_over_time(x[1h:1m])`, now.Add(-time.Hour), now, time.Minute, 61, 120, 120 + 61*60},
		{"default subquery step is 1m", `max_over_time(x[1h:])`, now, now, 0, 1, 60, 120},
		{"nested subqueries follow the parent grid", `max_over_time(max_over_time(x[10m:1m])[1h:10m])`, now, now, 0, 1, 60, 6 + 1*6 + 60 + 6*10},
		{"fixed @ subquery is evaluated once", `max_over_time(x[1h:1m] @ 1000)`, now.Add(-time.Hour), now, time.Minute, 61, 60, 60 + 60}, // the engine evaluates it once and copies the result to every step
		{"hostile 30d at 1ms", `sum_over_time(vector(1)[30d:1ms])`, now, now, 0, 1, 30 * 24 * 3600 * 1000, 2 * 30 * 24 * 3600 * 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, err := promParser.ParseExpr(tt.query)
			require.NoError(t, err)
			c, err := estimateCost(expr, tt.start, tt.end, tt.step)
			require.NoError(t, err)
			assert.Equal(t, tt.rangeSteps, c.RangeSteps, "range steps")
			assert.Equal(t, tt.subquerySteps, c.SubquerySteps, "subquery steps")
			assert.Equal(t, tt.points, c.SubqueryPoints, "subquery points")
		})
	}
}

func TestCostLimitsRefuseHostileQueriesBeforeEvaluation(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	tests := []struct {
		name     string
		req      Request
		wantKind Kind
		wantKey  string
		want     string
	}{
		{
			name: "gRPC hostile", req: Request{Query: `sum_over_time(vector(1)[30d:1ms])`, Instant: true, Time: now},
			wantKind: KindTooLarge, wantKey: "query.max_subquery_steps",
			want: "query.max_subquery_steps: the number of steps the subquery vector(1)[30d:1ms] evaluates over 30d is 2592000000, the limit is 1000000; use a subquery step of at least 3s",
		},
		{
			name: "HTTP hostile as a range query", req: Request{Query: `count_over_time(vector(1)[6h:1ms])`, Start: now.Add(-time.Hour), End: now, Step: 15 * time.Second},
			wantKind: KindTooLarge, wantKey: "query.max_subquery_steps",
			want: "evaluates over 7h is 25200000",
		},
		{
			name: "many outer steps times a large window", req: Request{Query: `max_over_time(requests_total[1d:10s])`, Start: now.Add(-7 * 24 * time.Hour), End: now, Step: time.Minute},
			wantKind: KindTooLarge, wantKey: "query.max_subquery_points",
			want: "the number of points per series the subqueries evaluate and scan over 10081 steps is 87168960",
		},
		{
			name: "range steps", req: Request{Query: `up`, Start: now.Add(-24 * time.Hour), End: now, Step: time.Second},
			wantKind: KindBadQuery, wantKey: "query.max_range_steps",
			want: "query.max_range_steps: the number of steps of 1s over",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := e.Do(context.Background(), tt.req)
			require.Error(t, err)
			var qe *Error
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, tt.wantKind, qe.Kind)
			var le *LimitError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, tt.wantKey, le.Key)
			assert.Greater(t, le.Value, le.Limit)
			assert.Contains(t, err.Error(), tt.want)
			assert.Less(t, time.Since(start), 5*time.Second, "refused before evaluation")
		})
	}
}

func TestCostLimitsAcceptDashboardQueries(t *testing.T) {
	now := time.Now().Truncate(time.Minute)
	e := newEngine(t, testDB(t, now), nil)
	day := 24 * time.Hour
	tests := []struct {
		name       string
		query      string
		start, end time.Time
		step       time.Duration
	}{
		{"rate over 1h", `sum by (path) (rate(requests_total[5m]))`, now.Add(-time.Hour), now, 15 * time.Second},
		{"11000 steps", `sum(rate(requests_total[5m]))`, now.Add(-11000 * 15 * time.Second), now, 15 * time.Second},
		{"max of rate over a day, 7d range", `max_over_time(rate(requests_total[5m])[1d:1m])`, now.Add(-7 * day), now, 5 * time.Minute},
		{"avg over 7d at 5m, 30d range", `avg_over_time(temperature[7d:5m])`, now.Add(-30 * day), now, time.Hour},
		{"quantile over 1h subquery, 24h range at 1m", `quantile_over_time(0.99, rate(requests_total[1m])[1h:15s])`, now.Add(-day), now, time.Minute},
		{"instant 30d at 1m", `max_over_time(temperature[30d:1m])`, now, now, 0},
		{"instant 7d at 1s", `max_over_time(temperature[7d:1s])`, now, now, 0},
		{"nested subqueries", `max_over_time(deriv(rate(requests_total[1m])[5m:1m])[1h:1m])`, now.Add(-6 * time.Hour), now, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Query: tt.query, Start: tt.start, End: tt.end, Step: tt.step, Instant: tt.step == 0, Time: tt.end}
			assert.NoError(t, e.Check(&req))
		})
	}
}

func TestLimitErrorIsTyped(t *testing.T) {
	err := error(&Error{Kind: KindTooLarge, Err: &LimitError{Key: "query.max_subquery_steps", Value: 2, Limit: 1, What: "steps", Fix: "fix it"}})
	var le *LimitError
	require.True(t, errors.As(err, &le))
	assert.Equal(t, "query.max_subquery_steps: steps is 2, the limit is 1; fix it", err.Error())
}
