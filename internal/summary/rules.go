// Package summary derives recommendations from the state of the system with
// rules small enough to test one by one: exploding label cardinality,
// counters that reset often, metrics that stopped, metrics near their series
// limit, samples the store refused, and a falling ingest rate.
package summary

import (
	"fmt"
	"sort"
	"time"
)

// Severity ranks a recommendation.
type Severity int

const (
	// Info is worth knowing.
	Info Severity = iota + 1
	// Warning needs a look.
	Warning
)

// Recommendation is one advice.
type Recommendation struct {
	Rule     string
	Severity Severity
	Subject  string
	Message  string
	Action   string
}

// Input is what the rules look at.
type Input struct {
	// Now is the evaluation time.
	Now time.Time
	// Window is the trend window.
	Window time.Duration
	// LabelValues is the distinct values per label now and one window ago
	// (labels absent then are new).
	LabelValues, LabelValuesBefore map[string]int64
	// CounterResets is the number of resets per counter family in the window.
	CounterResets map[string]float64
	// LastSeen is when each family last received samples.
	LastSeen map[string]time.Time
	// SeriesPerMetric is the active series per metric family; SeriesLimit the
	// per-metric limit (0 = none).
	SeriesPerMetric map[string]int64
	SeriesLimit     int64
	// RejectedSamples is how many samples the store refused in total.
	RejectedSamples int64
	// RateNow and RateBefore are the ingest rates of the two windows.
	RateNow, RateBefore float64
}

// Thresholds of the rules.
const (
	cardinalityGrowth   = 2.0   // distinct values grew by this factor in one window...
	cardinalityMinimum  = 100   // ...and there are at least this many
	cardinalityAbsolute = 10000 // or there are this many regardless of growth
	resetsPerWindow     = 3     // resets in one window
	staleAfter          = 15 * time.Minute
	limitShare          = 0.8 // share of the series limit
	rateDrop            = 0.5 // the rate fell below this share of the window before
)

// Recommend evaluates every rule, most severe first.
func Recommend(in Input) []Recommendation {
	var out []Recommendation
	for label, n := range in.LabelValues {
		before := in.LabelValuesBefore[label]
		switch {
		case n >= cardinalityAbsolute:
			out = append(out, Recommendation{Rule: "label_cardinality_high", Severity: Warning, Subject: label,
				Message: fmt.Sprintf("label %q has %d distinct values", label, n),
				Action:  "drop the label or move its values (ids, URLs, timestamps) out of the labels"})
		case n >= cardinalityMinimum && before > 0 && float64(n) >= cardinalityGrowth*float64(before):
			out = append(out, Recommendation{Rule: "label_cardinality_explosion", Severity: Warning, Subject: label,
				Message: fmt.Sprintf("label %q grew from %d to %d distinct values in %s", label, before, n, in.Window),
				Action:  "find the producer that started sending new values and bound them"})
		}
	}
	for name, resets := range in.CounterResets {
		if resets >= resetsPerWindow {
			out = append(out, Recommendation{Rule: "counter_resets", Severity: Warning, Subject: name,
				Message: fmt.Sprintf("counter %s reset %.0f times in %s", name, resets, in.Window),
				Action:  "check for restarting producers or a counter recorded as cumulative by several instances without distinguishing labels"})
		}
	}
	for name, t := range in.LastSeen {
		if idle := in.Now.Sub(t); idle >= staleAfter {
			out = append(out, Recommendation{Rule: "metric_stale", Severity: Info, Subject: name,
				Message: fmt.Sprintf("metric %s has had no data for %s", name, idle.Truncate(time.Minute)),
				Action:  "check its producer, or unregister the metric if it is retired"})
		}
	}
	if in.SeriesLimit > 0 {
		for name, n := range in.SeriesPerMetric {
			if float64(n) >= limitShare*float64(in.SeriesLimit) {
				out = append(out, Recommendation{Rule: "series_limit_near", Severity: Warning, Subject: name,
					Message: fmt.Sprintf("metric %s has %d series, %.0f%% of its limit %d", name, n, 100*float64(n)/float64(in.SeriesLimit), in.SeriesLimit),
					Action:  "remove a high-cardinality label, or raise limits.max_series_per_metric"})
			}
		}
	}
	if in.RejectedSamples > 0 {
		out = append(out, Recommendation{Rule: "samples_rejected", Severity: Warning, Subject: "store",
			Message: fmt.Sprintf("the store refused %d samples (out of order, too old or duplicate timestamps)", in.RejectedSamples),
			Action:  "check producer clocks, or raise store.out_of_order_window"})
	}
	if in.RateBefore > 0 && in.RateNow < rateDrop*in.RateBefore {
		out = append(out, Recommendation{Rule: "ingest_rate_drop", Severity: Warning, Subject: "*",
			Message: fmt.Sprintf("ingest fell from %.1f to %.1f samples/s over %s", in.RateBefore, in.RateNow, in.Window),
			Action:  "check that producers are still sending"})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity > out[j].Severity
		}
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}
