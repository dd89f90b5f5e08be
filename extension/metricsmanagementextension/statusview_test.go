package metricsmanagementextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The health timeline covers the last 10 minutes: unknown until the first
// transition inside it, then each status until the next, scaled to the chart.
func TestHealthBands(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ev := func(ago time.Duration, s pb.HealthStatus) *pb.HealthEvent {
		return &pb.HealthEvent{Time: timestamppb.New(now.Add(-ago)), Status: s}
	}
	got := bands([]*pb.HealthEvent{
		ev(time.Hour, pb.HealthStatus_HEALTH_STATUS_DEGRADED), // before the span: the status at its start
		ev(5*time.Minute, pb.HealthStatus_HEALTH_STATUS_HEALTHY),
		ev(time.Minute, pb.HealthStatus_HEALTH_STATUS_UNHEALTHY),
	}, now)
	require.Len(t, got, 3)
	want := []struct {
		class string
		x, w  float64
	}{
		{"DEGRADED", 0, chartWidth / 2},
		{"HEALTHY", chartWidth / 2, chartWidth * 4 / 10},
		{"UNHEALTHY", chartWidth * 9 / 10, chartWidth / 10},
	}
	for i, w := range want {
		assert.Equal(t, w.class, got[i].Class)
		assert.InDelta(t, w.x, got[i].X, 1e-9)
		assert.InDelta(t, w.w, got[i].W, 1e-9)
	}
	assert.Equal(t, []band{{X: 0, W: chartWidth, Class: "UNSPECIFIED", Title: "UNSPECIFIED since " + now.Add(-healthSpan).Format(time.RFC3339)}}, bands(nil, now))
}

func TestPolylineScalesToPeak(t *testing.T) {
	assert.Empty(t, polyline([]float64{1}, 1))
	assert.Equal(t, "0.0,35.0 240.0,1.0", polyline([]float64{0, 10}, 10))
	assert.Equal(t, "0.0,35.0 240.0,35.0", polyline([]float64{0, 0}, 0), "an idle series lies on the axis")
}
