package utf8check

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const bad = "ok\xffno"

func TestCheckNamesTheField(t *testing.T) {
	tests := []struct {
		name  string
		msg   proto.Message
		field string
	}{
		{"valid", &pb.RegisterMetricRequest{Definition: &pb.MetricDefinition{Name: "a", Description: "ünïcode ✓"}}, ""},
		{"nested string", &pb.RegisterMetricRequest{Definition: &pb.MetricDefinition{Name: "a", Description: bad}}, "definition.description"},
		{"repeated message", &pb.RegisterMetricRequest{Definition: &pb.MetricDefinition{Name: "a",
			Labels: []*pb.LabelDefinition{{Name: "x"}, {Name: "y", AllowedValues: []string{"a", bad}}}}}, "definition.labels[1].allowed_values[1]"},
		{"map value", &pb.RecordMetricRequest{Resource: &pb.Resource{Attributes: map[string]string{"service.name": bad}}}, `resource.attributes["service.name"]`},
		{"map key", &pb.RecordMetricRequest{Resource: &pb.Resource{Attributes: map[string]string{bad: "v"}}}, `resource.attributes (a key: "ok\xffno")`},
		{"top level", &pb.QueryMetricsRequest{Query: bad}, "query"},
		{"provider name", &pb.CreateProviderRequest{Config: &pb.ProviderConfig{Name: bad}}, "config.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.msg)
			if tt.field == "" {
				assert.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			assert.Equal(t, tt.field, err.Field)
			st := err.Status()
			assert.Equal(t, codes.InvalidArgument, st.Code())
			assert.Contains(t, st.Message(), "fix: send valid UTF-8")
		})
	}
}

func TestUnaryInterceptorSkipsMethodsThatCheckThemselves(t *testing.T) {
	icpt := UnaryServerInterceptor("/svc/Record")
	called := 0
	h := func(context.Context, any) (any, error) { called++; return nil, nil }
	req := &pb.QueryMetricsRequest{Query: bad}
	_, err := icpt(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: "/svc/Query"}, h)
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Equal(t, 0, called, "refused before the handler")
	_, err = icpt(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: "/svc/Record"}, h)
	require.NoError(t, err)
	assert.Equal(t, 1, called)
}
