package provider

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func names(md pmetric.Metrics) map[string]int {
	out := map[string]int{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				out[ms.At(k).Name()] += pointCount(ms.At(k))
			}
		}
	}
	return out
}

func mixed() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("env", "prod")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	add := func(name string) pmetric.Metric {
		m := ms.AppendEmpty()
		m.SetName(name)
		return m
	}
	c := add("http_requests_total").SetEmptySum()
	c.SetIsMonotonic(true)
	for _, method := range []string{"GET", "POST"} {
		dp := c.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("method", method)
	}
	g := add("http_inflight").SetEmptyGauge()
	g.DataPoints().AppendEmpty().Attributes().PutStr("method", "GET")
	add("db_query_seconds").SetEmptyHistogram().DataPoints().AppendEmpty()
	tm := add("job_duration")
	tm.SetUnit("s")
	tm.SetEmptyHistogram().DataPoints().AppendEmpty()
	add("rpc_latency").SetEmptySummary().DataPoints().AppendEmpty()
	return md
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter *pb.MetricFilter
		want   map[string]int
	}{
		{"nil keeps all", nil, map[string]int{"http_requests_total": 2, "http_inflight": 1, "db_query_seconds": 1, "job_duration": 1, "rpc_latency": 1}},
		{"glob", &pb.MetricFilter{Names: []string{"http_*"}}, map[string]int{"http_requests_total": 2, "http_inflight": 1}},
		{
			"glob and exclude", &pb.MetricFilter{Names: []string{"http_*", "db_*"}, ExcludeNames: []string{"*_inflight"}},
			map[string]int{"http_requests_total": 2, "db_query_seconds": 1},
		},
		{"regex", &pb.MetricFilter{NameRegex: "http_.*_total"}, map[string]int{"http_requests_total": 2}},
		{
			"types", &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER, pb.MetricType_METRIC_TYPE_SUMMARY}},
			map[string]int{"http_requests_total": 2, "rpc_latency": 1},
		},
		{"timer", &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_TIMER}}, map[string]int{"job_duration": 1}},
		{
			"histogram covers timers", &pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_HISTOGRAM}},
			map[string]int{"db_query_seconds": 1, "job_duration": 1},
		},
		{
			"label equal", &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "method", Value: "GET"}}},
			map[string]int{"http_requests_total": 1, "http_inflight": 1},
		},
		{
			"label not regex and name", &pb.MetricFilter{
				Names:         []string{"http_requests_total"},
				LabelMatchers: []*pb.LabelMatcher{{Name: "method", Operator: pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX, Value: "G.*"}},
			},
			map[string]int{"http_requests_total": 1},
		},
		{
			"resource label", &pb.MetricFilter{Names: []string{"rpc_*"}, LabelMatchers: []*pb.LabelMatcher{{Name: "env", Value: "prod"}}},
			map[string]int{"rpc_latency": 1},
		},
		{
			"missing label is empty", &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "method", Operator: pb.MatchOperator_MATCH_OPERATOR_EQUAL}}},
			map[string]int{"db_query_seconds": 1, "job_duration": 1, "rpc_latency": 1},
		},
		{"nothing", &pb.MetricFilter{Names: []string{"nope"}}, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Empty(t, validateFilter("f", tt.filter))
			md := mixed()
			md.MarkReadOnly()
			flt, err := compileFilter(tt.filter)
			require.NoError(t, err)
			out, ok := flt.apply(md)
			assert.Equal(t, tt.want, names(out))
			assert.Equal(t, len(tt.want) > 0, ok)
			assert.Equal(t, 6, md.DataPointCount(), "the input is untouched")
		})
	}
}

func TestSplit(t *testing.T) {
	md := gauges("a", 0, 7)
	gauges("b", 7, 3).ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	md.MarkReadOnly()
	for _, max := range []int{0, 1, 3, 4, 10, 11} {
		parts := split(md, max)
		seen := map[int64]int{}
		for _, p := range parts {
			if max > 0 {
				assert.LessOrEqual(t, p.DataPointCount(), max)
			}
			forEachPoint(p, func(name string, seq int64) {
				seen[seq]++
				if seq < 7 {
					assert.Equal(t, "a", name)
				} else {
					assert.Equal(t, "b", name)
				}
			})
			assert.Equal(t, "test", func() string {
				v, _ := p.ResourceMetrics().At(0).Resource().Attributes().Get("service.name")
				return v.Str()
			}())
		}
		assert.Len(t, seen, 10, "max %d", max)
		for seq, n := range seen {
			assert.Equal(t, 1, n, "seq %d with max %d", seq, max)
		}
		if max <= 0 || max >= 10 {
			assert.Len(t, parts, 1)
		} else {
			assert.Len(t, parts, (10+max-1)/max)
		}
	}
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(100, 0)
	clock := func() time.Time { return now }
	assert.Nil(t, newRateLimiter(0, clock))
	assert.True(t, (*rateLimiter)(nil).allow(1e9))
	r := newRateLimiter(100, clock)
	assert.True(t, r.allow(60))
	assert.True(t, r.allow(40))
	assert.False(t, r.allow(1), "the bucket is empty")
	now = now.Add(500 * time.Millisecond)
	assert.True(t, r.allow(50))
	assert.False(t, r.allow(1))
	now = now.Add(2 * time.Second)
	assert.True(t, r.allow(250), "a batch larger than the bucket passes when it is full")
	now = now.Add(time.Second)
	assert.False(t, r.allow(1), "and leaves it in debt")
	now = now.Add(time.Second)
	assert.True(t, r.allow(50))
}

func TestTopK(t *testing.T) {
	k := newTopK(3)
	for i := range 100 {
		k.add("heavy", 10)
		k.add("medium", 5)
		k.add("noise"+string(rune('a'+i%26)), 1)
	}
	top := k.top(2)
	require.Len(t, top, 2)
	assert.Equal(t, "heavy", top[0].GetName())
	assert.Equal(t, uint64(1000), top[0].GetDatapoints())
	assert.Equal(t, "medium", top[1].GetName())
	assert.LessOrEqual(t, len(k.counts), 3, "bounded")
}

func TestAnomalies(t *testing.T) {
	a := newAnomalyDetector()
	at := time.Unix(1000, 0)
	for i := range 60 {
		a.observe(at.Add(time.Duration(i)*time.Second), 1000+float64(i%5), 0, 0.01, 10)
	}
	assert.Empty(t, a.found, "a steady signal has no anomalies")
	a.observe(at.Add(61*time.Second), 10, 0, 0.01, 10)
	a.observe(at.Add(62*time.Second), 1000, 0.8, 0.5, 10)
	a.observe(at.Add(63*time.Second), 1000, 0.9, 0.5, 10) // within the cooldown
	kinds := map[string]pb.Severity{}
	for _, an := range a.found {
		kinds[an.GetKind()] = an.GetSeverity()
		assert.NotEmpty(t, an.GetMessage())
		assert.NotNil(t, an.GetDetectedAt())
	}
	assert.Equal(t, map[string]pb.Severity{
		"throughput_drop": pb.Severity_SEVERITY_ERROR,
		"error_burst":     pb.Severity_SEVERITY_ERROR,
		"latency_spike":   pb.Severity_SEVERITY_ERROR,
	}, kinds)
	assert.Len(t, a.found, 3)

	// A signal that was flat zero and starts is a spike, with finite numbers.
	b := newAnomalyDetector()
	for i := range 40 {
		b.observe(at.Add(time.Duration(i)*time.Second), 0, 0, 0, 0)
	}
	b.observe(at.Add(41*time.Second), 500, 0, 0.01, 5)
	require.Len(t, b.found, 1)
	assert.Equal(t, "throughput_spike", b.found[0].GetKind())
	assert.NotContains(t, b.found[0].GetMessage(), "Inf")
}

func TestHealthTracker(t *testing.T) {
	h := healthTracker{cfg: healthConfig{degraded: 0.05, unhealthy: 0.5, window: time.Second}}
	now := time.Unix(1000, 0)
	step := func(ok bool) {
		now = now.Add(time.Millisecond)
		h.record(now, ok, "boom")
	}
	for range 20 {
		step(true)
	}
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, h.state)
	step(false)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, h.state, "1 of 21 is below 5%%")
	step(false)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_DEGRADED, h.state)
	for range 30 {
		step(false)
	}
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, h.state)
	assert.Contains(t, h.reason, "boom")
	for range recoverAfter {
		step(true)
	}
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, h.state, "consecutive successes recover at once")
	// The window ages out.
	for range 40 {
		step(false)
	}
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, h.state)
	now = now.Add(2 * time.Second)
	step(true)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, h.state)
	var seq []pb.HealthStatus
	for _, ev := range h.history {
		seq = append(seq, ev.GetStatus())
	}
	assert.Equal(t, []pb.HealthStatus{
		pb.HealthStatus_HEALTH_STATUS_HEALTHY, pb.HealthStatus_HEALTH_STATUS_DEGRADED,
		pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, pb.HealthStatus_HEALTH_STATUS_HEALTHY, pb.HealthStatus_HEALTH_STATUS_DEGRADED,
		pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, pb.HealthStatus_HEALTH_STATUS_HEALTHY,
	}, seq)
}
