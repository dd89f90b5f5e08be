package metricfilter_test

import (
	"errors"
	"sort"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	"github.com/metricsmodule/metricsmodule/internal/metricfilter/metricfiltertest"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// selectInProcess applies f to the corpus as pipeline metrics with
// MatchMetric and MatchLabels (of the data point's attributes).
func selectInProcess(f *metricfilter.Filter) []string {
	var out []string
	ms := metricfiltertest.Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		var attrs pcommon.Map
		switch m.Type() {
		case pmetric.MetricTypeSum:
			attrs = m.Sum().DataPoints().At(0).Attributes()
		case pmetric.MetricTypeGauge:
			attrs = m.Gauge().DataPoints().At(0).Attributes()
		case pmetric.MetricTypeHistogram:
			attrs = m.Histogram().DataPoints().At(0).Attributes()
		}
		get := func(n string) (string, bool) {
			if v, ok := attrs.Get(n); ok {
				return v.AsString(), true
			}
			return "", false
		}
		if f.MatchMetric(m) && f.MatchLabels(get) {
			out = append(out, m.Name())
		}
	}
	sort.Strings(out)
	return out
}

// selectWithMatchers applies Matchers (as a store would) and MatchType.
func selectWithMatchers(f *metricfilter.Filter) []string {
	var out []string
	for _, m := range metricfiltertest.Corpus() {
		ls := labels.FromMap(m.Labels)
		b := labels.NewBuilder(ls)
		b.Set(labels.MetricName, m.Name)
		ls = b.Labels()
		ok := f.MatchType(m.Type, m.Unit)
		for _, mm := range f.Matchers() {
			ok = ok && mm.Matches(ls.Get(mm.Name))
		}
		if ok {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

func TestConformance(t *testing.T) {
	for _, c := range metricfiltertest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			f, err := metricfilter.Compile(c.Filter)
			require.NoError(t, err)
			assert.Equal(t, c.Want, selectInProcess(f), "in process")
			assert.Equal(t, c.Want, selectWithMatchers(f), "as store matchers")
			_, err = parser.NewParser(parser.Options{}).ParseExpr(f.Selector())
			require.NoError(t, err, f.Selector())
		})
	}
}

func TestInvalidFiltersNameTheField(t *testing.T) {
	for _, c := range metricfiltertest.Invalid() {
		t.Run(c.Field, func(t *testing.T) {
			_, err := metricfilter.Compile(c.Filter)
			var fe *metricfilter.Error
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, c.Field, fe.Field)
			assert.NotEmpty(t, fe.Fix)
			assert.Contains(t, err.Error(), c.Field+": ")
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	errs := metricfilter.Validate("config.filter", &pb.MetricFilter{Names: []string{"[", ""}, NameRegex: "(", Types: []pb.MetricType{0}})
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	assert.Equal(t, []string{"config.filter.names[0]", "config.filter.names[1]", "config.filter.name_regex", "config.filter.types[0]"}, fields)
	assert.Nil(t, metricfilter.Validate("config.filter", &pb.MetricFilter{Names: []string{"a*"}}))
}

func TestGlobRegexp(t *testing.T) {
	for glob, want := range map[string]string{
		"a*b?":   `(?:a.*b.)`,
		`a\*`:    `(?:a\*)`,
		"[!a]x":  `(?:[^a]x)`,
		"[]a]":   `(?:[]a])`,
		`[\]`:    `(?:[\\])`,
		"a.b":    `(?:a\.b)`,
		`\é`:     `(?:é)`,
		"[a-c]*": `(?:[a-c].*)`,
	} {
		got, err := metricfilter.GlobRegexp(glob)
		require.NoError(t, err, glob)
		assert.Equal(t, want, got, glob)
	}
}

func TestSelectorOfEmptyFilterIsValidPromQL(t *testing.T) {
	var f *metricfilter.Filter
	assert.Equal(t, `{__name__=~".+"}`, f.Selector())
	assert.True(t, f.Empty())
	g, err := metricfilter.Compile(&pb.MetricFilter{Names: []string{"a.b", "c*"}, ExcludeNames: []string{"cd"}})
	require.NoError(t, err)
	assert.Equal(t, `{__name__=~"a\\.b|(?:c.*)",__name__!~"cd"}`, g.Selector())
}

func TestMatchDoesNotAllocate(t *testing.T) {
	f, err := metricfilter.Compile(&pb.MetricFilter{Names: []string{"http_*", "queue_depth"}, NameRegex: "[a-z_]+", ExcludeNames: []string{"*errors*"},
		Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER}, LabelMatchers: []*pb.LabelMatcher{{Name: "code", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "2.."}}})
	require.NoError(t, err)
	lbl := map[string]string{"code": "200"}
	get := func(n string) (string, bool) { v, ok := lbl[n]; return v, ok }
	allocs := testing.AllocsPerRun(100, func() {
		_ = f.MatchName("http_requests_total") && f.MatchType(pb.MetricType_METRIC_TYPE_COUNTER, "") && f.MatchLabels(get)
	})
	assert.Zero(t, allocs)
}

// BenchmarkMatch is the per-metric (name, type) and per-point (labels) cost
// of a filter with every part set.
func BenchmarkMatch(b *testing.B) {
	f, err := metricfilter.Compile(&pb.MetricFilter{Names: []string{"http_*", "queue_depth"}, NameRegex: "[a-z_]+", ExcludeNames: []string{"*errors*"},
		Types: []pb.MetricType{pb.MetricType_METRIC_TYPE_COUNTER}, LabelMatchers: []*pb.LabelMatcher{{Name: "method", Value: "GET"}, {Name: "code", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: "2.."}}})
	require.NoError(b, err)
	lbl := map[string]string{"code": "200", "method": "GET"}
	get := func(n string) (string, bool) { v, ok := lbl[n]; return v, ok }
	b.Run("name and type", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.MatchName("http_requests_total") && f.MatchType(pb.MetricType_METRIC_TYPE_COUNTER, "")
		}
	})
	b.Run("labels", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.MatchLabels(get)
		}
	})
}

func TestGlobsAndRegexesMatchNewlinesAsPromQL(t *testing.T) {
	f, err := metricfilter.Compile(&pb.MetricFilter{Names: []string{"a*", "b?c"}, NameRegex: ".+"})
	require.NoError(t, err)
	assert.True(t, f.MatchName("a\nx"))
	assert.True(t, f.MatchName("b\nc"))
	assert.False(t, f.MatchName("b\n\nc"))
}
