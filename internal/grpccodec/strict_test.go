package grpccodec

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestCheckRequestRefusesUnknownEnumsAndNegativesPerMethod(t *testing.T) {
	neg := durationpb.New(-1)
	tests := []struct {
		name    string
		req     proto.Message
		wantErr string // empty: accepted
	}{
		{"RecordMetric ok", &pb.RecordMetricRequest{Metric: &pb.MetricData{Name: "a", Type: pb.MetricType_METRIC_TYPE_GAUGE}}, ""},
		{"RecordMetric metric type is left to convert", &pb.RecordMetricRequest{Metric: &pb.MetricData{Type: 42}}, ""},
		{"RecordBatchMetrics mode", &pb.RecordBatchMetricsRequest{Options: &pb.BatchOptions{Mode: 7}},
			"request.options.mode: 7 is not a BatchMode"},
		{"RecordBatchMetrics mode names the values", &pb.RecordBatchMetricsRequest{Options: &pb.BatchOptions{Mode: -1}},
			"request.options.mode: -1 is not a BatchMode (fix: use one of BATCH_MODE_UNSPECIFIED"},
		{"GetMetrics aggregation function", &pb.GetMetricsRequest{Aggregation: &pb.Aggregation{Function: 99}},
			"request.aggregation.function: 99 is not a AggregationFunction"},
		{"GetMetrics matcher operator", &pb.GetMetricsRequest{Filter: &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{{Name: "a", Operator: 12}}}},
			"request.filter.label_matchers[0].operator: 12 is not a MatchOperator"},
		{"StreamMetrics qos", &pb.StreamMetricsRequest{Options: &pb.StreamOptions{Qos: 5}},
			"request.options.qos: 5 is not a QualityOfService"},
		{"StreamMetrics compression", &pb.StreamMetricsRequest{Options: &pb.StreamOptions{Compression: 9}},
			"request.options.compression: 9 is not a StreamCompression"},
		{"UnregisterMetric data_retention", &pb.UnregisterMetricRequest{DataRetention: durationpb.New(-3e9)},
			"request.data_retention: must not be negative, got -3s 0ns"},
		{"UnregisterMetric backup_format", &pb.UnregisterMetricRequest{BackupFormat: 8},
			"request.backup_format: 8 is not a BackupFormat"},
		{"GetMetricMetadata page_size", &pb.GetMetricMetadataRequest{PageSize: -1},
			"request.page_size: must not be negative"},
		{"QueryMetrics type", &pb.QueryMetricsRequest{Type: 3},
			"request.type: 3 is not a QueryType"},
		{"GetMetricsSummary top_n", &pb.GetMetricsSummaryRequest{TopN: -10},
			"request.top_n: must not be negative, got -10"},
		{"GetMetricsSummary trend_window", &pb.GetMetricsSummaryRequest{TrendWindow: neg},
			"request.trend_window: must not be negative"},
		{"GetMetrics page_size is left to its handler", &pb.GetMetricsRequest{PageSize: -5}, ""},
		{"QueryMetrics timeout is left to its handler", &pb.QueryMetricsRequest{Limits: &pb.QueryLimits{Timeout: neg, MaxSamples: -1}}, ""},
		{"QueryMetrics times before 1970", &pb.QueryMetricsRequest{Start: &timestamppb.Timestamp{Seconds: -1e9}}, ""},
		{"GetMetricsSummary trend_window nanos", &pb.GetMetricsSummaryRequest{TrendWindow: &durationpb.Duration{Nanos: 2e9}},
			"request.trend_window: nanos must be below 1e9"},
		{"GetMetricsSummary ok", &pb.GetMetricsSummaryRequest{TopN: 3, TrendWindow: durationpb.New(1e9)}, ""},
		{"exponential histogram offsets may be negative", &pb.RecordMetricRequest{Metric: &pb.MetricData{
			Histogram: &pb.HistogramValue{Exponential: &pb.ExponentialBuckets{Scale: -2, PositiveOffset: -3, NegativeOffset: -4}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRequest(tt.req)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			var fe *FieldError
			require.True(t, errors.As(err, &fe))
		})
	}
}

// rawCodec sends bytes as they are, so a test can send a malformed body.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return Name }

// batchRecorder answers RecordBatchMetrics with the batch mode it got.
type batchRecorder struct {
	pb.UnimplementedMetricsServiceServer
}

func (batchRecorder) RecordBatchMetrics(_ context.Context, req *pb.RecordBatchMetricsRequest) (*pb.RecordBatchMetricsResponse, error) {
	return &pb.RecordBatchMetricsResponse{AcceptedCount: uint32(req.GetOptions().GetMode())}, nil
}

func startStrictServer(t *testing.T) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer(grpc.ForceServerCodecV2(Codec{}), grpc.ChainStreamInterceptor(StrictStreamInterceptor(true)))
	srv.RegisterService(StrictService(&pb.MetricsService_ServiceDesc, true), batchRecorder{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-done
	})
	return conn
}

func TestStrictServiceAnswersInvalidArgumentForMalformedBodies(t *testing.T) {
	conn := startStrictServer(t)
	malformed := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f} // field 1, length past the end
	tests := []struct {
		method, message string
	}{
		{"RecordMetric", "metricsmodule.v1.RecordMetricRequest"},
		{"RecordBatchMetrics", "metricsmodule.v1.RecordBatchMetricsRequest"},
		{"GetMetrics", "metricsmodule.v1.GetMetricsRequest"},
		{"QueryMetrics", "metricsmodule.v1.QueryMetricsRequest"},
		{"GetMetricsSummary", "metricsmodule.v1.GetMetricsSummaryRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var out []byte
			err := conn.Invoke(context.Background(), "/metricsmodule.v1.MetricsService/"+tt.method, &malformed, &out,
				grpc.ForceCodecV2(rawCodec{}))
			st := status.Convert(err)
			require.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
			require.Contains(t, st.Message(), "request body is not a valid "+tt.message)
		})
	}
	t.Run("StreamMetrics", func(t *testing.T) {
		stream, err := conn.NewStream(context.Background(), &pb.MetricsService_ServiceDesc.Streams[0],
			"/metricsmodule.v1.MetricsService/StreamMetrics", grpc.ForceCodecV2(rawCodec{}))
		require.NoError(t, err)
		require.NoError(t, stream.SendMsg(&malformed))
		require.NoError(t, stream.CloseSend())
		var out []byte
		st := status.Convert(stream.RecvMsg(&out))
		require.Equal(t, codes.InvalidArgument, st.Code(), st.Message())
		require.Contains(t, st.Message(), "request body is not a valid metricsmodule.v1.StreamMetricsRequest")
	})
}

func TestStrictServiceRefusesUnknownEnumBeforeTheHandler(t *testing.T) {
	conn := startStrictServer(t)
	client := pb.NewMetricsServiceClient(conn)
	_, err := client.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{Options: &pb.BatchOptions{Mode: 7}})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Contains(t, st.Message(), "request.options.mode: 7 is not a BatchMode")

	// a valid request reaches the handler, decoded
	resp, err := client.RecordBatchMetrics(context.Background(), &pb.RecordBatchMetricsRequest{Options: &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT}})
	require.NoError(t, err)
	require.EqualValues(t, pb.BatchMode_BATCH_MODE_BEST_EFFORT, resp.AcceptedCount)
}
