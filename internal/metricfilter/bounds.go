package metricfilter

import (
	"fmt"
	"regexp/syntax"
)

// Bounds of one MetricFilter. A provider's filter runs on every exported
// batch, a subscription's on every ingested one and a read's on every
// selected series: every caller of Compile, CompileAt and Validate refuses a
// filter over them with an *Error (code CodeTooMany, CodeTooLong or
// CodeTooLarge) naming the field, the size, the limit and the fix.
const (
	// MaxEntries bounds each list of a filter: names, exclude_names,
	// label_matchers and types.
	MaxEntries = 1000
	// MaxTextBytes bounds each string of a filter: a name or glob of names
	// and exclude_names, name_regex, and a label matcher's name and value.
	MaxTextBytes = 4096
	// MaxProgramSize bounds the regex program of a filter: the globs,
	// name_regex and the regex label matchers together, in instructions of
	// Go's regexp (estimated from the parse tree before compiling, as
	// regexp/syntax does), a character class counting one more per range
	// (\pL has 659). Matching is linear in time (RE2), but a short regex
	// with counted repetitions, "[a-z]{1000}" 300 times (3.3 KiB), compiles
	// to 300,000 instructions (0.3 s and 90 MB to compile, memory per match in
	// proportion), and 4 KiB of "\pL" took 0.4 s and kept 13 MB.
	MaxProgramSize = 65536
)

// Codes of the refusals for a filter over its bounds.
const (
	// CodeTooMany: a list has more than MaxEntries entries.
	CodeTooMany = "too_many"
	// CodeTooLong: a string has more than MaxTextBytes bytes.
	CodeTooLong = "too_long"
	// CodeTooLarge: the regexes compile to more than MaxProgramSize
	// instructions together.
	CodeTooLarge = "too_large"
)

// Bound reports whether e refuses a filter over its bounds (rather than a
// malformed one).
func (e *Error) Bound() bool {
	return e != nil && (e.Code == CodeTooMany || e.Code == CodeTooLong || e.Code == CodeTooLarge)
}

// tooMany refuses a list of n entries (what: "names", "label matchers").
func tooMany(field string, n int, what, fix string) *Error {
	return &Error{Field: field, Code: CodeTooMany,
		Message: fmt.Sprintf("%d %s, at most %d are allowed", n, what, MaxEntries), Fix: fix}
}

// tooLong refuses a string of n bytes; the value itself is not repeated.
func tooLong(field string, n int, fix string) *Error {
	return &Error{Field: field, Code: CodeTooLong,
		Message: fmt.Sprintf("has %d bytes, at most %d are allowed", n, MaxTextBytes), Fix: fix}
}

// program counts the instructions of a filter's regexes against
// MaxProgramSize.
type program struct {
	used int64
	over bool // reported once
}

// take adds the program of expr (parsed as compileRegex does) for field.
// It returns a refusal when the filter goes over MaxProgramSize (only the
// first time), and nil without counting when expr does not parse: the
// compiler reports that.
func (p *program) take(field, expr string) (e *Error, skip bool) {
	if p.over {
		return nil, true
	}
	re, err := syntax.Parse(expr, syntax.Perl|syntax.DotNL)
	if err != nil {
		return nil, false
	}
	n := progSize(re)
	if p.used+n <= MaxProgramSize {
		p.used += n
		return nil, false
	}
	p.over = true
	return &Error{Field: field, Code: CodeTooLarge,
		Message: fmt.Sprintf("compiles to about %d regex instructions, %d with the filter's other globs and regexes; at most %d are allowed together",
			n, p.used+n, MaxProgramSize),
		Fix: "use smaller repetition counts ({n,m}), fewer alternatives, or a simpler pattern"}, true
}

// progSize estimates the instructions Go's regexp compiles re to, as
// regexp/syntax does to refuse an expression too large (counted
// repetitions are expanded), plus the ranges of each character class.
func progSize(re *syntax.Regexp) int64 {
	var size int64
	switch re.Op {
	case syntax.OpLiteral:
		size = int64(len(re.Rune))
	case syntax.OpCapture, syntax.OpStar:
		size = 2 + progSize(re.Sub[0])
	case syntax.OpPlus, syntax.OpQuest:
		size = 1 + progSize(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			size += progSize(sub)
		}
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			size += progSize(sub)
		}
		size += int64(len(re.Sub)) - 1
	case syntax.OpCharClass:
		// one instruction, holding the class's ranges (\pL has hundreds)
		size = 1 + int64(len(re.Rune)/2)
	case syntax.OpRepeat:
		sub := progSize(re.Sub[0])
		switch {
		case re.Max == -1 && re.Min == 0:
			size = 2 + sub
		case re.Max == -1:
			size = 1 + int64(re.Min)*sub
		default:
			size = int64(re.Max)*sub + int64(re.Max-re.Min)
		}
	}
	return max(1, size)
}
