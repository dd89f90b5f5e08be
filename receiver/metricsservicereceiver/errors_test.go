package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/definitions"
	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/summary"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestStatusOfMapsEveryEngineKind is the mapping table of errors.go: each
// engine error kind and the gRPC code it becomes, message kept.
func TestStatusOfMapsEveryEngineKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"issue invalid", &convert.Issue{Field: "metrics[0].name", Message: "bad", Kind: convert.KindInvalid}, codes.InvalidArgument, "metrics[0].name: bad"},
		{"issue limit", &convert.Issue{Field: ".labels", Message: "full", Kind: convert.KindResourceExhausted}, codes.ResourceExhausted, ".labels: full"},
		{"issue out of range", &convert.Issue{Field: ".timestamp", Message: "old", Kind: convert.KindOutOfRange}, codes.OutOfRange, ".timestamp: old"},
		{"summary invalid", &summary.Error{Kind: summary.KindInvalid, Field: "trend_window", Message: "1s is outside [1m, 90m]"}, codes.InvalidArgument, "trend_window: 1s"},
		{"summary store read", &summary.Error{Kind: summary.KindUnavailable, Field: "filter.label_matchers", Message: "reading", Err: errors.New("io")}, codes.Unavailable, "filter.label_matchers: reading: io"},
		{"filter", &metricfilter.Error{Field: "filter.names[0]", Message: "bad glob"}, codes.InvalidArgument, "filter.names[0]: bad glob"},
		{"backup invalid", &definitions.Error{Kind: definitions.KindInvalid, Field: "restore_backup_id", Message: "x"}, codes.InvalidArgument, "restore_backup_id: x"},
		{"backup not found", &definitions.Error{Kind: definitions.KindNotFound, Message: `backup "b" does not exist`}, codes.NotFound, "does not exist"},
		{"backup exists", &definitions.Error{Kind: definitions.KindAlreadyExists, Message: "registered"}, codes.AlreadyExists, "registered"},
		{"backup precondition", &definitions.Error{Kind: definitions.KindFailedPrecondition, Message: "no dir"}, codes.FailedPrecondition, "no dir"},
		{"backup damaged", &definitions.Error{Kind: definitions.KindDataLoss, Message: "damaged"}, codes.DataLoss, "damaged"},
		{"backup io", &definitions.Error{Kind: definitions.KindInternal, Message: "read backup", Err: errors.New("eio")}, codes.Internal, "read backup: eio"},
		{"registry invalid", &registry.InvalidError{Issues: []*pb.ValidationIssue{{Field: "definition.name", Message: "empty", Suggestion: "name it"}}}, codes.InvalidArgument, "(fix: name it)"},
		{"registry breaking", &registry.BreakingError{Changes: []*pb.SchemaChange{{Breaking: true, Description: "type changed"}}}, codes.FailedPrecondition, "type changed (fix: set allow_breaking"},
		{"registry not found", fmt.Errorf("unregister: %w", registry.ErrNotFound), codes.NotFound, "not registered"},
		{"registry conflict (etcd)", &registry.ConflictError{Metric: "http_requests_total", Version: 3, Revision: 42}, codes.Aborted, `metric "http_requests_total" was changed by another node since this node read it; it is now at version 3 (etcd revision 42); re-read it (GetMetricMetadata) and retry on version 3`},
		{"registry unavailable (etcd)", fmt.Errorf("%w: etcd down; fix: bring the etcd cluster back", registry.ErrUnavailable), codes.Unavailable, "fix: bring the etcd cluster back"},
		{"restore passes a conflict through", &definitions.Error{Kind: definitions.KindInternal, Message: "restore", Err: &registry.ConflictError{Metric: "m"}}, codes.Aborted, `metric "m"`},
		{"store refusal", &store.RefusedError{Reason: store.ReasonTooOld, Field: "timestamp", Message: "old"}, codes.OutOfRange, ""},
		{"canceled", fmt.Errorf("read: %w", context.Canceled), codes.Canceled, "canceled"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "deadline"},
		{"status passes", status.Error(codes.Aborted, "x"), codes.Aborted, "x"},
		{"unknown", errors.New("boom"), codes.Internal, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(statusOf(tt.err))
			assert.Equal(t, tt.code, st.Code())
			assert.Contains(t, st.Message(), tt.msg)
		})
	}
	assert.NoError(t, statusOf(nil))
}

func TestIssueCodeAndDetails(t *testing.T) {
	err := issuesStatus([]*convert.Issue{
		{Field: "metrics[2].labels", Code: "series_limit", Message: "full", Suggestion: "drop a label", Kind: convert.KindResourceExhausted},
		{Field: "metrics[3].name", Code: "invalid_metric_name", Message: "bad"},
	})
	st := status.Convert(err)
	assert.Equal(t, codes.ResourceExhausted, st.Code(), "the first item's kind")
	assert.Equal(t, "metrics[2].labels: full (fix: drop a label); 1 more items refused", st.Message())
	require.Len(t, st.Details(), 1)
	br := st.Details()[0].(*errdetails.BadRequest)
	assert.Len(t, br.FieldViolations, 2)
	assert.Equal(t, "invalid_metric_name", br.FieldViolations[1].Reason)
}
