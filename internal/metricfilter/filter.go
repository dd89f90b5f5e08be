package metricfilter

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Error is a refused filter: the field (relative to the request, e.g.
// "filter.names[2]"), a short code, what is wrong and how to fix it.
type Error struct {
	// Field is the path of the refused field.
	Field string
	// Code is a short machine-readable reason: invalid_glob, invalid_regex,
	// required, invalid_value.
	Code string
	// Message says what is wrong.
	Message string
	// Fix says how to correct it.
	Fix string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Fix == "" {
		return e.Field + ": " + e.Message
	}
	return e.Field + ": " + e.Message + " (fix: " + e.Fix + ")"
}

const (
	globFix  = `use *, ? and [...] classes such as [a-z], and \ to escape a character`
	regexFix = "use RE2 syntax (https://github.com/google/re2/wiki/Syntax)"
)

// Filter is a compiled MetricFilter. The zero value and a nil *Filter match
// everything. Its methods do not allocate and are safe for concurrent use.
type Filter struct {
	names     nameSet
	nameRegex *labels.FastRegexMatcher
	exclude   nameSet
	labels    []*labels.Matcher
	types     uint32 // bit per pb.MetricType; 0: any

	// the parts for Matchers, in the store's form
	namesExpr   string // union of names as one regex; "" when no names
	regexSource string
	excludeExpr []string
}

// nameSet is a set of exact names and globs; empty matches nothing.
type nameSet struct {
	exact map[string]struct{}
	globs []*labels.FastRegexMatcher
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

// Compile compiles f; errors name fields under "filter". A nil f matches
// everything.
func Compile(f *pb.MetricFilter) (*Filter, error) { return CompileAt("filter", f) }

// CompileAt is Compile with errors naming fields under field (e.g.
// "config.filter"). The error is the first *Error of Validate.
func CompileAt(field string, f *pb.MetricFilter) (*Filter, error) {
	c, errs := compile(field, f, true)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return c, nil
}

// Validate returns every problem of f, each an *Error naming its field
// under field; nil when f compiles.
func Validate(field string, f *pb.MetricFilter) []*Error {
	_, errs := compile(field, f, false)
	return errs
}

func compile(field string, f *pb.MetricFilter, firstOnly bool) (*Filter, []*Error) {
	c := &Filter{}
	if f == nil {
		return c, nil
	}
	var errs []*Error
	add := func(e *Error) bool {
		errs = append(errs, e)
		return firstOnly
	}
	var (
		prog  program
		exprs []string
		stop  bool
	)
	c.names, exprs, stop = compileNames(field+".names", f.GetNames(), &prog, add)
	if stop {
		return nil, errs
	}
	if len(exprs) > 0 {
		c.namesExpr = strings.Join(exprs, "|")
	}
	c.exclude, c.excludeExpr, stop = compileNames(field+".exclude_names", f.GetExcludeNames(), &prog, add)
	if stop {
		return nil, errs
	}
	if re := f.GetNameRegex(); re != "" {
		rf := field + ".name_regex"
		if len(re) > MaxTextBytes {
			if add(tooLong(rf, len(re), "shorten the regex; list the names instead, or match a family with a glob")) {
				return nil, errs
			}
		} else if e, skip := prog.take(rf, re); e != nil || skip {
			if e != nil && add(e) {
				return nil, errs
			}
		} else {
			m, err := compileRegex(re)
			if err != nil {
				if add(&Error{Field: rf, Code: "invalid_regex", Message: fmt.Sprintf("%q is not a valid RE2 regex: %v", re, err), Fix: regexFix}) {
					return nil, errs
				}
			}
			c.nameRegex, c.regexSource = m, re
		}
	}
	if lms := f.GetLabelMatchers(); len(lms) > MaxEntries {
		if add(tooMany(field+".label_matchers", len(lms), "label matchers",
			fmt.Sprintf("send at most %d; match several values of a label with one regex matcher (=~ \"a|b\")", MaxEntries))) {
			return nil, errs
		}
	} else if stop := compileLabelMatchers(field, lms, c, &prog, add); stop {
		return nil, errs
	}
	if ts := f.GetTypes(); len(ts) > MaxEntries {
		if add(tooMany(field+".types", len(ts), "types", "list each metric type once")) {
			return nil, errs
		}
	} else {
		for i, t := range ts {
			if t <= pb.MetricType_METRIC_TYPE_UNSPECIFIED || t > pb.MetricType_METRIC_TYPE_TIMER {
				if add(&Error{Field: fmt.Sprintf("%s.types[%d]", field, i), Code: "invalid_value", Message: fmt.Sprintf("%v is not a metric type", t),
					Fix: "use METRIC_TYPE_COUNTER, _GAUGE, _HISTOGRAM, _SUMMARY or _TIMER"}) {
					return nil, errs
				}
				continue
			}
			c.types |= 1 << uint(t)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// compileLabelMatchers compiles lms into c.labels; stop is true when add
// asked to stop.
func compileLabelMatchers(field string, lms []*pb.LabelMatcher, c *Filter, prog *program, add func(*Error) bool) (stop bool) {
	for i, lm := range lms {
		lf := fmt.Sprintf("%s.label_matchers[%d]", field, i)
		if n := len(lm.GetName()); n > MaxTextBytes {
			if add(tooLong(lf+".name", n, "use the label's name (label names are short)")) {
				return true
			}
			continue
		}
		if n := len(lm.GetValue()); n > MaxTextBytes {
			if add(tooLong(lf+".value", n, "shorten the value; match a family of values with a regex matcher")) {
				return true
			}
			continue
		}
		if lm.GetName() == "" {
			// reported; the operator and value are still checked
			if add(&Error{Field: lf + ".name", Code: "required", Message: "must be set", Fix: "set name to the label to match"}) {
				return true
			}
		}
		var typ labels.MatchType
		switch lm.GetOperator() {
		case pb.MatchOperator_MATCH_OPERATOR_UNSPECIFIED, pb.MatchOperator_MATCH_OPERATOR_EQUAL:
			typ = labels.MatchEqual
		case pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL:
			typ = labels.MatchNotEqual
		case pb.MatchOperator_MATCH_OPERATOR_REGEX:
			typ = labels.MatchRegexp
		case pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX:
			typ = labels.MatchNotRegexp
		default:
			if add(&Error{Field: lf + ".operator", Code: "invalid_value", Message: fmt.Sprintf("%d is not a match operator", lm.GetOperator()),
				Fix: "use MATCH_OPERATOR_EQUAL, _NOT_EQUAL, _REGEX or _NOT_REGEX"}) {
				return true
			}
			continue
		}
		if typ == labels.MatchRegexp || typ == labels.MatchNotRegexp {
			if e, skip := prog.take(lf+".value", lm.GetValue()); e != nil || skip {
				if e != nil && add(e) {
					return true
				}
				continue
			}
		}
		m, err := labels.NewMatcher(typ, lm.GetName(), lm.GetValue())
		if err != nil {
			if add(&Error{Field: lf + ".value", Code: "invalid_regex", Message: fmt.Sprintf("%q is not a valid RE2 regex: %v", lm.GetValue(), err), Fix: regexFix}) {
				return true
			}
			continue
		}
		if lm.GetName() != "" {
			c.labels = append(c.labels, m)
		}
	}
	return false
}

// compileRegex compiles an RE2 regex the way PromQL's =~ does (anchored,
// "." matches a newline).
func compileRegex(re string) (*labels.FastRegexMatcher, error) {
	if !utf8.ValidString(re) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	return labels.NewFastRegexMatcher(re)
}

// compileNames compiles names or globs; exprs are their regexes (exact
// names quoted) for the store. stop is true when add asked to stop.
func compileNames(field string, names []string, prog *program, add func(*Error) bool) (s nameSet, exprs []string, stop bool) {
	if len(names) > MaxEntries {
		return s, nil, add(tooMany(field, len(names), "entries",
			fmt.Sprintf("send at most %d; match a family of names with a glob (http_*) or name_regex", MaxEntries)))
	}
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		if n == "" {
			if add(&Error{Field: f, Code: "required", Message: "must not be empty", Fix: "set a metric name or a glob such as http_*, or remove the entry"}) {
				return s, nil, true
			}
			continue
		}
		if len(n) > MaxTextBytes {
			if add(tooLong(f, len(n), "shorten the name or glob; match a family of names with a glob such as http_*")) {
				return s, nil, true
			}
			continue
		}
		if !utf8.ValidString(n) {
			if add(&Error{Field: f, Code: "invalid_glob", Message: fmt.Sprintf("%q is not valid UTF-8", n), Fix: "send the name as UTF-8"}) {
				return s, nil, true
			}
			continue
		}
		if !strings.ContainsAny(n, `*?[\`) {
			if s.exact == nil {
				s.exact = make(map[string]struct{}, len(names))
			}
			s.exact[n] = struct{}{}
			exprs = append(exprs, regexp.QuoteMeta(n))
			continue
		}
		expr, err := GlobRegexp(n)
		var m *labels.FastRegexMatcher
		if err == nil {
			if e, skip := prog.take(f, expr); e != nil || skip {
				if e != nil && add(e) {
					return s, nil, true
				}
				continue
			}
			m, err = compileRegex(expr)
		}
		if err != nil {
			if add(&Error{Field: f, Code: "invalid_glob", Message: fmt.Sprintf("%q is not a valid glob: %v", n, err), Fix: globFix}) {
				return s, nil, true
			}
			continue
		}
		s.globs = append(s.globs, m)
		exprs = append(exprs, expr)
	}
	return s, exprs, false
}

// GlobRegexp turns a glob of the package syntax into an RE2 expression
// (unanchored: the callers anchor it, as PromQL does).
func GlobRegexp(g string) (string, error) {
	var b strings.Builder
	b.WriteString("(?:")
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
			_, size := utf8.DecodeRuneInString(g[i+1:])
			b.WriteString(regexp.QuoteMeta(g[i+1 : i+1+size]))
			i += size
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
			_, size := utf8.DecodeRuneInString(g[i:])
			b.WriteString(regexp.QuoteMeta(g[i : i+size]))
			i += size - 1
		}
	}
	b.WriteString(")")
	return b.String(), nil
}

// Empty reports whether the filter matches every metric.
func (f *Filter) Empty() bool {
	return f == nil || (f.names.empty() && f.nameRegex == nil && f.exclude.empty() && len(f.labels) == 0 && f.types == 0)
}

// HasLabelMatchers reports whether the filter looks at labels.
func (f *Filter) HasLabelMatchers() bool { return f != nil && len(f.labels) > 0 }

// HasTypes reports whether the filter looks at metric types.
func (f *Filter) HasTypes() bool { return f != nil && f.types != 0 }

// LabelMatchers returns the compiled label matchers (not to be changed).
func (f *Filter) LabelMatchers() []*labels.Matcher {
	if f == nil {
		return nil
	}
	return f.labels
}

// MatchName reports whether a metric name passes names, name_regex and
// exclude_names.
func (f *Filter) MatchName(name string) bool {
	if f == nil {
		return true
	}
	if !f.names.empty() && !f.names.match(name) {
		return false
	}
	if f.nameRegex != nil && !f.nameRegex.MatchString(name) {
		return false
	}
	return !f.exclude.match(name)
}

// IsTimer reports whether a metric of type t and this unit is a timer: a
// TIMER, or a HISTOGRAM whose unit is "s".
func IsTimer(t pb.MetricType, unit string) bool {
	return t == pb.MetricType_METRIC_TYPE_TIMER || (t == pb.MetricType_METRIC_TYPE_HISTOGRAM && unit == "s")
}

// MatchType reports whether a metric of type t and unit passes types. A
// timer (IsTimer) matches both TIMER and HISTOGRAM.
func (f *Filter) MatchType(t pb.MetricType, unit string) bool {
	if f == nil || f.types == 0 {
		return true
	}
	if IsTimer(t, unit) {
		return f.types&(1<<uint(pb.MetricType_METRIC_TYPE_TIMER)|1<<uint(pb.MetricType_METRIC_TYPE_HISTOGRAM)) != 0
	}
	return f.types&(1<<uint(t)) != 0
}

// MatchLabels reports whether every label matcher matches the labels that
// get returns (ok false: the label is missing, its value is "").
func (f *Filter) MatchLabels(get func(name string) (string, bool)) bool {
	if f == nil {
		return true
	}
	for _, m := range f.labels {
		v, _ := get(m.Name)
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// MatchMetric reports whether a pipeline metric passes the name and type
// parts (labels are per data point: MatchLabels).
func (f *Filter) MatchMetric(m pmetric.Metric) bool {
	return f.MatchName(m.Name()) && f.MatchType(TypeOf(m), m.Unit())
}

// TypeOf is the API type of a pipeline metric: a monotonic sum is a
// COUNTER, a non-monotonic sum and a gauge are GAUGE, both histogram kinds
// are HISTOGRAM (IsTimer tells timers apart by unit), a summary SUMMARY.
func TypeOf(m pmetric.Metric) pb.MetricType {
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

// Matchers returns Prometheus label matchers selecting in a store the
// series whose name and labels the filter matches: __name__ =~ the union of
// names, __name__ =~ name_regex, __name__ !~ each exclude, then the label
// matchers. When no name matcher excludes the empty name it adds
// __name__=~".+" (no metric has an empty name) so that the selector is
// valid PromQL. types are not expressible as
// matchers: check them with MatchType on the results.
func (f *Filter) Matchers() []*labels.Matcher {
	var out []*labels.Matcher
	if f == nil {
		return []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")}
	}
	nonEmpty := false // PromQL needs one matcher that does not match ""
	for _, re := range []string{f.namesExpr, f.regexSource} {
		if re != "" {
			m := labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, re)
			nonEmpty = nonEmpty || !m.Matches("")
			out = append(out, m)
		}
	}
	if !nonEmpty {
		out = append(out, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+"))
	}
	for _, e := range f.excludeExpr {
		out = append(out, labels.MustNewMatcher(labels.MatchNotRegexp, labels.MetricName, e))
	}
	return append(out, f.labels...)
}

// Selector returns Matchers as a PromQL vector selector ({...}).
func (f *Filter) Selector() string {
	ms := f.Matchers()
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}
