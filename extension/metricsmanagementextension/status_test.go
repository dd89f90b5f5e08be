package metricsmanagementextension

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension/internal/metadata"
	"github.com/metricsmodule/metricsmodule/internal/provider"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestToStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("%w: provider %q", provider.ErrNotFound, "a"), codes.NotFound},
		{fmt.Errorf("%w: provider %q", provider.ErrAlreadyExists, "a"), codes.AlreadyExists},
		{fmt.Errorf("%w: version", provider.ErrAborted), codes.Aborted},
		{fmt.Errorf("%w: busy", provider.ErrFailedPrecondition), codes.FailedPrecondition},
		{fmt.Errorf("%w: stopping", provider.ErrUnavailable), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{status.Error(codes.ResourceExhausted, "x"), codes.ResourceExhausted},
		{errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.code, status.Code(toStatus(tt.err)), tt.err.Error())
	}

	ve := &provider.ValidationError{Issues: []*pb.ValidationIssue{
		{Field: "config.provider_id", Code: "required", Message: "provider id must be set", Suggestion: "use e.g. x", Severity: pb.Severity_SEVERITY_ERROR},
		{Field: "config.settings", Code: "ignored", Message: "just a warning", Severity: pb.Severity_SEVERITY_WARNING},
	}}
	st := status.Convert(toStatus(fmt.Errorf("create: %w", ve)))
	require.Equal(t, codes.InvalidArgument, st.Code())
	assert.Equal(t, "config.provider_id: provider id must be set", st.Message())
	require.Len(t, st.Details(), 1)
	br := st.Details()[0].(*errdetails.BadRequest)
	require.Len(t, br.GetFieldViolations(), 1, "warnings are not violations")
	assert.Equal(t, "config.provider_id", br.GetFieldViolations()[0].GetField())
	assert.Equal(t, "required", br.GetFieldViolations()[0].GetReason())
	assert.Contains(t, br.GetFieldViolations()[0].GetDescription(), "fix: use e.g. x")

	me := &provider.MissingExporterError{Type: "pushgateway"}
	st = status.Convert(toStatus(me))
	require.Equal(t, codes.FailedPrecondition, st.Code())
	assert.Contains(t, st.Message(), `"pushgateway"`)
	pf := st.Details()[0].(*errdetails.PreconditionFailure)
	assert.Equal(t, "pushgateway", pf.GetViolations()[0].GetSubject())
}

func TestShutdownWithoutStartIsSafe(t *testing.T) {
	t.Parallel()
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), createDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestStartFailsWithoutStorage(t *testing.T) {
	t.Parallel()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	id := metadata.Type
	storage := id // any id that is not an extension of the host
	sid := componentID(storage.String())
	cfg.Storage = &sid
	x := newExtension(cfg, extensiontest.NewNopSettings(metadata.Type))
	assert.Equal(t, []string{sid.String()}, idStrings(x.Dependencies()))
	err := x.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "not found")
	require.NoError(t, x.Shutdown(context.Background()))
}

func componentID(s string) component.ID {
	var id component.ID
	_ = id.UnmarshalText([]byte(s))
	return id
}

func idStrings(ids []component.ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// A destination policy refusal is PERMISSION_DENIED naming the field, the
// class and the config key that allows it.
func TestPolicyStatus(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("wrapped: %w", &provider.PolicyError{Violations: []provider.PolicyViolation{
		{Field: "config.settings.opentelemetry.endpoint", Class: provider.ClassSelf, ConfigKey: "destination_policy.allow_self", Message: "loop"},
		{Field: "config.security.tls.ca_file", Class: provider.ClassFileOutsideDirs, ConfigKey: "destination_policy.file_dirs", Message: "file"},
	}})
	st := status.Convert(toStatus(err))
	assert.Equal(t, codes.PermissionDenied, st.Code())
	var info *errdetails.ErrorInfo
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.ErrorInfo:
			info = x
		case *errdetails.BadRequest:
			br = x
		}
	}
	require.NotNil(t, info)
	assert.Equal(t, "DESTINATION_NOT_ALLOWED", info.GetReason())
	assert.Equal(t, map[string]string{"field": "config.settings.opentelemetry.endpoint", "class": "self_endpoint", "config_key": "destination_policy.allow_self"}, info.GetMetadata())
	require.NotNil(t, br)
	require.Len(t, br.GetFieldViolations(), 2)
	assert.Equal(t, "config.security.tls.ca_file", br.GetFieldViolations()[1].GetField())
	assert.Equal(t, "file_outside_allowed_dirs", br.GetFieldViolations()[1].GetReason())
	assert.Contains(t, br.GetFieldViolations()[1].GetDescription(), "destination_policy.file_dirs")
}
