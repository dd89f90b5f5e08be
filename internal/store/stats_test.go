package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestIngestStatsCountDataPointsNotSamples(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer func() { require.NoError(t, s.Close()) }()
	now := time.Now().Truncate(time.Second)

	// one resource with an attribute beyond service.name (a target_info
	// sample per batch), a gauge point, a classic histogram point (buckets,
	// sum and count samples) and a summary point (quantiles, sum and count)
	b := newBatch(kv{"service.name", "checkout"}, kv{"deployment.environment", "prod"}).
		gauge("queue.depth", point{ts: now, v: 3}).
		histogram("rpc.duration", point{ts: now, v: 0.2})
	m := b.sm.Metrics().AppendEmpty()
	m.SetName("rpc.latency")
	dp := m.SetEmptySummary().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
	dp.SetCount(2)
	dp.SetSum(0.5)
	q := dp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.5)
	q.SetValue(0.2)
	q = dp.QuantileValues().AppendEmpty()
	q.SetQuantile(0.99)
	q.SetValue(0.3)
	require.NoError(t, stage(t, s, b.md).Commit())

	assert.Equal(t, int64(3), s.Stats().Points(), "three data points, whatever their samples")
	var perFamily float64
	for _, fr := range s.Stats().FamilyRates(time.Minute) {
		perFamily += fr.Rate
	}
	assert.InDelta(t, s.Stats().Rate(time.Minute), perFamily, 1e-9, "the rates count the same points")
	assert.Greater(t, s.Stats().Total(), int64(3), "Total counts every stored sample")
	for _, fr := range s.Stats().FamilyRates(time.Minute) {
		assert.NotEqual(t, "target_info", fr.Family, "resource samples are not ingest")
	}
}
