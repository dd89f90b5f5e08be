package store

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type recorded struct {
	ls labels.Labels
	t  int64
	v  float64
	md metadata.Metadata
}

type recorder struct{ got []recorded }

func (r *recorder) Sample(ls labels.Labels, t int64, v float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, md metadata.Metadata) {
	r.got = append(r.got, recorded{ls: ls, t: t, v: v, md: md})
}

// TestStageToRecordsTheSamplesAsStored: the recorder sees every sample of
// the batch with the name, labels and metadata the store keeps.
func TestStageToRecordsTheSamplesAsStored(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	now := time.Now().Truncate(time.Millisecond)
	rec := &recorder{}
	txn, err := s.StageTo(context.Background(), counterBatch("orders", now, 7, map[string]string{"region": "eu"}), rec)
	require.NoError(t, err)
	require.NoError(t, txn.Commit())
	var got []recorded
	for _, r := range rec.got {
		if r.ls.Get(labels.MetricName) == "orders_total" {
			got = append(got, r)
		}
	}
	require.Len(t, got, 1)
	assert.Equal(t, labels.FromStrings("__name__", "orders_total", "job", "checkout", "region", "eu"), got[0].ls)
	assert.Equal(t, now.UnixMilli(), got[0].t)
	assert.InDelta(t, 7.0, got[0].v, 0)
	assert.Equal(t, "counter", string(got[0].md.Type))
}

// TestStageToRefusesAsStage: StageTo refuses what Stage refuses (what the
// recorder saw of a refused batch is then dropped by the caller).
func TestStageToRefusesAsStage(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.Close()
	rec := &recorder{}
	_, err := s.StageTo(context.Background(), counterBatch("orders", time.Now().Add(-400*24*time.Hour), 7, nil), rec)
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
}
