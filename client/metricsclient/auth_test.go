package metricsclient_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestCredentialsAreSentWithEveryCall(t *testing.T) {
	seen := make(chan string, 1)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		seen <- md.Get("authorization")[0]
		return h(ctx, req)
	}))
	pb.RegisterMetricsServiceServer(srv, &pb.UnimplementedMetricsServiceServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	ctx := context.Background()
	for _, tc := range []struct {
		opt  metricsclient.Option
		want string
	}{
		{metricsclient.WithToken("s3cret"), "Bearer s3cret"},
		{metricsclient.WithBasicAuth("ingester", "pw"), "Basic aW5nZXN0ZXI6cHc="},
	} {
		cl, err := metricsclient.New(ctx, lis.Addr().String(), tc.opt)
		require.NoError(t, err)
		_, _ = cl.Query(ctx, "up", time.Time{})
		assert.Equal(t, tc.want, <-seen)
		require.NoError(t, cl.Close(ctx))
	}
}
