package provider

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter/metricfiltertest"
)

// TestFilterConformance routes the metricfilter corpus through the engine's
// router to one provider per conformance case: each provider's exporter
// receives the names its filter selects.
func TestFilterConformance(t *testing.T) {
	e := newTestEngine(t, distribution(), nil)
	cases := metricfiltertest.Cases()
	sinks := make([]*testSink, len(cases))
	for i, c := range cases {
		sink, name := newSink(t, c.Name)
		sinks[i] = sink
		pc := sinkProvider(providerIDOf(i), name)
		pc.Filter = c.Filter
		create(t, e, pc)
	}
	md := metricfiltertest.Metrics()
	md.MarkReadOnly()
	require.NoError(t, e.Router().ConsumeMetrics(ctx, md))
	got := func(s *testSink) []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []string
		for n := range s.names {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	for i, c := range cases {
		if len(c.Want) > 0 {
			eventually(t, func() bool { return len(got(sinks[i])) >= len(c.Want) }, c.Name)
		}
	}
	for i, c := range cases {
		assert.Equal(t, c.Want, got(sinks[i]), c.Name)
	}
}

func providerIDOf(i int) string { return "p" + string(rune('a'+i/26)) + string(rune('a'+i%26)) }

// TestInvalidFilterConformance: the filters every user refuses are refused
// at create, naming the field under config.
func TestInvalidFilterConformance(t *testing.T) {
	for _, c := range metricfiltertest.Invalid() {
		pc := sinkProvider("x", "x")
		pc.Filter = c.Filter
		var fields []string
		for _, iss := range validateConfig(pc) {
			fields = append(fields, iss.GetField())
		}
		assert.Contains(t, fields, "config."+c.Field)
	}
}
