package stream

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func attrs(kv ...string) pcommon.Map {
	m := pcommon.NewMap()
	for i := 0; i < len(kv); i += 2 {
		m.PutStr(kv[i], kv[i+1])
	}
	return m
}

func TestFilterNames(t *testing.T) {
	counter := pb.MetricType_METRIC_TYPE_COUNTER
	tests := []struct {
		name   string
		filter *pb.MetricFilter
		match  []string
		miss   []string
	}{
		{name: "nil matches all", filter: nil, match: []string{"a", "http_requests_total"}},
		{name: "exact", filter: &pb.MetricFilter{Names: []string{"up", "down"}}, match: []string{"up", "down"}, miss: []string{"upx", "u"}},
		{name: "star glob", filter: &pb.MetricFilter{Names: []string{"http_*"}}, match: []string{"http_", "http_requests_total"}, miss: []string{"grpc_http_x", "xhttp_a"}},
		{name: "question glob", filter: &pb.MetricFilter{Names: []string{"db_?_latency"}}, match: []string{"db_a_latency"}, miss: []string{"db_ab_latency", "db__latency"}},
		{name: "class glob", filter: &pb.MetricFilter{Names: []string{"[ab]*"}}, match: []string{"a", "bc"}, miss: []string{"c", ""}},
		{name: "negated class", filter: &pb.MetricFilter{Names: []string{"[!ab]x"}}, match: []string{"cx"}, miss: []string{"ax"}},
		{name: "range class", filter: &pb.MetricFilter{Names: []string{"v[0-9]"}}, match: []string{"v7"}, miss: []string{"va"}},
		{name: "dot is literal", filter: &pb.MetricFilter{Names: []string{"a.b*"}}, match: []string{"a.bc"}, miss: []string{"axbc"}},
		{name: "escaped star", filter: &pb.MetricFilter{Names: []string{`a\*`}}, match: []string{"a*"}, miss: []string{"ab"}},
		{name: "regex", filter: &pb.MetricFilter{NameRegex: "process_.+_bytes"}, match: []string{"process_rss_bytes"}, miss: []string{"process_rss_bytes_total", "xprocess_a_bytes"}},
		{name: "names and regex are both conditions", filter: &pb.MetricFilter{Names: []string{"http_*"}, NameRegex: ".*_total"}, match: []string{"http_requests_total"}, miss: []string{"http_latency", "grpc_total"}},
		{name: "exclude", filter: &pb.MetricFilter{Names: []string{"http_*"}, ExcludeNames: []string{"http_debug_*", "http_x"}}, match: []string{"http_requests"}, miss: []string{"http_debug_a", "http_x"}},
		{name: "exclude alone", filter: &pb.MetricFilter{ExcludeNames: []string{"go_*"}}, match: []string{"http"}, miss: []string{"go_gc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CompileFilter(tt.filter)
			require.NoError(t, err)
			for _, n := range tt.match {
				assert.True(t, f.MatchMetric(n, counter, ""), n)
			}
			for _, n := range tt.miss {
				assert.False(t, f.MatchMetric(n, counter, ""), n)
			}
		})
	}
}

func TestFilterTypes(t *testing.T) {
	f, err := CompileFilter(&pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_GAUGE, pb.MetricType_METRIC_TYPE_TIMER}})
	require.NoError(t, err)
	assert.True(t, f.MatchMetric("g", pb.MetricType_METRIC_TYPE_GAUGE, ""))
	assert.False(t, f.MatchMetric("c", pb.MetricType_METRIC_TYPE_COUNTER, ""))
	assert.True(t, f.MatchMetric("t", pb.MetricType_METRIC_TYPE_HISTOGRAM, "s"), "timers are histograms in seconds")
	assert.False(t, f.MatchMetric("h", pb.MetricType_METRIC_TYPE_HISTOGRAM, "By"))

	h, err := CompileFilter(&pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_HISTOGRAM}})
	require.NoError(t, err)
	assert.True(t, h.MatchMetric("t", pb.MetricType_METRIC_TYPE_HISTOGRAM, "s"))
}

func TestFilterLabels(t *testing.T) {
	m := func(name string, op pb.MatchOperator, v string) *pb.LabelMatcher {
		return &pb.LabelMatcher{Name: name, Operator: op, Value: v}
	}
	tests := []struct {
		name     string
		matchers []*pb.LabelMatcher
		match    []pcommon.Map
		miss     []pcommon.Map
	}{
		{
			name:     "equal (unspecified operator)",
			matchers: []*pb.LabelMatcher{{Name: "method", Value: "GET"}},
			match:    []pcommon.Map{attrs("method", "GET", "path", "/")},
			miss:     []pcommon.Map{attrs("method", "POST"), attrs()},
		},
		{
			name:     "not equal",
			matchers: []*pb.LabelMatcher{m("method", pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL, "GET")},
			match:    []pcommon.Map{attrs("method", "POST"), attrs()},
			miss:     []pcommon.Map{attrs("method", "GET")},
		},
		{
			name:     "regex is anchored",
			matchers: []*pb.LabelMatcher{m("code", pb.MatchOperator_MATCH_OPERATOR_REGEX, "5..")},
			match:    []pcommon.Map{attrs("code", "503")},
			miss:     []pcommon.Map{attrs("code", "5031"), attrs("code", "200")},
		},
		{
			name:     "not regex",
			matchers: []*pb.LabelMatcher{m("code", pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX, "2..")},
			match:    []pcommon.Map{attrs("code", "404"), attrs()},
			miss:     []pcommon.Map{attrs("code", "200")},
		},
		{
			name:     "empty value matches a missing label",
			matchers: []*pb.LabelMatcher{m("tenant", pb.MatchOperator_MATCH_OPERATOR_EQUAL, "")},
			match:    []pcommon.Map{attrs("x", "y")},
			miss:     []pcommon.Map{attrs("tenant", "a")},
		},
		{
			name: "all matchers must match",
			matchers: []*pb.LabelMatcher{
				m("method", pb.MatchOperator_MATCH_OPERATOR_EQUAL, "GET"),
				m("path", pb.MatchOperator_MATCH_OPERATOR_REGEX, "/api/.*"),
			},
			match: []pcommon.Map{attrs("method", "GET", "path", "/api/users")},
			miss:  []pcommon.Map{attrs("method", "GET", "path", "/health"), attrs("path", "/api/x")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CompileFilter(&pb.MetricFilter{LabelMatchers: tt.matchers})
			require.NoError(t, err)
			require.True(t, f.HasLabelMatchers())
			for _, a := range tt.match {
				assert.True(t, f.MatchLabels(a), "%v", a.AsRaw())
			}
			for _, a := range tt.miss {
				assert.False(t, f.MatchLabels(a), "%v", a.AsRaw())
			}
		})
	}
	t.Run("non-string attribute", func(t *testing.T) {
		f, err := CompileFilter(&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "n", Value: "7"}}})
		require.NoError(t, err)
		a := pcommon.NewMap()
		a.PutInt("n", 7)
		assert.True(t, f.MatchLabels(a))
	})
}

func TestFilterErrorsNameTheField(t *testing.T) {
	tests := []struct {
		filter *pb.MetricFilter
		want   string
	}{
		{&pb.MetricFilter{Names: []string{"ok", "[ab"}}, "filter.names[1]: \"[ab\" is not a valid glob"},
		{&pb.MetricFilter{Names: []string{""}}, "filter.names[0]: must not be empty"},
		{&pb.MetricFilter{ExcludeNames: []string{`a\`}}, "filter.exclude_names[0]"},
		{&pb.MetricFilter{NameRegex: "(("}, "filter.name_regex"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "[z-a]"}}}, "filter.label_matchers[0].value"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Value: "x"}}}, "filter.label_matchers[0].name: must be set"},
		{&pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: 9}}}, "filter.label_matchers[0].operator"},
		{&pb.MetricFilter{Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_UNSPECIFIED}}, "filter.types[0]"},
	}
	for _, tt := range tests {
		_, err := CompileFilter(tt.filter)
		assert.ErrorContains(t, err, tt.want)
	}
}
