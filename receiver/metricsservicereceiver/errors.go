package metricsservicereceiver

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// maxIssuesInStatus bounds the field violations attached to one status.
const maxIssuesInStatus = 100

// issuesStatus maps refused items to one gRPC status. The message names the
// first item, its field and how to fix it; BadRequest details list up to
// maxIssuesInStatus of them.
func issuesStatus(issues []*convert.Issue) error {
	first := issues[0]
	msg := first.Error()
	if first.Suggestion != "" {
		msg += " (fix: " + first.Suggestion + ")"
	}
	if len(issues) > 1 {
		msg += fmt.Sprintf("; %d more items refused", len(issues)-1)
	}
	st := status.New(first.Status, msg)
	br := &errdetails.BadRequest{}
	for _, iss := range issues[:min(len(issues), maxIssuesInStatus)] {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       iss.Field,
			Description: iss.Message,
			Reason:      iss.Code,
		})
	}
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}

// toValidationIssue turns a refusal into its API form.
func toValidationIssue(iss *convert.Issue) *pb.ValidationIssue {
	return &pb.ValidationIssue{
		Field:      iss.Field,
		Code:       iss.Code,
		Message:    iss.Message,
		Suggestion: iss.Suggestion,
		Severity:   pb.Severity_SEVERITY_ERROR,
	}
}

// storeRefusalStatus maps a batch the store would not keep whole (found
// when the pipeline stored it, after the per-item checks passed, e.g. the
// window moved meanwhile) to a status: outside the window is OUT_OF_RANGE;
// a second value at one millisecond (a series updated faster than the store
// keeps, once the receiver's one-second lead is used up) is UNAVAILABLE,
// because the same request succeeds a moment later; the rest is
// INVALID_ARGUMENT.
func storeRefusalStatus(e *store.RefusedError) error {
	code := codes.InvalidArgument
	switch e.Reason {
	case store.ReasonTooOld, store.ReasonTooNew:
		code = codes.OutOfRange
	case store.ReasonDuplicate:
		code = codes.Unavailable
	}
	st := status.New(code, e.Error())
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
		Field: e.Field, Description: e.Message, Reason: string(e.Reason),
	}}}); err == nil {
		st = d
	}
	return st.Err()
}

// memoryLimiterRefusal is the text of the memory_limiter processor's refusal
// (its error value lives in an internal package).
const memoryLimiterRefusal = "data refused due to high memory usage"

// consumerStatus maps an error of the next consumer to a gRPC status:
// a status is passed on; the memory limiter's refusal is RESOURCE_EXHAUSTED
// (retry later); a permanent error is INVALID_ARGUMENT (do not retry); any
// other error is UNAVAILABLE (retry).
func consumerStatus(err error) error {
	var refused *store.RefusedError
	if errors.As(err, &refused) {
		return storeRefusalStatus(refused)
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	var iss *convert.Issue
	if errors.As(err, &iss) {
		return issuesStatus([]*convert.Issue{iss})
	}
	switch {
	case strings.Contains(err.Error(), memoryLimiterRefusal):
		return status.Error(codes.ResourceExhausted, "pipeline refused the data: "+err.Error()+"; retry later")
	case consumererror.IsPermanent(err):
		return status.Error(codes.InvalidArgument, "pipeline refused the data permanently: "+err.Error())
	default:
		return status.Error(codes.Unavailable, "pipeline did not accept the data: "+err.Error()+"; retry")
	}
}
