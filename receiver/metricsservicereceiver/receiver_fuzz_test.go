package metricsservicereceiver

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzPageToken decodes any page token without panic, and decodes what it
// encodes to the same position.
func FuzzPageToken(f *testing.F) {
	f.Add(`{__name__="orders_total", shop="eu"}`, encodePageToken(`{__name__="a"}`))
	f.Add("", "")
	f.Add("\xff", "djE6")
	f.Add("x", "not base64!")
	f.Fuzz(func(t *testing.T, after, token string) {
		got, err := decodePageToken(encodePageToken(after))
		if err != nil || got != after {
			t.Fatalf("round trip of %q: %q, %v", after, got, err)
		}
		_, _ = decodePageToken(token)
	})
}

var fuzzPromParser = parser.NewParser(parser.Options{})

// FuzzReadFilters compiles any GetMetrics filter to a PromQL selector: no
// panic, and an accepted filter is valid
// PromQL (a refusal is INVALID_ARGUMENT before the query, never a query
// error).
func FuzzReadFilters(f *testing.F) {
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
		if sel, err := selector(mf); err == nil {
			if _, perr := fuzzPromParser.ParseExpr(sel); perr != nil {
				t.Fatalf("filter %v became %s, which is not PromQL: %v", mf, sel, perr)
			}
		}
		if glob != "" && !strings.ContainsAny(glob, `*?[\`) && utf8.ValidString(glob) {
			c, err := compileFilter(&pb.MetricFilter{Names: []string{glob}})
			if err != nil || !c.MatchName(glob) {
				t.Fatalf("literal glob %q: %v", glob, err)
			}
		}
	})
}

func TestSelectorRefusesGlobsThatAreNotRegexes(t *testing.T) {
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
		_, err := selector(tt.filter)
		st, _ := status.FromError(err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tt.want) {
			t.Errorf("selector(%v) = %v, want INVALID_ARGUMENT %q", tt.filter, err, tt.want)
		}
	}
}
