package stream

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter/metricfiltertest"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestFilterConformance streams the metricfilter corpus to one subscription
// per conformance case: the names streamed are the names the case selects.
func TestFilterConformance(t *testing.T) {
	for _, c := range metricfiltertest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			h := newTestHub(t, nil)
			s := openStream(t, h, &pb.StreamMetricsRequest{Filter: c.Filter, Options: &pb.StreamOptions{BatchSize: 1000, BatchTimeoutMs: 5}})
			staged := h.Stage(metricfiltertest.Metrics())
			if len(c.Want) == 0 {
				assert.Nil(t, staged, "nothing matches: nothing staged")
				return
			}
			require.NotNil(t, staged)
			require.NoError(t, staged.Commit())
			var got []string
			for len(got) < len(c.Want) {
				for _, m := range s.nextBatch().Metrics {
					got = append(got, m.Name)
				}
			}
			sort.Strings(got)
			assert.Equal(t, c.Want, got)
		})
	}
}

func TestInvalidFilterConformance(t *testing.T) {
	h := newTestHub(t, nil)
	for _, c := range metricfiltertest.Invalid() {
		_, err := h.Subscribe(&pb.StreamMetricsRequest{Filter: c.Filter})
		require.ErrorIs(t, err, ErrInvalidRequest)
		assert.ErrorContains(t, err, c.Field+": ")
	}
}
