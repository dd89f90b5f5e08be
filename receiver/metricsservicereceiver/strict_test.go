package metricsservicereceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// garbageCodec sends a body that is not protobuf, whatever the request.
type garbageCodec struct{}

func (garbageCodec) Marshal(any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})}, nil
}
func (garbageCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (garbageCodec) Name() string                         { return "proto" }

func TestEveryMethodRefusesMalformedBodiesAndBadFields(t *testing.T) {
	c := startReceiver(t, &switchSink{}, nil)
	ctx := context.Background()
	neg := durationpb.New(-1e9)
	garbage := grpc.ForceCodecV2(garbageCodec{})
	metric := specExample().GetMetric()
	stream := func(req *pb.StreamMetricsRequest, opts ...grpc.CallOption) error {
		s, err := c.StreamMetrics(ctx, req, opts...)
		if err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"RecordMetric malformed", func() error { _, err := c.RecordMetric(ctx, specExample(), garbage); return err },
			"request body is not a valid metricsmodule.v1.RecordMetricRequest"},
		{"RecordBatchMetrics malformed", func() error {
			_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{}, garbage)
			return err
		}, "request body is not a valid metricsmodule.v1.RecordBatchMetricsRequest"},
		{"RecordBatchMetrics mode", func() error {
			_, err := c.RecordBatchMetrics(ctx, &pb.RecordBatchMetricsRequest{Metrics: []*pb.MetricData{metric}, Options: &pb.BatchOptions{Mode: 7}})
			return err
		}, "request.options.mode: 7 is not a BatchMode"},
		{"GetMetrics aggregation", func() error {
			_, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{Aggregation: &pb.Aggregation{Function: 99}})
			return err
		}, "request.aggregation.function: 99 is not a AggregationFunction"},
		{"GetMetrics malformed", func() error { _, err := c.GetMetrics(ctx, &pb.GetMetricsRequest{}, garbage); return err },
			"request body is not a valid metricsmodule.v1.GetMetricsRequest"},
		{"StreamMetrics qos", func() error { return stream(&pb.StreamMetricsRequest{Options: &pb.StreamOptions{Qos: 5}}) },
			"request.options.qos: 5 is not a QualityOfService"},
		{"StreamMetrics malformed", func() error { return stream(&pb.StreamMetricsRequest{}, garbage) },
			"request body is not a valid metricsmodule.v1.StreamMetricsRequest"},
		{"RegisterMetric type", func() error {
			_, err := c.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: &pb.MetricDefinition{Name: "x", Type: 42}})
			return err
		}, "request.definition.type: 42 is not a MetricType"},
		{"UnregisterMetric data_retention", func() error {
			_, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "x", DataRetention: neg})
			return err
		}, "request.data_retention: must not be negative"},
		{"UnregisterMetric backup_format", func() error {
			_, err := c.UnregisterMetric(ctx, &pb.UnregisterMetricRequest{Name: "x", BackupFormat: 9})
			return err
		}, "request.backup_format: 9 is not a BackupFormat"},
		{"GetMetricMetadata page_size", func() error {
			_, err := c.GetMetricMetadata(ctx, &pb.GetMetricMetadataRequest{PageSize: -2})
			return err
		}, "request.page_size: must not be negative, got -2"},
		{"QueryMetrics type", func() error {
			_, err := c.QueryMetrics(ctx, &pb.QueryMetricsRequest{Query: "up", Type: 7})
			return err
		}, "request.type: 7 is not a QueryType"},
		{"GetMetricsSummary top_n", func() error {
			_, err := c.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{TopN: -1})
			return err
		}, "request.top_n: must not be negative, got -1"},
		{"GetMetricsSummary malformed", func() error {
			_, err := c.GetMetricsSummary(ctx, &pb.GetMetricsSummaryRequest{}, garbage)
			return err
		}, "request body is not a valid metricsmodule.v1.GetMetricsSummaryRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(tt.call())
			require.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
			assert.Contains(t, st.Message(), tt.want)
			assert.Contains(t, st.Message(), "fix:")
		})
	}
}
