package metricfilter

import "regexp/syntax"

// ProgramSize is progSize of a regex parsed as compileRegex does (for
// tests).
func ProgramSize(re string) int64 {
	p, err := syntax.Parse(re, syntax.Perl|syntax.DotNL)
	if err != nil {
		panic(err)
	}
	return progSize(p)
}
