package metricfilter

import (
	"strings"
	"testing"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzCompile compiles arbitrary globs and regexes: no panic; a compiled
// glob without metacharacters matches itself and nothing longer; a prefix
// glob matches every extension; the PromQL selector parses as text.
func FuzzCompile(f *testing.F) {
	f.Add("http_*", "db_.*", "x")
	f.Add(`queue\_depth`, "", "")
	f.Add("[a-", "(", "\n")
	f.Fuzz(func(t *testing.T, glob, regex, name string) {
		flt, err := Compile(&pb.MetricFilter{Names: []string{glob}, NameRegex: regex})
		if err == nil {
			_ = flt.MatchName(name)
			_ = flt.Selector()
		}
		if glob == "" || strings.ContainsAny(glob, `*?[\`) {
			return
		}
		lit, err := Compile(&pb.MetricFilter{Names: []string{glob}})
		if err != nil {
			return // invalid UTF-8
		}
		if !lit.MatchName(glob) || lit.MatchName(glob+"x") {
			t.Fatalf("literal %q", glob)
		}
		prefix, err := Compile(&pb.MetricFilter{Names: []string{glob + "*"}})
		if err != nil || !prefix.MatchName(glob+name) {
			t.Fatalf("prefix %q does not match %q: %v", glob+"*", glob+name, err)
		}
	})
}
