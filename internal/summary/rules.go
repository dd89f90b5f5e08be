// Package summary derives recommendations from the state of the system with
// rules small enough to test one by one: labels with many values or
// exploding cardinality, counters that reset often, metrics that stopped,
// metrics near their series limit, samples the store refused, and a falling
// ingest rate. Every threshold is configurable (Thresholds).
package summary

import (
	"errors"
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
	// Thresholds of the rules; zero fields take their defaults.
	Thresholds Thresholds
}

// Thresholds are the limits of the rules (receiver config
// `recommendations`). A zero field takes its default (DefaultThresholds).
type Thresholds struct {
	// LabelValuesNotable: a label with at least this many distinct values
	// is reported (Info, label_cardinality_notable). Default 200.
	LabelValuesNotable int64 `mapstructure:"label_values_notable"`
	// LabelValuesHigh: at least this many is a warning
	// (label_cardinality_high). Default 10000.
	LabelValuesHigh int64 `mapstructure:"label_values_high"`
	// LabelGrowthFactor and LabelGrowthMinimum: a label whose distinct
	// values grew by this factor in one trend window and has at least the
	// minimum is a warning (label_cardinality_explosion). Defaults 2 and 100.
	LabelGrowthFactor  float64 `mapstructure:"label_growth_factor"`
	LabelGrowthMinimum int64   `mapstructure:"label_growth_minimum"`
	// CounterResets: resets of a counter in one window (counter_resets). Default 3.
	CounterResets float64 `mapstructure:"counter_resets"`
	// StaleAfter: a metric without data for this long (metric_stale). Default 15m.
	StaleAfter time.Duration `mapstructure:"stale_after"`
	// SeriesLimitShare: a metric with this share of its series limit
	// (series_limit_near), in (0, 1]. Default 0.8.
	SeriesLimitShare float64 `mapstructure:"series_limit_share"`
	// RateDropShare: the ingest rate fell below this share of the window
	// before (ingest_rate_drop), in (0, 1). Default 0.5.
	RateDropShare float64 `mapstructure:"rate_drop_share"`
}

// DefaultThresholds returns the default thresholds.
func DefaultThresholds() Thresholds {
	return Thresholds{
		LabelValuesNotable: 200, LabelValuesHigh: 10000, LabelGrowthFactor: 2, LabelGrowthMinimum: 100,
		CounterResets: 3, StaleAfter: 15 * time.Minute, SeriesLimitShare: 0.8, RateDropShare: 0.5,
	}
}

// withDefaults fills the zero fields.
func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds()
	if t.LabelValuesNotable == 0 {
		t.LabelValuesNotable = d.LabelValuesNotable
	}
	if t.LabelValuesHigh == 0 {
		t.LabelValuesHigh = d.LabelValuesHigh
	}
	if t.LabelGrowthFactor == 0 {
		t.LabelGrowthFactor = d.LabelGrowthFactor
	}
	if t.LabelGrowthMinimum == 0 {
		t.LabelGrowthMinimum = d.LabelGrowthMinimum
	}
	if t.CounterResets == 0 {
		t.CounterResets = d.CounterResets
	}
	if t.StaleAfter == 0 {
		t.StaleAfter = d.StaleAfter
	}
	if t.SeriesLimitShare == 0 {
		t.SeriesLimitShare = d.SeriesLimitShare
	}
	if t.RateDropShare == 0 {
		t.RateDropShare = d.RateDropShare
	}
	return t
}

// Validate checks the thresholds; messages name the config key under
// `recommendations`.
func (t Thresholds) Validate() error {
	var errs []error
	if t.LabelValuesNotable < 0 {
		errs = append(errs, fmt.Errorf("recommendations.label_values_notable: must not be negative, got %d", t.LabelValuesNotable))
	}
	if t.LabelValuesHigh < 0 {
		errs = append(errs, fmt.Errorf("recommendations.label_values_high: must not be negative, got %d", t.LabelValuesHigh))
	}
	if w := t.withDefaults(); w.LabelValuesHigh < w.LabelValuesNotable {
		errs = append(errs, fmt.Errorf("recommendations.label_values_high (%d) must be at least label_values_notable (%d)", w.LabelValuesHigh, w.LabelValuesNotable))
	}
	if t.LabelGrowthFactor != 0 && t.LabelGrowthFactor <= 1 {
		errs = append(errs, fmt.Errorf("recommendations.label_growth_factor: must be above 1, got %g", t.LabelGrowthFactor))
	}
	if t.LabelGrowthMinimum < 0 {
		errs = append(errs, fmt.Errorf("recommendations.label_growth_minimum: must not be negative, got %d", t.LabelGrowthMinimum))
	}
	if t.CounterResets < 0 {
		errs = append(errs, fmt.Errorf("recommendations.counter_resets: must not be negative, got %g", t.CounterResets))
	}
	if t.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("recommendations.stale_after: must not be negative, got %s", t.StaleAfter))
	}
	if t.SeriesLimitShare < 0 || t.SeriesLimitShare > 1 {
		errs = append(errs, fmt.Errorf("recommendations.series_limit_share: must be in (0, 1], got %g", t.SeriesLimitShare))
	}
	if t.RateDropShare < 0 || t.RateDropShare >= 1 {
		errs = append(errs, fmt.Errorf("recommendations.rate_drop_share: must be in (0, 1), got %g", t.RateDropShare))
	}
	return errors.Join(errs...)
}

// Recommend evaluates every rule, most severe first.
func Recommend(in Input) []Recommendation {
	th := in.Thresholds.withDefaults()
	var out []Recommendation
	for label, n := range in.LabelValues {
		before := in.LabelValuesBefore[label]
		switch {
		case n >= th.LabelValuesHigh:
			out = append(out, Recommendation{Rule: "label_cardinality_high", Severity: Warning, Subject: label,
				Message: fmt.Sprintf("label %q has %d distinct values", label, n),
				Action:  "drop the label or move its values (ids, URLs, timestamps) out of the labels"})
		case n >= th.LabelGrowthMinimum && before > 0 && float64(n) >= th.LabelGrowthFactor*float64(before):
			out = append(out, Recommendation{Rule: "label_cardinality_explosion", Severity: Warning, Subject: label,
				Message: fmt.Sprintf("label %q grew from %d to %d distinct values in %s", label, before, n, in.Window),
				Action:  "find the producer that started sending new values and bound them"})
		case n >= th.LabelValuesNotable:
			out = append(out, Recommendation{Rule: "label_cardinality_notable", Severity: Info, Subject: label,
				Message: fmt.Sprintf("label %q has %d distinct values (recommendations.label_values_notable: %d)", label, n, th.LabelValuesNotable),
				Action:  "check that its values are bounded (no ids, URLs with parameters, or timestamps); if they are, raise recommendations.label_values_notable"})
		}
	}
	for name, resets := range in.CounterResets {
		if resets >= th.CounterResets {
			out = append(out, Recommendation{Rule: "counter_resets", Severity: Warning, Subject: name,
				Message: fmt.Sprintf("counter %s reset %.0f times in %s", name, resets, in.Window),
				Action:  "check for restarting producers or a counter recorded as cumulative by several instances without distinguishing labels"})
		}
	}
	for name, t := range in.LastSeen {
		if idle := in.Now.Sub(t); idle >= th.StaleAfter {
			out = append(out, Recommendation{Rule: "metric_stale", Severity: Info, Subject: name,
				Message: fmt.Sprintf("metric %s has had no data for %s", name, idle.Truncate(time.Minute)),
				Action:  "check its producer, or unregister the metric if it is retired"})
		}
	}
	if in.SeriesLimit > 0 {
		for name, n := range in.SeriesPerMetric {
			if float64(n) >= th.SeriesLimitShare*float64(in.SeriesLimit) {
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
	if in.RateBefore > 0 && in.RateNow < th.RateDropShare*in.RateBefore {
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
