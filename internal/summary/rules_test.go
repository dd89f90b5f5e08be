package summary

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
