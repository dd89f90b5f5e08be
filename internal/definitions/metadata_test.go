package definitions

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMetadataListsRegisteredAndSeenWithUsage(t *testing.T) {
	ctx := context.Background()
	g, _, _ := setup(t)
	g.Seen = func() map[string]pb.MetricType {
		return map[string]pb.MetricType{"orders_total": pb.MetricType_METRIC_TYPE_COUNTER, "queue_depth": pb.MetricType_METRIC_TYPE_GAUGE}
	}
	page, err := g.Metadata(ctx, MetadataRequest{IncludeUnregistered: true, IncludeUsage: true, PageSize: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, page.Total)
	assert.Equal(t, "orders_total", page.Last, "one more page")
	require.Len(t, page.Metadata, 1)
	md := page.Metadata[0]
	assert.True(t, md.Registered)
	assert.Equal(t, int64(2), md.Usage.SeriesCount)
	assert.Equal(t, int64(3), md.Usage.SampleCount)
	assert.Positive(t, md.Usage.IngestRate)
	assert.Equal(t, now.Unix(), md.Usage.LastSeen.AsTime().Unix())
	require.NotEmpty(t, md.Usage.TopLabelValues)
	assert.Equal(t, "shop", md.Usage.TopLabelValues[0].Label)
	assert.Equal(t, pb.HealthStatus_HEALTH_STATUS_HEALTHY, md.Health.Status)

	page, err = g.Metadata(ctx, MetadataRequest{IncludeUnregistered: true, After: page.Last, PageSize: 10})
	require.NoError(t, err)
	require.Len(t, page.Metadata, 1)
	assert.Empty(t, page.Last)
	inferred := page.Metadata[0]
	assert.False(t, inferred.Registered)
	assert.Equal(t, "queue_depth", inferred.Definition.Name)
	assert.True(t, inferred.Definition.AllowUndeclaredLabels)
}

func TestMetadataRefusesABadGlob(t *testing.T) {
	g, _, _ := setup(t)
	_, err := g.Metadata(context.Background(), MetadataRequest{Names: []string{"ok_*", "["}})
	assertKind(t, err, KindInvalid)
	assert.Contains(t, err.Error(), `names[1]: "[" is not a valid glob`)
}
