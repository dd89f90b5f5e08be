package metricsmanagementextension_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestInvalidUTF8IsRefusedNamingTheField sends a provider whose name has
// invalid UTF-8 (with a codec that does not check it): INVALID_ARGUMENT
// naming the field, and nothing is created.
func TestInvalidUTF8IsRefusedNamingTheField(t *testing.T) {
	c := startCollector(t, t.TempDir(), "", "")
	conn, err := grpc.NewClient(c.mgmtConn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpccodec.Codec{})))
	require.NoError(t, err)
	defer conn.Close()
	raw := pb.NewMetricsManagementServiceClient(conn)
	_, err = raw.CreateMetricsProvider(context.Background(), &pb.CreateProviderRequest{Config: &pb.ProviderConfig{
		Name: "bad\xffname", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
	}})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Contains(t, st.Message(), "config.name: contains invalid UTF-8")
	list, err := c.mgmt.ListMetricsProviders(context.Background(), &pb.ListProvidersRequest{})
	require.NoError(t, err)
	assert.Empty(t, list.Providers)
}

// TestMalformedBodyIsInvalidArgument sends bytes that are no protobuf
// message: INVALID_ARGUMENT naming the message, not INTERNAL.
func TestMalformedBodyIsInvalidArgument(t *testing.T) {
	c := startCollector(t, t.TempDir(), "", "")
	var out pb.ListProvidersResponse
	err := c.mgmtConn.Invoke(context.Background(), pb.MetricsManagementService_ListMetricsProviders_FullMethodName,
		rawBytes{0xff, 0xff, 0xff}, &out, grpc.ForceCodecV2(rawBytesCodec{}))
	st := status.Convert(err)
	assert.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Contains(t, st.Message(), "ListProvidersRequest")
}

type rawBytes []byte

// rawBytesCodec sends rawBytes as they are.
type rawBytesCodec struct{}

func (rawBytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawBytes))}, nil
}

func (rawBytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return grpccodec.Codec{}.Unmarshal(data, v)
}

func (rawBytesCodec) Name() string { return "proto" }
