package metricfilter_test

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// list returns n distinct entries made by f.
func list(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// matchers returns n label matchers of operator op made by value.
func matchers(n int, op pb.MatchOperator, value func(i int) string) []*pb.LabelMatcher {
	out := make([]*pb.LabelMatcher, n)
	for i := range out {
		out[i] = &pb.LabelMatcher{Name: "l", Operator: op, Value: value(i)}
	}
	return out
}

// A filter is bounded in entries per list, bytes per string and regex
// program size: at the limit accepted, one over refused with an *Error
// naming the field, the size, the limit and the fix, the same for Compile
// and Validate, without repeating an oversized value.
func TestCompileBoundsFilter(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("n", n) }
	name := func(i int) string { return fmt.Sprintf("m%d", i) }
	// counted repetitions make a short regex a large program
	reps := func(n int) string { return strings.Repeat(".{1000}", n/1000) + strings.Repeat("x", n%1000) }
	require.Equal(t, ".{1000}.{1000}xx", reps(2002))
	eq, re := pb.MatchOperator_MATCH_OPERATOR_EQUAL, pb.MatchOperator_MATCH_OPERATOR_REGEX
	tests := []struct {
		name   string
		filter *pb.MetricFilter
		field  string // empty: accepted
		code   string
		want   []string
	}{
		{name: "1000 names", filter: &pb.MetricFilter{Names: list(metricfilter.MaxEntries, name)}},
		{
			name: "1001 names", filter: &pb.MetricFilter{Names: list(metricfilter.MaxEntries+1, name)},
			field: "filter.names", code: "too_many", want: []string{"1001 entries, at most 1000 are allowed", "fix: send at most 1000; match a family of names with a glob"},
		},
		{
			name: "1001 exclude_names", filter: &pb.MetricFilter{ExcludeNames: list(metricfilter.MaxEntries+1, name)},
			field: "filter.exclude_names", code: "too_many", want: []string{"1001 entries"},
		},
		{name: "1000 label matchers", filter: &pb.MetricFilter{LabelMatchers: matchers(metricfilter.MaxEntries, eq, name)}},
		{
			name: "1001 label matchers", filter: &pb.MetricFilter{LabelMatchers: matchers(metricfilter.MaxEntries+1, eq, name)},
			field: "filter.label_matchers", code: "too_many", want: []string{"1001 label matchers, at most 1000", "one regex matcher"},
		},
		{name: "1000 types", filter: &pb.MetricFilter{Types: make([]pb.MetricType, metricfilter.MaxEntries)}, field: "filter.types[0]", code: "invalid_value"},
		{
			name: "1001 types", filter: &pb.MetricFilter{Types: make([]pb.MetricType, metricfilter.MaxEntries+1)},
			field: "filter.types", code: "too_many", want: []string{"1001 types, at most 1000", "list each metric type once"},
		},
		{name: "name at the limit", filter: &pb.MetricFilter{Names: []string{long(metricfilter.MaxTextBytes)}}},
		{
			name: "name one byte over", filter: &pb.MetricFilter{Names: []string{"ok", long(metricfilter.MaxTextBytes + 1)}},
			field: "filter.names[1]", code: "too_long", want: []string{"has 4097 bytes, at most 4096 are allowed", "fix: shorten the name or glob"},
		},
		{name: "glob at the limit", filter: &pb.MetricFilter{ExcludeNames: []string{long(metricfilter.MaxTextBytes-1) + "*"}}},
		{
			name: "glob one byte over", filter: &pb.MetricFilter{ExcludeNames: []string{long(metricfilter.MaxTextBytes) + "*"}},
			field: "filter.exclude_names[0]", code: "too_long", want: []string{"has 4097 bytes"},
		},
		{name: "name_regex at the limit", filter: &pb.MetricFilter{NameRegex: long(metricfilter.MaxTextBytes)}},
		{
			name: "name_regex one byte over", filter: &pb.MetricFilter{NameRegex: long(metricfilter.MaxTextBytes + 1)},
			field: "filter.name_regex", code: "too_long", want: []string{"has 4097 bytes, at most 4096", "fix: shorten the regex"},
		},
		{name: "label name at the limit", filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: long(metricfilter.MaxTextBytes)}}}},
		{
			name: "label name one byte over", filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: long(metricfilter.MaxTextBytes + 1)}}},
			field: "filter.label_matchers[0].name", code: "too_long", want: []string{"has 4097 bytes"},
		},
		{name: "label value at the limit", filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "l", Value: long(metricfilter.MaxTextBytes)}}}},
		{
			name: "label value one byte over", filter: &pb.MetricFilter{LabelMatchers: matchers(4, eq, func(i int) string { return long(4094 + i) })},
			field: "filter.label_matchers[3].value", code: "too_long", want: []string{"has 4097 bytes, at most 4096", "fix: shorten the value"},
		},
		{name: "regex program at the limit", filter: &pb.MetricFilter{NameRegex: reps(metricfilter.MaxProgramSize)}},
		{
			name: "regex program one over", filter: &pb.MetricFilter{NameRegex: reps(metricfilter.MaxProgramSize + 1)},
			field: "filter.name_regex", code: "too_large", want: []string{"compiles to about 65537 regex instructions", "at most 65536 are allowed together", "fix: use smaller repetition counts"},
		},
		{
			name: "regex matchers over together", filter: &pb.MetricFilter{
				NameRegex: reps(40000), LabelMatchers: matchers(2, re, func(int) string { return reps(20000) }),
			},
			field: "filter.label_matchers[1].value", code: "too_large", want: []string{"compiles to about 20000 regex instructions, 80000 with the filter's other globs and regexes; at most 65536"},
		},
		{
			name: "globs over together", filter: &pb.MetricFilter{Names: list(20, func(i int) string { return fmt.Sprintf("%d%s", i, strings.Repeat("?", 4000)) })},
			field: "filter.names[16]", code: "too_large", want: []string{"at most 65536"},
		},
		{name: "a few Unicode classes", filter: &pb.MetricFilter{NameRegex: strings.Repeat(`\pL`, 99)}},
		{
			// 4 KiB of \pL took 0.4 s to compile and kept 13 MB
			name: "Unicode classes count their ranges", filter: &pb.MetricFilter{NameRegex: strings.Repeat(`\pL`, 100)},
			field: "filter.name_regex", code: "too_large", want: []string{"compiles to about 66000 regex instructions"},
		},
		{name: "exact names do not count", filter: &pb.MetricFilter{Names: list(100, func(i int) string { return fmt.Sprintf("%d%s", i, long(4000)) })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := metricfilter.Compile(tt.filter)
			if tt.field == "" {
				require.NoError(t, err)
				require.NotNil(t, f)
				return
			}
			var fe *metricfilter.Error
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tt.field, fe.Field)
			assert.Equal(t, tt.code, fe.Code)
			assert.Less(t, len(err.Error()), 512, "the message does not repeat an oversized value")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Equal(t, fe.Code != "invalid_value", fe.Bound())
			errs := metricfilter.Validate("config.filter", tt.filter)
			require.NotEmpty(t, errs)
			assert.Equal(t, "config."+tt.field, errs[0].Field)
		})
	}
}

// Validate reports a list over its bound once, without checking its
// entries, and the other parts' problems beside it.
func TestValidateReportsBoundsOnce(t *testing.T) {
	t.Parallel()
	errs := metricfilter.Validate("filter", &pb.MetricFilter{
		Names: make([]string, metricfilter.MaxEntries+1), NameRegex: strings.Repeat("[a-z]{1000}", 100),
		LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: strings.Repeat("[a-z]{1000}", 3)}},
	})
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field+" "+e.Code)
	}
	assert.Equal(t, []string{"filter.names too_many", "filter.name_regex too_large"}, fields, "the budget is reported once")
}

// The program size estimate is at least what Go's regexp compiles to.
func TestProgramSizeEstimateCoversTheCompiledProgram(t *testing.T) {
	t.Parallel()
	for _, re := range []string{"a", "abc", "a|b|c", "(a+)?b*", "[a-z]{3,7}", "(?:ab){2,}", "x{0,5}", "(?:[0-9]{10}){10}", ".*foo.*"} {
		p, err := syntax.Parse(re, syntax.Perl|syntax.DotNL)
		require.NoError(t, err)
		prog, err := syntax.Compile(p.Simplify())
		require.NoError(t, err)
		n := metricfilter.ProgramSize(re)
		assert.GreaterOrEqual(t, n+2, int64(len(prog.Inst)), re) // + the match and fail instructions
	}
}
