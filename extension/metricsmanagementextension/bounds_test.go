package metricsmanagementextension_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/structpb"

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

// Settings over 64 KiB encoded, or a custom exporter config nested more
// than 32 levels deep, are refused over gRPC with INVALID_ARGUMENT naming
// the field path, the size or depth, the limit and the fix, on create and
// on a masked update; at the limit a config is accepted; nothing is stored.
func TestOversizedProviderSettingsAreInvalidArgument(t *testing.T) {
	t.Parallel()
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	// withHeaders sets one header whose value makes the settings n bytes encoded.
	withHeaders := func(pc *pb.ProviderConfig, n int) *pb.ProviderConfig {
		o := pc.GetSettings().GetOpentelemetry()
		o.Headers = map[string]string{"X-Pad": ""}
		for pad := n - proto.Size(o); pad >= 0; pad-- {
			o.Headers["X-Pad"] = strings.Repeat("h", pad)
			if proto.Size(o) <= n {
				break
			}
		}
		require.Equal(t, n, proto.Size(o))
		return pc
	}
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: withHeaders(otlpProvider("p", "127.0.0.1:1"), 65537)})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "config.settings.opentelemetry: settings.opentelemetry has 65537 bytes encoded, at most 65536 are allowed; shorten the headers", st.Message())
	assert.Equal(t, []string{"config.settings.opentelemetry"}, fieldViolations(st))

	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: withHeaders(otlpProvider("p", "127.0.0.1:1"), 65536)})
	require.NoError(t, err, "settings at the limit are accepted")

	_, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: withHeaders(otlpProvider("", "127.0.0.1:1"), 70000),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"settings.opentelemetry.headers"}},
	})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, []string{"config.settings.opentelemetry"}, fieldViolations(st))

	// a custom exporter config 33 levels deep
	var deep any = map[string]any{"v": 1.0}
	for range 31 {
		deep = map[string]any{"n": deep}
	}
	cfg, err := structpb.NewStruct(map[string]any{"verbosity": "basic", "n": deep})
	require.NoError(t, err)
	dbg := &pb.ProviderConfig{ProviderId: "debug", Type: pb.ProviderType_PROVIDER_TYPE_CUSTOM,
		Settings: &pb.ProviderSettings{Custom: &pb.CustomSettings{ExporterType: "debug", Config: cfg}}}
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: dbg})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	field := "config.settings.custom.config" + strings.Repeat(".n", 32)
	assert.Equal(t, field+": the exporter config nests more than 32 levels of maps and lists here; flatten it", st.Message())
	assert.Equal(t, []string{field}, fieldViolations(st))

	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetProviders(), 1)
	assert.Equal(t, uint64(1), list.GetProviders()[0].GetVersion(), "the refused update changed nothing")
	assert.Contains(t, list.GetProviders()[0].GetConfig().GetSettings().GetOpentelemetry().GetHeaders(), "X-Pad")
}

// A filter over the bounds of package metricfilter (entries per list, bytes
// per string, regex program size) and a bearer token over 16 KiB are
// refused over gRPC with INVALID_ARGUMENT naming the field, the size, the
// limit and the fix, never the token; at the limit they are accepted;
// nothing is stored.
func TestOversizedProviderFilterAndTokenAreInvalidArgument(t *testing.T) {
	t.Parallel()
	c := startCollector(t, t.TempDir(), "", "")
	ctx := context.Background()

	names := make([]string, 1001)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	pc := otlpProvider("p", "127.0.0.1:1")
	pc.Filter = &pb.MetricFilter{Names: names}
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: pc})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "config.filter.names: 1001 entries, at most 1000 are allowed; send at most 1000; match a family of names with a glob (http_*) or name_regex", st.Message())
	assert.Equal(t, []string{"config.filter.names"}, fieldViolations(st))

	pc.Filter = &pb.MetricFilter{LabelMatchers: []*pb.LabelMatcher{
		{Name: "a", Value: "x"}, {Name: "b", Operator: pb.MatchOperator_MATCH_OPERATOR_REGEX, Value: strings.Repeat(".{1000}", 66)},
	}}
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: pc})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Contains(t, st.Message(), "config.filter.label_matchers[1].value: compiles to about 66000 regex instructions")
	assert.Contains(t, st.Message(), "at most 65536 are allowed together; use smaller repetition counts")

	pc.Filter = &pb.MetricFilter{Names: names[:1000]}
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: pc})
	require.NoError(t, err, "a filter at the limit is accepted")

	token := strings.Repeat("T", 16385)
	tok := otlpProvider("tok", "127.0.0.1:1")
	tok.Security.BearerToken = token
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: tok})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, "config.security.bearer_token: bearer_token has 16385 bytes, at most 16384 are allowed; send the token itself; for a longer credential use an authenticator extension", st.Message())
	assert.Equal(t, []string{"config.security.bearer_token"}, fieldViolations(st))
	assert.NotContains(t, fmt.Sprint(st.Proto()), "TTTT", "the token is not echoed")

	tok.ProviderId = ""
	_, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{
		ProviderId: "p", Config: tok, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"security.bearer_token"}},
	})
	st = status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	assert.Equal(t, []string{"config.security.bearer_token"}, fieldViolations(st))

	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetProviders(), 1)
	assert.Equal(t, uint64(1), list.GetProviders()[0].GetVersion(), "the refused update changed nothing")
	assert.Empty(t, list.GetProviders()[0].GetConfig().GetSecurity().GetBearerToken())
}
