package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/lz4codec"
	"github.com/metricsmodule/metricsmodule/internal/stream"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// streamDrainGrace is how long Shutdown lets open streams deliver their
// end-of-stream before it stops the server forcefully: a client that stopped
// reading never takes it, and a graceful stop would wait for it forever.
const streamDrainGrace = time.Second

// StreamMetrics streams the data points the request's filter selects as the
// pipeline accepts them: numbered batches and heartbeats, with the requested
// quality of service and compression.
func (s *metricsService) StreamMetrics(req *pb.StreamMetricsRequest, srv grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
	ctx := srv.Context()
	if s.r.hub == nil {
		return status.Error(codes.FailedPrecondition, "StreamMetrics needs the metrics_store extension: add it (and the metrics_store processor to the pipelines) to the collector config")
	}
	want := req.GetOptions().GetCompression()
	if _, known := pb.StreamCompression_name[int32(want)]; !known {
		return status.Errorf(codes.InvalidArgument, "options.compression: %d is not a stream compression", want)
	}
	st, err := s.r.hub.Subscribe(req)
	if err != nil {
		return streamStatus(err)
	}
	notice := negotiateCompression(ctx, want)
	logger := s.r.settings.Logger.With(zap.String("subscription_id", st.SubscriptionID()))
	logger.Debug("Stream opened", zap.Stringer("qos", req.GetOptions().GetQos()), zap.Stringer("compression", notice.Compression))
	err = st.Run(ctx, func(m stream.Message) error { return srv.SendMsg(m) }, notice)
	var loss *stream.DataLossError
	if errors.As(err, &loss) {
		logger.Warn("Stream failed: its replay log was outrun", zap.Uint64("first_missing", loss.From), zap.Uint64("last_missing", loss.To))
	} else {
		logger.Debug("Stream ended", zap.Error(err))
	}
	return streamStatus(err)
}

// compressors names the gRPC compressor of each stream compression.
var compressors = map[pb.StreamCompression]string{
	pb.StreamCompression_STREAM_COMPRESSION_GZIP:   gzip.Name,
	pb.StreamCompression_STREAM_COMPRESSION_SNAPPY: "snappy",
	pb.StreamCompression_STREAM_COMPRESSION_LZ4:    lz4codec.Name,
	pb.StreamCompression_STREAM_COMPRESSION_ZSTD:   "zstd",
}

// negotiateCompression sets the compressor of the stream's messages. A
// compressor the client did not advertise in grpc-accept-encoding (e.g.
// grpcurl, which knows gzip only) would break the stream, so the stream
// falls back to none and the first heartbeat says why.
func negotiateCompression(ctx context.Context, want pb.StreamCompression) stream.Notice {
	none := stream.Notice{Compression: pb.StreamCompression_STREAM_COMPRESSION_NONE}
	name, ok := compressors[want]
	if !ok {
		// none asked: also when the request itself came compressed
		_ = grpc.SetSendCompressor(ctx, encoding.Identity)
		return none
	}
	advertised, _ := grpc.ClientSupportedCompressors(ctx)
	switch {
	case encoding.GetCompressor(name) == nil:
		none.Message = fmt.Sprintf("compression %s is not available on this server: the stream is uncompressed", name)
	case !slices.Contains(advertised, name):
		none.Message = fmt.Sprintf("compression %s requested, but the client advertises [%s] in grpc-accept-encoding: the stream is uncompressed (register the %s compressor in the client)",
			name, strings.Join(advertised, ", "), name)
	default:
		if err := grpc.SetSendCompressor(ctx, name); err != nil {
			none.Message = fmt.Sprintf("compression %s: %v: the stream is uncompressed", name, err)
		} else {
			return stream.Notice{Compression: want}
		}
	}
	_ = grpc.SetSendCompressor(ctx, encoding.Identity)
	return none
}

// closeStreams ends every stream with UNAVAILABLE. When streams were open
// it returns a channel that fires after streamDrainGrace, for Shutdown to
// stop the server forcefully if a stalled client holds a stream open.
func (r *metricsReceiver) closeStreams() <-chan time.Time {
	if r.hub == nil {
		return nil
	}
	open := r.hub.Streams() > 0
	r.hub.Close()
	if !open {
		return nil
	}
	return time.After(streamDrainGrace)
}
