package metricsservicereceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestInvalidUTF8IsRefusedNamingTheField sends requests with invalid UTF-8
// (with a codec that does not check it, as a non-Go client could) to every
// kind of method: each is refused with INVALID_ARGUMENT naming the field,
// and nothing of it is stored.
func TestInvalidUTF8IsRefusedNamingTheField(t *testing.T) {
	r := startStoreReceiver(t, t.TempDir())
	c := pb.NewMetricsServiceClient(dial(t, r.addr()))
	raw := pb.NewMetricsServiceClient(rawConn(t, r.addr()))
	ctx := context.Background()
	const bad = "v\xff"

	_, err := raw.RecordMetric(ctx, &pb.RecordMetricRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": bad}},
		Metric:   &pb.MetricData{Name: "utf8_probe", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1},
	})
	st := status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Contains(t, st.Message(), `resource.attributes["service.name"]`)

	_, err = raw.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: &pb.MetricDefinition{
		Name: "utf8_probe", Type: pb.MetricType_METRIC_TYPE_GAUGE, Description: bad}})
	st = status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "definition.description: contains invalid UTF-8")

	_, err = raw.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: `utf8_probe{a="` + bad + `"}`})
	st = status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "query: contains invalid UTF-8")

	s, err := raw.StreamMetrics(ctx, &pb.StreamMetricsRequest{Filter: &pb.MetricFilter{Names: []string{bad}}})
	require.NoError(t, err)
	_, err = s.Recv()
	st = status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code())
	assert.Contains(t, st.Message(), "filter.names[0]")

	// a Go client reads every page afterwards: nothing invalid was stored
	resp, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: []string{"utf8_probe"}}})
	require.NoError(t, err)
	assert.Empty(t, resp.Series)
}

// rawConn dials addr with a codec that encodes strings without checking
// their UTF-8, as clients of other languages may.
func rawConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	return dial(t, addr, grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpccodec.Codec{})))
}
