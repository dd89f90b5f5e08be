package summary

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRules(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	base := func() Input { return Input{Now: now, Window: time.Hour} }
	tests := []struct {
		name   string
		in     func(*Input)
		rule   string
		absent bool
	}{
		{name: "cardinality explosion", rule: "label_cardinality_explosion", in: func(in *Input) {
			in.LabelValues = map[string]int64{"user_id": 500}
			in.LabelValuesBefore = map[string]int64{"user_id": 120}
		}},
		{name: "steady cardinality", rule: "label_cardinality_explosion", absent: true, in: func(in *Input) {
			in.LabelValues = map[string]int64{"path": 500}
			in.LabelValuesBefore = map[string]int64{"path": 480}
		}},
		{name: "small label growing", rule: "label_cardinality_explosion", absent: true, in: func(in *Input) {
			in.LabelValues = map[string]int64{"region": 6}
			in.LabelValuesBefore = map[string]int64{"region": 2}
		}},
		{name: "500 values, steady", rule: "label_cardinality_notable", in: func(in *Input) {
			in.LabelValues = map[string]int64{"path": 500}
			in.LabelValuesBefore = map[string]int64{"path": 480}
		}},
		{name: "huge cardinality", rule: "label_cardinality_high", in: func(in *Input) {
			in.LabelValues = map[string]int64{"request_id": 20000}
		}},
		{name: "resets", rule: "counter_resets", in: func(in *Input) { in.CounterResets = map[string]float64{"jobs_total": 4} }},
		{name: "few resets", rule: "counter_resets", absent: true, in: func(in *Input) { in.CounterResets = map[string]float64{"jobs_total": 1} }},
		{name: "stale", rule: "metric_stale", in: func(in *Input) { in.LastSeen = map[string]time.Time{"cron_runs_total": now.Add(-20 * time.Minute)} }},
		{name: "fresh", rule: "metric_stale", absent: true, in: func(in *Input) { in.LastSeen = map[string]time.Time{"x": now.Add(-time.Minute)} }},
		{name: "near limit", rule: "series_limit_near", in: func(in *Input) {
			in.SeriesLimit = 1000
			in.SeriesPerMetric = map[string]int64{"http_requests_total": 850}
		}},
		{name: "rejected", rule: "samples_rejected", in: func(in *Input) { in.RejectedSamples = 3 }},
		{name: "rate drop", rule: "ingest_rate_drop", in: func(in *Input) { in.RateNow, in.RateBefore = 10, 100 }},
		{name: "rate steady", rule: "ingest_rate_drop", absent: true, in: func(in *Input) { in.RateNow, in.RateBefore = 90, 100 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			tt.in(&in)
			found := false
			for _, r := range Recommend(in) {
				if r.Rule == tt.rule {
					found = true
					assert.NotEmpty(t, r.Message)
					assert.NotEmpty(t, r.Action)
				}
			}
			assert.Equal(t, !tt.absent, found)
		})
	}
}

func TestRecommendOrdersBySeverity(t *testing.T) {
	recs := Recommend(Input{Now: time.Now(), Window: time.Hour, RejectedSamples: 1,
		LastSeen: map[string]time.Time{"a": time.Now().Add(-time.Hour)}})
	assert.Len(t, recs, 2)
	assert.Equal(t, Warning, recs[0].Severity)
	assert.Equal(t, Info, recs[1].Severity)
}

// labelValues counts the distinct values of each label over series, as the
// store's head reports them.
func labelValues(series []map[string]string) map[string]int64 {
	seen := map[string]map[string]bool{}
	for _, s := range series {
		for k, v := range s {
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			seen[k][v] = true
		}
	}
	out := map[string]int64{}
	for k, vs := range seen {
		out[k] = int64(len(vs))
	}
	return out
}

// apiSeries is an API's request counter by route: n user routes
// (/users/<id>), 3 methods, 2 status codes.
func apiSeries(n int) []map[string]string {
	var out []map[string]string
	for i := range n {
		for _, m := range []string{"GET", "POST", "PUT"} {
			for _, st := range []string{"200", "404"} {
				out = append(out, map[string]string{"path": fmt.Sprintf("/users/%d", 1000+i), "method": m, "status": st})
			}
		}
	}
	return out
}

// The case: a label with 500 values, steady over the window, is
// reported (Info), the small labels beside it are not; the threshold is
// configurable, and growth or a very high count take precedence.
func TestLabelCardinalityRulesOnAPISeries(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	steady := labelValues(apiSeries(500))
	tests := []struct {
		name       string
		now        map[string]int64
		before     map[string]int64
		thresholds Thresholds
		want       map[string]string // label -> rule
	}{
		{"500 steady values", steady, steady, Thresholds{}, map[string]string{"path": "label_cardinality_notable"}},
		{"notable raised above it", steady, steady, Thresholds{LabelValuesNotable: 1000, LabelValuesHigh: 20000}, map[string]string{}},
		{"grew from 120", steady, labelValues(apiSeries(120)), Thresholds{}, map[string]string{"path": "label_cardinality_explosion"}},
		{"growth factor raised", steady, labelValues(apiSeries(120)), Thresholds{LabelGrowthFactor: 5}, map[string]string{"path": "label_cardinality_notable"}},
		{"high lowered below it", steady, steady, Thresholds{LabelValuesNotable: 100, LabelValuesHigh: 400}, map[string]string{"path": "label_cardinality_high"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.thresholds.Validate())
			got := map[string]string{}
			for _, r := range Recommend(Input{Now: now, Window: time.Hour, LabelValues: tt.now, LabelValuesBefore: tt.before, Thresholds: tt.thresholds}) {
				got[r.Subject] = r.Rule
				assert.NotEmpty(t, r.Action)
				if r.Rule == "label_cardinality_notable" {
					assert.Equal(t, Info, r.Severity)
					assert.Contains(t, r.Message, `label "path" has 500 distinct values`)
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// Each other rule's threshold moves its decision.
func TestThresholdsAreConfigurable(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rule string
		in   Input
		off  Thresholds
	}{
		{"counter resets", "counter_resets", Input{CounterResets: map[string]float64{"jobs_total": 4}}, Thresholds{CounterResets: 5}},
		{"stale", "metric_stale", Input{LastSeen: map[string]time.Time{"cron_runs_total": now.Add(-20 * time.Minute)}}, Thresholds{StaleAfter: time.Hour}},
		{"series limit", "series_limit_near", Input{SeriesLimit: 1000, SeriesPerMetric: map[string]int64{"http_requests_total": 850}}, Thresholds{SeriesLimitShare: 0.9}},
		{"rate drop", "ingest_rate_drop", Input{RateNow: 10, RateBefore: 100}, Thresholds{RateDropShare: 0.05}},
	}
	has := func(in Input, rule string) bool {
		for _, r := range Recommend(in) {
			if r.Rule == rule {
				return true
			}
		}
		return false
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Now, in.Window = now, time.Hour
			assert.True(t, has(in, tt.rule), "fires with the defaults")
			in.Thresholds = tt.off
			require.NoError(t, tt.off.Validate())
			assert.False(t, has(in, tt.rule), "not with the raised threshold")
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	tests := []struct {
		name string
		th   Thresholds
		key  string
	}{
		{"defaults", DefaultThresholds(), ""},
		{"zero", Thresholds{}, ""},
		{"negative notable", Thresholds{LabelValuesNotable: -1}, "recommendations.label_values_notable"},
		{"high below notable", Thresholds{LabelValuesNotable: 500, LabelValuesHigh: 100}, "recommendations.label_values_high"},
		{"growth factor 1", Thresholds{LabelGrowthFactor: 1}, "recommendations.label_growth_factor"},
		{"negative resets", Thresholds{CounterResets: -1}, "recommendations.counter_resets"},
		{"negative stale", Thresholds{StaleAfter: -time.Second}, "recommendations.stale_after"},
		{"share above 1", Thresholds{SeriesLimitShare: 1.5}, "recommendations.series_limit_share"},
		{"drop share 1", Thresholds{RateDropShare: 1}, "recommendations.rate_drop_share"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.th.Validate()
			if tt.key == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
}
