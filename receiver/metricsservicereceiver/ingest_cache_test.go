package metricsservicereceiver

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestBatchesOverGRPCKeepTheirData sends batches that repeat series (the
// series cache's hits) and new ones over gRPC, where the server reuses the
// records' arrays after each call: every batch's pdata must stay as sent
// after the later calls.
func TestBatchesOverGRPCKeepTheirData(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	client := startReceiver(t, sink, nil)
	batch := func(round int) *pb.RecordBatchMetricsRequest {
		req := &pb.RecordBatchMetricsRequest{Resource: &pb.Resource{Attributes: map[string]string{"service.name": "svc"}}}
		for i := range 50 {
			req.Metrics = append(req.Metrics, &pb.MetricData{
				Name: "g", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: float64(round*100 + i),
				Labels: map[string]string{"series": fmt.Sprint(i % (10 + round)), "i": fmt.Sprint(i)},
			})
		}
		return req
	}
	want := func(round int) map[string]float64 {
		out := map[string]float64{}
		for i := range 50 {
			out[fmt.Sprintf("%d/%d", i%(10+round), i)] = float64(round*100 + i)
		}
		return out
	}
	got := func(md pmetric.Metrics) map[string]float64 {
		out := map[string]float64{}
		dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
		for i := range dps.Len() {
			a := dps.At(i).Attributes()
			s, _ := a.Get("series")
			n, _ := a.Get("i")
			out[s.Str()+"/"+n.Str()] = dps.At(i).DoubleValue()
		}
		return out
	}
	for round := range 6 {
		resp, err := client.RecordBatchMetrics(context.Background(), batch(round%3))
		require.NoError(t, err)
		require.EqualValues(t, 50, resp.AcceptedCount)
	}
	all := sink.AllMetrics()
	require.Len(t, all, 6)
	for round, md := range all {
		require.Equal(t, want(round%3), got(md), "batch %d", round)
	}
}
