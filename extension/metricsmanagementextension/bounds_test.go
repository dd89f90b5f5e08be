package metricsmanagementextension_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// fieldViolations returns the BadRequest field names of st.
func fieldViolations(st *status.Status) []string {
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// An oversized description or tag value is refused over gRPC with
// INVALID_ARGUMENT naming the field, the size, the limit and the fix, on
// create and on update; nothing is stored.
func TestOversizedProviderTextIsInvalidArgument(t *testing.T) {
	t.Parallel()
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	pc := otlpProvider("p", "127.0.0.1:1")
	pc.Description = strings.Repeat("d", 4097)
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: pc})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "config.description: description has 4097 bytes, at most 4096 are allowed; shorten it (link to a longer text instead)", st.Message())
	assert.Equal(t, []string{"config.description"}, fieldViolations(st))

	pc.Description = strings.Repeat("d", 4096)
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: pc})
	require.NoError(t, err, "a description at the limit is accepted")

	pc.Tags = map[string]string{"team": strings.Repeat("t", 1025)}
	_, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "p", Config: pc})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, `config.tags["team"]: tag value has 1025 bytes, at most 1024 are allowed; shorten the value`, st.Message())
	assert.Equal(t, []string{`config.tags["team"]`}, fieldViolations(st))

	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetProviders(), 1)
	assert.Empty(t, list.GetProviders()[0].GetConfig().GetTags(), "the refused update changed nothing")
	assert.Equal(t, uint64(1), list.GetProviders()[0].GetVersion())
}
