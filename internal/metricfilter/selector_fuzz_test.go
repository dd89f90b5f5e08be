package metricfilter

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var fuzzPromParser = parser.NewParser(parser.Options{})

// FuzzSelector compiles any read filter to a PromQL selector: no panic, an
// accepted filter's selector is valid PromQL (a refusal is a *Error before
// any query, never a query error), and a literal glob matches itself.
func FuzzSelector(f *testing.F) {
	f.Add("http_*", "debug_*", "http_.*", "method", "GET|POST", uint8(3))
	f.Add("[a-c]?x", "", "", "shop", "eu", uint8(1))
	f.Add("[!a]*", "\\", "a)|(b", "le", ".*", uint8(4))
	f.Add("[z-a]", "[", "(", "", "", uint8(0))
	f.Add("é*", "\xff", "", "ü", "\xfe", uint8(2))
	f.Fuzz(func(t *testing.T, glob, exclude, re, label, value string, op uint8) {
		mf := &pb.MetricFilter{NameRegex: re,
			LabelMatchers: []*pb.LabelMatcher{{Name: label, Operator: pb.MatchOperator(op % 5), Value: value}}}
		if glob != "" {
			mf.Names = []string{glob}
		}
		if exclude != "" {
			mf.ExcludeNames = []string{exclude}
		}
		if c, err := Compile(mf); err == nil {
			if _, perr := fuzzPromParser.ParseExpr(c.Selector()); perr != nil {
				t.Fatalf("filter %v became %s, which is not PromQL: %v", mf, c.Selector(), perr)
			}
		} else if fe := (*Error)(nil); !errors.As(err, &fe) {
			t.Fatalf("filter %v: refusal %v is not a *metricfilter.Error", mf, err)
		}
		if glob != "" && !strings.ContainsAny(glob, `*?[\`) && utf8.ValidString(glob) {
			c, err := Compile(&pb.MetricFilter{Names: []string{glob}})
			if err != nil || !c.MatchName(glob) {
				t.Fatalf("literal glob %q: %v", glob, err)
			}
		}
	})
}

func TestCompileRefusesGlobsThatAreNotRegexes(t *testing.T) {
	tests := []struct {
		filter *pb.MetricFilter
		want   string
	}{
		{&pb.MetricFilter{Names: []string{"ok_*", "[]"}}, `filter.names[1]: "[]" is not a valid glob`},
		{&pb.MetricFilter{Names: []string{"[z-a]"}}, `filter.names[0]: "[z-a]" is not a valid glob`},
		{&pb.MetricFilter{ExcludeNames: []string{"[]"}}, `filter.exclude_names[0]: "[]" is not a valid glob`},
		{&pb.MetricFilter{Names: []string{"\xff*"}}, `filter.names[0]: "\xff*" is not valid UTF-8`},
	}
	for _, tt := range tests {
		_, err := Compile(tt.filter)
		var fe *Error
		if !errors.As(err, &fe) || !strings.Contains(fe.Error(), tt.want) {
			t.Errorf("Compile(%v) = %v, want a *Error containing %q", tt.filter, err, tt.want)
		}
	}
}
