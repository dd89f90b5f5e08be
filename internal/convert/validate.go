package convert

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Issue is one refused record: which item, which field, what rule, how to fix.
type Issue struct {
	// Index of the item in its request (0 for RecordMetric).
	Index int
	// Field path, e.g. `metrics[3].labels["path"]`.
	Field string
	// Code is a stable rule name, e.g. "invalid_metric_name".
	Code string
	// Message says what is wrong.
	Message string
	// Suggestion says how to fix it.
	Suggestion string
	// Kind says what the refusal is, for the server to map to its
	// protocol's status (the zero value is KindInvalid).
	Kind Kind
}

// Kind classifies a refusal.
type Kind uint8

const (
	// KindInvalid is a record that breaks a rule: resending it unchanged is
	// refused again.
	KindInvalid Kind = iota
	// KindResourceExhausted is a record that would pass a limit (metric
	// names, series per metric): drop labels or raise the limit.
	KindResourceExhausted
	// KindOutOfRange is a record whose timestamp is outside what the
	// store keeps (too old or too far ahead).
	KindOutOfRange
)

func (i *Issue) Error() string {
	return i.Field + ": " + i.Message
}

func invalid(field, code, msg, suggestion string) *Issue {
	return &Issue{Field: field, Code: code, Message: msg, Suggestion: suggestion, Kind: KindInvalid}
}

// invalidUTF8 is the refusal of a string that is not valid UTF-8 (the store
// could not read it back). more is added to the fix.
func invalidUTF8(field, msg, more string) *Issue {
	fix := "send valid UTF-8; encode binary data (base64, hex) or replace invalid bytes with U+FFFD"
	if more != "" {
		fix += "; " + more
	}
	return invalid(field, "invalid_utf8", msg, fix)
}

// validateAttrsUTF8 checks that the keys and values of resource attributes
// are valid UTF-8; field is the path of the map (".resource.attributes").
// With several bad attributes it names the smallest key, so that the answer
// does not depend on map order.
func validateAttrsUTF8(attrs map[string]string, field string) *Issue {
	bad, found := "", false
	for k, v := range attrs {
		if (!utf8.ValidString(k) || !utf8.ValidString(v)) && (!found || k < bad) {
			bad, found = k, true
		}
	}
	if !found {
		return nil
	}
	path := field + "[" + strconv.Quote(bad) + "]"
	if !utf8.ValidString(bad) {
		return invalidUTF8(path, fmt.Sprintf("resource attribute name %q is not valid UTF-8", bad), "")
	}
	return invalidUTF8(path, fmt.Sprintf("resource attribute %q value %q is not valid UTF-8", bad, attrs[bad]), "")
}

// tooLong is the refusal of a string over a size limit; key is the limit's
// config key under limits.
func tooLong(field, code, what string, n, limit int, key string) *Issue {
	return invalid(field, code, fmt.Sprintf("%s is %d bytes, the limit is %d (limits.%s)", what, n, limit, key),
		"shorten the "+what+", or raise limits."+key)
}

// validateResource checks resource attributes: their number, the sizes of
// their names and values (they become target_info labels, service.name the
// job label) and UTF-8.
func validateResource(attrs map[string]string, field string, lim *Limits) *Issue {
	if lim.MaxResourceAttributes > 0 && len(attrs) > lim.MaxResourceAttributes {
		return invalid(field, "too_many_resource_attributes",
			fmt.Sprintf("resource has %d attributes, the limit is %d (limits.max_resource_attributes)", len(attrs), lim.MaxResourceAttributes),
			"drop attributes that do not identify the source, or raise limits.max_resource_attributes")
	}
	if limit := lim.MaxResourceAttributeBytes; limit > 0 {
		bad, n, found := "", 0, false
		for k, v := range attrs {
			if (len(k) > limit || len(v) > limit) && (!found || k < bad) {
				bad, n, found = k, max(len(k), len(v)), true
			}
		}
		if found {
			what := "resource attribute " + strconv.Quote(bad[:min(len(bad), 64)]) + " value"
			if len(bad) > limit {
				what = "resource attribute name"
			}
			return tooLong(field+"["+strconv.Quote(bad[:min(len(bad), 64)])+"]", "resource_attribute_too_long", what, n, limit, "max_resource_attribute_bytes")
		}
	}
	return validateAttrsUTF8(attrs, field)
}

// checkBuckets refuses a pre-aggregated histogram with more buckets than
// limits.max_buckets: each bucket becomes a stored series.
func checkBuckets(h *pb.HistogramValue, field string, lim *Limits) *Issue {
	if lim.MaxBuckets <= 0 {
		return nil
	}
	n, what := len(h.ExplicitBounds)+1, "explicit_bounds"
	if e := h.Exponential; e != nil {
		n, what = len(e.PositiveBucketCounts)+len(e.NegativeBucketCounts), "exponential"
	}
	if n > lim.MaxBuckets {
		return invalid(field+"."+what, "too_many_buckets",
			fmt.Sprintf("histogram has %d buckets, the limit is %d (limits.max_buckets)", n, lim.MaxBuckets),
			"use fewer bucket bounds, or raise limits.max_buckets")
	}
	return nil
}

// promNamer translates names the way the store does (name, unit suffix,
// _total).
var promNamer = otlptranslator.MetricNamer{WithMetricSuffixes: true}

// checkPromName refuses a record whose Prometheus name (the name with its
// unit suffix and _total) is longer than limits.max_name_bytes. Translation
// runs only when the name and unit are long enough to reach the limit.
func checkPromName(m *pb.MetricData, lim *Limits) *Issue {
	// the longest unit expansion is "s" -> "seconds" (x7), plus separators
	// and "_total"
	if m.Unit == "" || len(m.Name)+8*len(m.Unit)+16 <= lim.MaxNameBytes {
		return nil
	}
	var typ otlptranslator.MetricType = otlptranslator.MetricTypeGauge
	if m.Type == pb.MetricType_METRIC_TYPE_COUNTER {
		typ = otlptranslator.MetricTypeMonotonicCounter
	}
	name, err := promNamer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: typ})
	if err != nil || len(name) <= lim.MaxNameBytes {
		return nil
	}
	return invalid(".unit", "metric_name_too_long",
		fmt.Sprintf("metric name with its unit suffix is %d bytes, the limit is %d (limits.max_name_bytes)", len(name), lim.MaxNameBytes),
		"shorten the name or the unit, or raise limits.max_name_bytes")
}

// validMetricName reports whether s is [a-zA-Z_:][a-zA-Z0-9_:.]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// validLabelName reports whether s is [a-zA-Z_][a-zA-Z0-9_.]*.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// unixNano is ts.AsTime().UnixNano() without building a time.Time.
func unixNano(ts *timestamppb.Timestamp) int64 {
	return ts.GetSeconds()*1e9 + int64(ts.GetNanos())
}

// validateRecord checks one record against the built-in rules. labels are
// the record's labels sorted by name (nil when there are more than
// lim.MaxLabels), nLabels their number. With seriesChecked, the checks of
// the series (name and labels) are skipped: they passed on an earlier record
// of the series (see seriesCache). Field paths of its issues are relative to
// the item (".name"); the caller prefixes them with the item's path.
// nowNanos is the receive time.
func validateRecord(m *pb.MetricData, labels []kv, nLabels int, seriesChecked bool, nowNanos int64, lim *Limits, allowsNaN func(string) bool) *Issue {
	if m == nil {
		return invalid("", "missing_metric", "the metric is not set", "set the metric field")
	}
	if !seriesChecked {
		if iss := validateSeries(m, labels, nLabels, lim); iss != nil {
			return iss
		}
	}
	return validatePoint(m, nowNanos, lim, allowsNaN)
}

// validateSeries runs the checks of validateRecord that depend only on the
// record's series: its name and labels.
func validateSeries(m *pb.MetricData, labels []kv, nLabels int, lim *Limits) *Issue {
	if m.Name == "" {
		return invalid(".name", "empty_metric_name", "metric name is empty", "give the metric a name such as http_requests_total")
	}
	if len(m.Name) > lim.MaxNameBytes {
		return invalid(".name", "metric_name_too_long",
			fmt.Sprintf("metric name is %d bytes, the limit is %d (limits.max_name_bytes)", len(m.Name), lim.MaxNameBytes), "shorten the name, or raise limits.max_name_bytes")
	}
	if !validMetricName(m.Name) {
		if !utf8.ValidString(m.Name) {
			return invalidUTF8(".name", fmt.Sprintf("metric name %q is not valid UTF-8", m.Name), "metric names must match [a-zA-Z_:][a-zA-Z0-9_:.]*")
		}
		return invalid(".name", "invalid_metric_name",
			fmt.Sprintf("metric name %q is invalid: it must match [a-zA-Z_:][a-zA-Z0-9_:.]*", m.Name),
			"replace other characters with '_' and do not start with a digit")
	}
	if lim.MaxLabels > 0 && nLabels > lim.MaxLabels {
		return invalid(".labels", "too_many_labels",
			fmt.Sprintf("metric %q has %d labels, the limit is %d", m.Name, nLabels, lim.MaxLabels),
			"drop labels that do not identify the series")
	}
	for _, l := range labels {
		k, v := l.k, l.v
		if !validLabelName(k) {
			if !utf8.ValidString(k) {
				return invalidUTF8(".labels["+strconv.Quote(k)+"]", fmt.Sprintf("label name %q is not valid UTF-8", k), "label names must match [a-zA-Z_][a-zA-Z0-9_.]*")
			}
			return invalid(".labels["+strconv.Quote(k)+"]", "invalid_label_name",
				fmt.Sprintf("label name %q is invalid: it must match [a-zA-Z_][a-zA-Z0-9_.]*", k),
				"replace other characters with '_' and do not start with a digit")
		}
		if lim.MaxLabelNameBytes > 0 && len(k) > lim.MaxLabelNameBytes {
			return tooLong(".labels["+strconv.Quote(k[:min(len(k), 64)])+"]", "label_name_too_long", "label name", len(k), lim.MaxLabelNameBytes, "max_label_name_bytes")
		}
		if len(k) >= 2 && k[0] == '_' && k[1] == '_' {
			return invalid(".labels["+strconv.Quote(k)+"]", "reserved_label_name",
				fmt.Sprintf("label name %q is reserved: names starting with \"__\" are for internal use", k),
				"rename the label")
		}
		if len(v) > lim.MaxLabelValueBytes {
			return invalid(".labels["+strconv.Quote(k)+"]", "label_value_too_long",
				fmt.Sprintf("label %q value is %d bytes, the limit is %d (limits.max_label_value_bytes)", k, len(v), lim.MaxLabelValueBytes),
				"shorten the value or move it out of the labels, or raise limits.max_label_value_bytes")
		}
		if !utf8.ValidString(v) {
			return invalidUTF8(".labels["+strconv.Quote(k)+"]", fmt.Sprintf("label %q value %q is not valid UTF-8", k, v), "")
		}
	}
	return nil
}

// validatePoint runs the checks of validateRecord that depend on the
// record's other fields: unit, description, resource, timestamp and values.
func validatePoint(m *pb.MetricData, nowNanos int64, lim *Limits, allowsNaN func(string) bool) *Issue {
	if lim.MaxUnitBytes > 0 && len(m.Unit) > lim.MaxUnitBytes {
		return tooLong(".unit", "unit_too_long", "unit", len(m.Unit), lim.MaxUnitBytes, "max_unit_bytes")
	}
	if lim.MaxDescriptionBytes > 0 && len(m.Description) > lim.MaxDescriptionBytes {
		return tooLong(".description", "description_too_long", "description", len(m.Description), lim.MaxDescriptionBytes, "max_description_bytes")
	}
	if iss := checkPromName(m, lim); iss != nil {
		return iss
	}
	if m.Unit != "" && !utf8.ValidString(m.Unit) {
		return invalidUTF8(".unit", fmt.Sprintf("unit %q is not valid UTF-8", m.Unit), "")
	}
	if m.Description != "" && !utf8.ValidString(m.Description) {
		return invalidUTF8(".description", fmt.Sprintf("description %q is not valid UTF-8", m.Description), "")
	}
	if m.Resource != nil {
		if iss := validateResource(m.Resource.Attributes, ".resource.attributes", lim); iss != nil {
			return iss
		}
	}
	if m.Timestamp != nil {
		if err := m.Timestamp.CheckValid(); err != nil {
			return invalid(".timestamp", "invalid_timestamp", err.Error(), "send a valid timestamp or leave it unset for the receive time")
		}
		ts := unixNano(m.Timestamp)
		if ts > nowNanos+int64(lim.MaxFutureSkew) {
			return invalid(".timestamp", "timestamp_in_future",
				fmt.Sprintf("timestamp %s is more than %s ahead of the server clock", m.Timestamp.AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00"), lim.MaxFutureSkew),
				"check the client clock, or leave the timestamp unset for the receive time")
		}
	}
	if m.SampleRate < 0 || m.SampleRate > 1 || math.IsNaN(m.SampleRate) {
		return invalid(".sample_rate", "invalid_sample_rate",
			fmt.Sprintf("sample_rate %v is outside (0,1]", m.SampleRate), "use a rate in (0,1], or 0 for unsampled")
	}
	switch m.Type {
	case pb.MetricType_METRIC_TYPE_COUNTER:
		if !finite(m.Value) {
			return invalid(".value", "non_finite_value", fmt.Sprintf("counter value %v is not a finite number", m.Value), "send a finite number")
		}
		if m.Value < 0 {
			if m.Cumulative {
				return invalid(".value", "negative_counter", fmt.Sprintf("cumulative counter total %v is negative", m.Value), "counters only go up; use a gauge for values that go down")
			}
			return invalid(".value", "negative_counter_increment", fmt.Sprintf("counter increment %v is negative", m.Value), "counters only go up; use a gauge for values that go down")
		}
	case pb.MetricType_METRIC_TYPE_GAUGE:
		if math.IsNaN(m.Value) && !allowsNaN(m.Name) {
			return invalid(".value", "nan_value", "gauge value is NaN", "send a number; omit the record when there is no value")
		}
	case pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER, pb.MetricType_METRIC_TYPE_SUMMARY:
		if m.Histogram != nil && m.Summary != nil {
			return invalid("", "conflicting_values", "both histogram and summary are set", "set the one that matches the type")
		}
		switch {
		case m.Histogram != nil:
			if m.Type == pb.MetricType_METRIC_TYPE_SUMMARY {
				return invalid(".histogram", "type_mismatch", "a summary record carries a histogram value", "send a summary value or change the type to METRIC_TYPE_HISTOGRAM")
			}
			if iss := checkBuckets(m.Histogram, ".histogram", lim); iss != nil {
				return iss
			}
			return validateHistogram(m.Histogram, ".histogram")
		case m.Summary != nil:
			if m.Type != pb.MetricType_METRIC_TYPE_SUMMARY {
				return invalid(".summary", "type_mismatch", "a "+typeName(m.Type)+" record carries a summary value", "send a histogram value or change the type to METRIC_TYPE_SUMMARY")
			}
			return validateSummary(m.Summary, ".summary")
		case len(m.Observations) > 0:
			for j, v := range m.Observations {
				if iss := validateObservation(m.Type, v, ".observations["+strconv.Itoa(j)+"]"); iss != nil {
					return iss
				}
			}
		default:
			return validateObservation(m.Type, m.Value, ".value")
		}
	case pb.MetricType_METRIC_TYPE_UNSPECIFIED:
		return invalid(".type", "missing_type", "metric type is not set", "set type to METRIC_TYPE_COUNTER, _GAUGE, _HISTOGRAM, _SUMMARY or _TIMER")
	default:
		return invalid(".type", "unknown_type", fmt.Sprintf("metric type %d is unknown", int32(m.Type)), "set type to METRIC_TYPE_COUNTER, _GAUGE, _HISTOGRAM, _SUMMARY or _TIMER")
	}
	return nil
}

func validateObservation(t pb.MetricType, v float64, field string) *Issue {
	if !finite(v) {
		return invalid(field, "non_finite_value", fmt.Sprintf("observation %v is not a finite number", v), "send a finite number")
	}
	if t == pb.MetricType_METRIC_TYPE_TIMER && v < 0 {
		return invalid(field, "negative_duration", fmt.Sprintf("timer observation %v is negative", v), "send durations in seconds, >= 0")
	}
	return nil
}

func validateHistogram(h *pb.HistogramValue, field string) *Issue {
	if !finite(h.Sum) {
		return invalid(field+".sum", "non_finite_value", "histogram sum is not a finite number", "send a finite sum")
	}
	if e := h.Exponential; e != nil {
		if len(h.ExplicitBounds) > 0 || len(h.BucketCounts) > 0 {
			return invalid(field, "conflicting_buckets", "both explicit and exponential buckets are set", "send one bucket layout")
		}
		if e.Scale < -10 || e.Scale > 20 {
			return invalid(field+".exponential.scale", "invalid_scale", fmt.Sprintf("scale %d is outside [-10,20]", e.Scale), "use a scale in [-10,20]")
		}
		total := e.ZeroCount
		for _, c := range e.PositiveBucketCounts {
			total += c
		}
		for _, c := range e.NegativeBucketCounts {
			total += c
		}
		if total != h.Count {
			return invalid(field+".count", "count_mismatch", fmt.Sprintf("count %d differs from the sum of the buckets %d", h.Count, total), "set count to the sum of all bucket counts")
		}
		return nil
	}
	if len(h.BucketCounts) != len(h.ExplicitBounds)+1 {
		return invalid(field+".bucket_counts", "bucket_count_mismatch",
			fmt.Sprintf("%d bucket counts for %d bounds; there must be one more count than bounds (the +Inf bucket)", len(h.BucketCounts), len(h.ExplicitBounds)),
			"send len(explicit_bounds)+1 bucket counts")
	}
	for i, b := range h.ExplicitBounds {
		if !finite(b) {
			return invalid(field+".explicit_bounds["+strconv.Itoa(i)+"]", "non_finite_bound", "bucket bound is not finite", "leave +Inf out: it is implied")
		}
		if i > 0 && b <= h.ExplicitBounds[i-1] {
			return invalid(field+".explicit_bounds["+strconv.Itoa(i)+"]", "unsorted_bounds", "bucket bounds must be strictly increasing", "sort the bounds and drop duplicates")
		}
	}
	var total uint64
	for _, c := range h.BucketCounts {
		total += c
	}
	if total != h.Count {
		return invalid(field+".count", "count_mismatch", fmt.Sprintf("count %d differs from the sum of the buckets %d", h.Count, total), "set count to the sum of all bucket counts")
	}
	return nil
}

func validateSummary(s *pb.SummaryValue, field string) *Issue {
	if !finite(s.Sum) {
		return invalid(field+".sum", "non_finite_value", "summary sum is not a finite number", "send a finite sum")
	}
	for i, q := range s.Quantiles {
		if q == nil || q.Quantile < 0 || q.Quantile > 1 || math.IsNaN(q.Quantile) {
			return invalid(field+".quantiles["+strconv.Itoa(i)+"]", "invalid_quantile", "quantile must be in [0,1]", "send quantiles such as 0.5, 0.9, 0.99")
		}
	}
	return nil
}

func typeName(t pb.MetricType) string {
	switch t {
	case pb.MetricType_METRIC_TYPE_COUNTER:
		return "counter"
	case pb.MetricType_METRIC_TYPE_GAUGE:
		return "gauge"
	case pb.MetricType_METRIC_TYPE_HISTOGRAM:
		return "histogram"
	case pb.MetricType_METRIC_TYPE_SUMMARY:
		return "summary"
	case pb.MetricType_METRIC_TYPE_TIMER:
		return "timer"
	default:
		return "unspecified"
	}
}
