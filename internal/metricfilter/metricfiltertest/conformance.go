// Package metricfiltertest holds the conformance table of metricfilter: a
// corpus of metrics and filters with the names each must select. It is the
// specification of the filter semantics; every user of metricfilter (stream,
// provider routing, GetMetrics, GetMetricsSummary) runs it in its tests.
package metricfiltertest

import (
	"sort"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Metric is one metric of the corpus, as an application records it. The
// store adds no suffix to its name, except the _bucket, _sum and _count of
// the series of a histogram: reads match names against series names, and
// the cases are written so that a histogram's family name and its series
// names select alike (see package metricfilter); users that read series
// compare the family names (FamilyOf).
type Metric struct {
	// Name of the metric.
	Name string
	// Type as recorded (TIMER: a histogram in seconds).
	Type pb.MetricType
	// Unit ("s" for timers; a pipeline histogram with unit "s" is a timer).
	Unit string
	// Labels of its one data point.
	Labels map[string]string
}

// Case is one filter and the corpus names it selects.
type Case struct {
	// Name of the case.
	Name string
	// Filter under test.
	Filter *pb.MetricFilter
	// Want is the sorted names of the corpus metrics the filter selects.
	Want []string
	// Labels is true when the case depends on label matchers (users that
	// cannot see labels per metric skip it and say so).
	Labels bool
}

// Corpus returns the metrics every case is evaluated over.
func Corpus() []Metric {
	return []Metric{
		{Name: "http_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Labels: map[string]string{"method": "GET", "code": "200"}},
		{Name: "http_errors_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Labels: map[string]string{"method": "POST", "code": "500"}},
		{Name: "queue_depth", Type: pb.MetricType_METRIC_TYPE_GAUGE, Labels: map[string]string{"queue": "mail"}},
		{Name: "db_latency_seconds", Type: pb.MetricType_METRIC_TYPE_TIMER, Unit: "s", Labels: map[string]string{"db": "users"}},
		{Name: "payload_size", Type: pb.MetricType_METRIC_TYPE_HISTOGRAM, Labels: map[string]string{"method": "GET"}},
	}
}

func names(ns ...string) []string {
	sort.Strings(ns)
	return ns
}

func eq(name, value string) *pb.LabelMatcher {
	return &pb.LabelMatcher{Name: name, Operator: pb.MatchOperator_MATCH_OPERATOR_EQUAL, Value: value}
}

// Cases returns the conformance table over Corpus.
func Cases() []Case {
	all := names("http_requests_total", "http_errors_total", "queue_depth", "db_latency_seconds", "payload_size")
	types := func(ts ...pb.MetricType) *pb.MetricFilter { return &pb.MetricFilter{Types: ts} }
	return []Case{
		{Name: "nil filter selects all", Filter: nil, Want: all},
		{Name: "empty filter selects all", Filter: &pb.MetricFilter{}, Want: all},
		{Name: "exact name", Filter: &pb.MetricFilter{Names: []string{"queue_depth"}}, Want: names("queue_depth")},
		{Name: "star glob", Filter: &pb.MetricFilter{Names: []string{"http_*"}}, Want: names("http_requests_total", "http_errors_total")},
		{Name: "question mark glob", Filter: &pb.MetricFilter{Names: []string{"queue_dept?"}}, Want: names("queue_depth")},
		{Name: "class glob", Filter: &pb.MetricFilter{Names: []string{"[dq]*"}}, Want: names("queue_depth", "db_latency_seconds")},
		{Name: "negated class glob", Filter: &pb.MetricFilter{Names: []string{"[!hq]*"}}, Want: names("db_latency_seconds", "payload_size")},
		{Name: "caret class glob", Filter: &pb.MetricFilter{Names: []string{"[^hq]*"}}, Want: names("db_latency_seconds", "payload_size")},
		// disagreed before: reads took \ as a literal, stream and providers as an escape
		{Name: "backslash escapes the next character", Filter: &pb.MetricFilter{Names: []string{`queue\_depth`}}, Want: names("queue_depth")},
		{Name: "escaped star is a literal star", Filter: &pb.MetricFilter{Names: []string{`http\*`}}, Want: nil},
		{Name: "glob matches the whole name", Filter: &pb.MetricFilter{Names: []string{"http"}}, Want: nil},
		{Name: "dot in a name is literal", Filter: &pb.MetricFilter{Names: []string{"queue.depth"}}, Want: nil},
		{Name: "names are alternatives", Filter: &pb.MetricFilter{Names: []string{"queue_depth", "payload_*"}}, Want: names("queue_depth", "payload_size")},
		{Name: "name regex anchored", Filter: &pb.MetricFilter{NameRegex: "http_.*_total"}, Want: names("http_requests_total", "http_errors_total")},
		{Name: "name regex is not a substring match", Filter: &pb.MetricFilter{NameRegex: "errors"}, Want: nil},
		{Name: "name regex alternation anchored as a whole", Filter: &pb.MetricFilter{NameRegex: "queue|http_errors_total"}, Want: names("http_errors_total")},
		// disagreed before: the summary took names OR name_regex
		{Name: "names and name regex both must match", Filter: &pb.MetricFilter{Names: []string{"http_*"}, NameRegex: ".*errors.*"}, Want: names("http_errors_total")},
		// disagreed before: the summary ignored exclude_names
		{Name: "exclude names", Filter: &pb.MetricFilter{Names: []string{"http_*"}, ExcludeNames: []string{"*errors*"}}, Want: names("http_requests_total")},
		{Name: "exclude only", Filter: &pb.MetricFilter{ExcludeNames: []string{"http_*", "queue_depth"}}, Want: names("db_latency_seconds", "payload_size")},
		// disagreed before: the summary ignored types; reads never matched TIMER
		{Name: "type counter", Filter: types(pb.MetricType_METRIC_TYPE_COUNTER), Want: names("http_requests_total", "http_errors_total")},
		{Name: "type gauge", Filter: types(pb.MetricType_METRIC_TYPE_GAUGE), Want: names("queue_depth")},
		{Name: "type timer matches a histogram in seconds", Filter: types(pb.MetricType_METRIC_TYPE_TIMER), Want: names("db_latency_seconds")},
		{Name: "type histogram matches timers too", Filter: types(pb.MetricType_METRIC_TYPE_HISTOGRAM), Want: names("db_latency_seconds", "payload_size")},
		{Name: "types are alternatives", Filter: types(pb.MetricType_METRIC_TYPE_GAUGE, pb.MetricType_METRIC_TYPE_TIMER), Want: names("queue_depth", "db_latency_seconds")},
		{Name: "type summary matches none", Filter: types(pb.MetricType_METRIC_TYPE_SUMMARY), Want: nil},
		// disagreed before: the summary ignored label matchers
		{Name: "label equal", Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{eq("method", "GET")}}, Want: names("http_requests_total", "payload_size"), Labels: true},
		{Name: "label unset operator is equal", Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "queue", Value: "mail"}}}, Want: names("queue_depth"), Labels: true},
		{Name: "label not equal (missing label is empty)", Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "method", Operator: pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL, Value: "GET"}}},
			Want: names("http_errors_total", "queue_depth", "db_latency_seconds"), Labels: true},
		{Name: "label regex anchored", Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "code", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "2.."}}},
			Want: names("http_requests_total"), Labels: true},
		{Name: "label not regex", Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "code", Operator: pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX, Value: "5..|"}}},
			Want: names("http_requests_total"), Labels: true},
		{Name: "label regex matching empty selects missing labels", Filter: &pb.MetricFilter{Names: []string{"*"}, LabelMatchers: []*pb.LabelMatcher{{Name: "db", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "users|"}}},
			Want: all, Labels: true},
		{Name: "every part must match", Filter: &pb.MetricFilter{
			Names: []string{"*"}, ExcludeNames: []string{"http_errors_total"}, Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER, pb.MetricType_METRIC_TYPE_HISTOGRAM},
			LabelMatchers: []*pb.LabelMatcher{eq("method", "GET")},
		}, Want: names("http_requests_total", "payload_size"), Labels: true},
	}
}

// Invalid returns filters every user must refuse, with the field the
// refusal names (relative to the request, under "filter").
func Invalid() []struct {
	Filter *pb.MetricFilter
	Field  string
} {
	return []struct {
		Filter *pb.MetricFilter
		Field  string
	}{
		{&pb.MetricFilter{Names: []string{"ok", "[a-"}}, "filter.names[1]"},
		{&pb.MetricFilter{Names: []string{"ok", "x", `trailing\`}}, "filter.names[2]"},
		{&pb.MetricFilter{Names: []string{""}}, "filter.names[0]"},
		{&pb.MetricFilter{ExcludeNames: []string{"[z-a]"}}, "filter.exclude_names[0]"},
		{&pb.MetricFilter{NameRegex: "("}, "filter.name_regex"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: ""}}}, "filter.label_matchers[0].name"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "("}}}, "filter.label_matchers[0].value"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: 9}}}, "filter.label_matchers[0].operator"},
		{&pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_UNSPECIFIED}}, "filter.types[0]"},
		{&pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_GAUGE, 42}}, "filter.types[1]"},
	}
}

// Metrics returns the corpus as pipeline metrics: one resource, one scope,
// each metric with one data point carrying its labels. Counters are
// monotonic cumulative sums, timers histograms with unit "s".
func Metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	ts := pcommon.Timestamp(1_700_000_000_000_000_000)
	for _, c := range Corpus() {
		m := sm.Metrics().AppendEmpty()
		m.SetName(c.Name)
		m.SetUnit(c.Unit)
		var attrs pcommon.Map
		switch c.Type {
		case pb.MetricType_METRIC_TYPE_COUNTER:
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := s.DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(1)
			attrs = dp.Attributes()
		case pb.MetricType_METRIC_TYPE_GAUGE:
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(1)
			attrs = dp.Attributes()
		case pb.MetricType_METRIC_TYPE_HISTOGRAM, pb.MetricType_METRIC_TYPE_TIMER:
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := h.DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetCount(1)
			dp.SetSum(0.5)
			dp.ExplicitBounds().FromRaw([]float64{1})
			dp.BucketCounts().FromRaw([]uint64{1, 0})
			attrs = dp.Attributes()
		}
		for k, v := range c.Labels {
			attrs.PutStr(k, v)
		}
	}
	return md
}

// Records returns the corpus as API records (for RecordBatchMetrics).
func Records() []*pb.MetricData {
	var out []*pb.MetricData
	for _, c := range Corpus() {
		d := &pb.MetricData{Name: c.Name, Type: c.Type, Unit: c.Unit, Labels: c.Labels, Value: 1}
		if c.Type == pb.MetricType_METRIC_TYPE_HISTOGRAM || c.Type == pb.MetricType_METRIC_TYPE_TIMER {
			d.Value = 0.5
		}
		out = append(out, d)
	}
	return out
}

// FamilyOf returns the corpus name a stored series name belongs to (a
// histogram's _bucket, _sum and _count series to the histogram), or the
// name itself.
func FamilyOf(series string) string {
	for _, m := range Corpus() {
		if m.Type != pb.MetricType_METRIC_TYPE_HISTOGRAM && m.Type != pb.MetricType_METRIC_TYPE_TIMER {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if series == m.Name+suffix {
				return m.Name
			}
		}
	}
	return series
}
