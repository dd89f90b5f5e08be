package stream

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Filter is a compiled MetricFilter. The name and type parts are evaluated
// once per metric name and cached by the hub; only label matchers run per
// data point.
type Filter struct {
	names        nameSet
	nameRegex    *regexp.Regexp
	exclude      nameSet
	labels       []labelMatcher
	types        uint32 // bit per pb.MetricType; 0: any
	matchesTimer bool   // types has TIMER: histograms in seconds match
}

// nameSet is a set of exact names and globs; empty matches nothing.
type nameSet struct {
	exact map[string]struct{}
	globs []*regexp.Regexp
}

func (s *nameSet) empty() bool { return len(s.exact) == 0 && len(s.globs) == 0 }

func (s *nameSet) match(name string) bool {
	if _, ok := s.exact[name]; ok {
		return true
	}
	for _, g := range s.globs {
		if g.MatchString(name) {
			return true
		}
	}
	return false
}

type labelMatcher struct {
	name  string
	op    pb.MatchOperator
	value string
	re    *regexp.Regexp
}

func (m *labelMatcher) match(v string) bool {
	switch m.op {
	case pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL:
		return v != m.value
	case pb.MatchOperator_MATCH_OPERATOR_REGEX:
		return m.re.MatchString(v)
	case pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX:
		return !m.re.MatchString(v)
	default:
		return v == m.value
	}
}

// CompileFilter compiles f (nil matches everything). Errors name the field,
// relative to the request ("filter.names[1]: ...").
func CompileFilter(f *pb.MetricFilter) (*Filter, error) {
	c := &Filter{}
	if f == nil {
		return c, nil
	}
	var err error
	if c.names, err = compileNames("filter.names", f.Names); err != nil {
		return nil, err
	}
	if c.exclude, err = compileNames("filter.exclude_names", f.ExcludeNames); err != nil {
		return nil, err
	}
	if f.NameRegex != "" {
		if c.nameRegex, err = regexp.Compile("^(?:" + f.NameRegex + ")$"); err != nil {
			return nil, fmt.Errorf("filter.name_regex: %q is not a valid RE2 regex: %w", f.NameRegex, err)
		}
	}
	for i, lm := range f.LabelMatchers {
		field := fmt.Sprintf("filter.label_matchers[%d]", i)
		if lm == nil || lm.Name == "" {
			return nil, fmt.Errorf("%s.name: must be set", field)
		}
		m := labelMatcher{name: lm.Name, op: lm.Operator, value: lm.Value}
		switch lm.Operator {
		case pb.MatchOperator_MATCH_OPERATOR_UNSPECIFIED, pb.MatchOperator_MATCH_OPERATOR_EQUAL:
			m.op = pb.MatchOperator_MATCH_OPERATOR_EQUAL
		case pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL:
		case pb.MatchOperator_MATCH_OPERATOR_REGEX, pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX:
			if m.re, err = regexp.Compile("^(?:" + lm.Value + ")$"); err != nil {
				return nil, fmt.Errorf("%s.value: %q is not a valid RE2 regex: %w", field, lm.Value, err)
			}
		default:
			return nil, fmt.Errorf("%s.operator: %d is unknown", field, lm.Operator)
		}
		c.labels = append(c.labels, m)
	}
	for i, t := range f.Types {
		if t <= pb.MetricType_METRIC_TYPE_UNSPECIFIED || t > pb.MetricType_METRIC_TYPE_TIMER {
			return nil, fmt.Errorf("filter.types[%d]: %d is not a metric type", i, t)
		}
		c.types |= 1 << uint(t)
		if t == pb.MetricType_METRIC_TYPE_TIMER {
			c.matchesTimer = true
		}
	}
	return c, nil
}

func compileNames(field string, names []string) (nameSet, error) {
	s := nameSet{}
	for i, n := range names {
		if n == "" {
			return s, fmt.Errorf("%s[%d]: must not be empty", field, i)
		}
		if !strings.ContainsAny(n, `*?[\`) {
			if s.exact == nil {
				s.exact = make(map[string]struct{}, len(names))
			}
			s.exact[n] = struct{}{}
			continue
		}
		expr, err := globRegexp(n)
		if err == nil {
			var re *regexp.Regexp
			if re, err = regexp.Compile(expr); err == nil {
				s.globs = append(s.globs, re)
				continue
			}
		}
		return s, fmt.Errorf("%s[%d]: %q is not a valid glob: %w", field, i, n, err)
	}
	return s, nil
}

// globRegexp turns a glob (*, ?, [abc], [a-z], [!a], \x) into an anchored
// regular expression.
func globRegexp(g string) (string, error) {
	if !utf8.ValidString(g) {
		return "", fmt.Errorf("not valid UTF-8")
	}
	var b strings.Builder
	// (?s): * and ? match any character, a newline too (as in PromQL)
	b.WriteString("^(?s:")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 == len(g) {
				return "", fmt.Errorf("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		case '[':
			j := i + 1
			if j < len(g) && (g[j] == '!' || g[j] == '^') {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++ // a leading ] is a literal
			}
			for j < len(g) && g[j] != ']' {
				j++
			}
			if j == len(g) {
				return "", fmt.Errorf("unterminated [")
			}
			class := g[i+1 : j]
			if class[0] == '!' {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		}
	}
	b.WriteString(")$")
	return b.String(), nil
}

// HasLabelMatchers reports whether the filter looks at data point labels.
func (f *Filter) HasLabelMatchers() bool { return len(f.labels) > 0 }

// indexLabel returns a label and value that a point must have to match
// (the first equality matcher with a non-empty value), for the hub's label
// index; ok is false when the filter has none.
func (f *Filter) indexLabel() (name, value string, ok bool) {
	for i := range f.labels {
		if m := &f.labels[i]; m.op == pb.MatchOperator_MATCH_OPERATOR_EQUAL && m.value != "" {
			return m.name, m.value, true
		}
	}
	return "", "", false
}

// MatchMetric reports whether a metric of this name, stream type and unit
// passes the name and type parts of the filter. Pipeline histograms carry no
// timer type: a filter on TIMER matches histograms whose unit is "s".
func (f *Filter) MatchMetric(name string, typ pb.MetricType, unit string) bool {
	if f.types != 0 && f.types&(1<<uint(typ)) == 0 {
		if !(f.matchesTimer && typ == pb.MetricType_METRIC_TYPE_HISTOGRAM && unit == "s") {
			return false
		}
	}
	if !f.names.empty() || f.nameRegex != nil {
		// names and name_regex are both conditions when set (AND)
		if !f.names.empty() && !f.names.match(name) {
			return false
		}
		if f.nameRegex != nil && !f.nameRegex.MatchString(name) {
			return false
		}
	}
	return !f.exclude.match(name)
}

// MatchLabels reports whether every label matcher matches; a missing label
// has the empty value, as in PromQL.
func (f *Filter) MatchLabels(attrs pcommon.Map) bool {
	for i := range f.labels {
		m := &f.labels[i]
		v := ""
		if a, ok := attrs.Get(m.name); ok {
			if a.Type() == pcommon.ValueTypeStr {
				v = a.Str()
			} else {
				v = a.AsString()
			}
		}
		if !m.match(v) {
			return false
		}
	}
	return true
}

// streamType is the MetricType a pipeline metric is streamed as.
func streamType(m pmetric.Metric) pb.MetricType {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			return pb.MetricType_METRIC_TYPE_COUNTER
		}
		return pb.MetricType_METRIC_TYPE_GAUGE
	case pmetric.MetricTypeGauge:
		return pb.MetricType_METRIC_TYPE_GAUGE
	case pmetric.MetricTypeHistogram, pmetric.MetricTypeExponentialHistogram:
		return pb.MetricType_METRIC_TYPE_HISTOGRAM
	case pmetric.MetricTypeSummary:
		return pb.MetricType_METRIC_TYPE_SUMMARY
	default:
		return pb.MetricType_METRIC_TYPE_UNSPECIFIED
	}
}
