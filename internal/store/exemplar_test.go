package store

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func exemplarsOf(t *testing.T, s *Store, name string) []float64 {
	t.Helper()
	eq, err := s.ExemplarQuerier(context.Background())
	require.NoError(t, err)
	res, err := eq.Select(0, time.Now().Add(time.Hour).UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)})
	require.NoError(t, err)
	var out []float64
	for _, r := range res {
		for _, e := range r.Exemplars {
			out = append(out, e.Value)
			assert.Equal(t, "0102030405060708090a0b0c0d0e0f10", e.Labels.Get("trace_id"))
		}
	}
	return out
}

func TestExemplarsAreKeptAndSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	now := time.Now()
	md := counterBatch("orders", now, 3, nil)
	ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ex.SetDoubleValue(1.5)
	ex.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	require.NoError(t, stage(t, s, md).Commit())
	assert.Equal(t, []float64{1.5}, exemplarsOf(t, s, "orders_total"))

	require.NoError(t, s.Close())
	_, err := s.ExemplarQuerier(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	s = openStore(t, dir, nil)
	defer s.Close()
	assert.Equal(t, []float64{1.5}, exemplarsOf(t, s, "orders_total"), "exemplars are replayed from the WAL")
}

func TestNoExemplarsWithMaxExemplarsZero(t *testing.T) {
	s := openStore(t, t.TempDir(), func(c *Config) { c.MaxExemplars = 0 })
	defer s.Close()
	now := time.Now()
	md := counterBatch("orders", now, 3, nil)
	ex := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
	ex.SetTimestamp(pcommon.NewTimestampFromTime(now))
	ex.SetDoubleValue(1.5)
	require.NoError(t, stage(t, s, md).Commit())
	assert.Empty(t, exemplarsOf(t, s, "orders_total"))
	assert.Equal(t, map[string][]float64{`{__name__="orders_total", job="checkout"}`: {3}}, samples(t, s, "orders_total", now.Add(-time.Minute), now.Add(time.Minute)), "the sample is stored")
}
