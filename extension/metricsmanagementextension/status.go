package metricsmanagementextension

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/metricsmodule/metricsmodule/internal/provider"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// maxViolations bounds the field violations attached to one status.
const maxViolations = 100

// toStatus maps an engine error to a gRPC status, in one place:
// validation → INVALID_ARGUMENT with BadRequest field violations; a missing
// exporter type → FAILED_PRECONDITION with a PreconditionFailure naming it;
// a destination policy refusal → PERMISSION_DENIED with ErrorInfo and
// BadRequest; the sentinels → NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED,
// UNAVAILABLE; context ends → DEADLINE_EXCEEDED / CANCELED; else INTERNAL.
func toStatus(err error) error {
	var ve *provider.ValidationError
	var me *provider.MissingExporterError
	var pe *provider.PolicyError
	switch {
	case errors.As(err, &pe):
		return policyStatus(pe, err)
	case errors.As(err, &ve):
		st := status.New(codes.InvalidArgument, ve.Error())
		br := &errdetails.BadRequest{}
		for _, iss := range ve.Issues {
			if iss.GetSeverity() != pb.Severity_SEVERITY_ERROR || len(br.FieldViolations) >= maxViolations {
				continue
			}
			desc := iss.GetMessage()
			if iss.GetSuggestion() != "" {
				desc += " (fix: " + iss.GetSuggestion() + ")"
			}
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: iss.GetField(), Description: desc, Reason: iss.GetCode(),
			})
		}
		return withDetails(st, br)
	case errors.As(err, &me):
		return withDetails(status.New(codes.FailedPrecondition, me.Error()), &errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{Type: "EXPORTER_TYPE", Subject: me.Type, Description: me.Error()}},
		})
	case errors.Is(err, provider.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, provider.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, provider.ErrAborted):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, provider.ErrFailedPrecondition):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, provider.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// policyStatus is PERMISSION_DENIED: the request is well formed, the
// operator's destination policy forbids it. Details: an ErrorInfo (reason
// DESTINATION_NOT_ALLOWED; metadata field, class and config_key of the
// first refusal) and a BadRequest with every refused field.
func policyStatus(pe *provider.PolicyError, err error) error {
	st := status.New(codes.PermissionDenied, err.Error())
	var details []protoadapt.MessageV1
	if len(pe.Violations) > 0 {
		v := pe.Violations[0]
		details = append(details, &errdetails.ErrorInfo{
			Reason: "DESTINATION_NOT_ALLOWED", Domain: "metricsmodule",
			Metadata: map[string]string{"field": v.Field, "class": v.Class, "config_key": v.ConfigKey},
		})
	}
	br := &errdetails.BadRequest{}
	for _, iss := range pe.Issues() {
		if len(br.FieldViolations) >= maxViolations {
			break
		}
		desc := iss.GetMessage()
		if iss.GetSuggestion() != "" {
			desc += " (fix: " + iss.GetSuggestion() + ")"
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: iss.GetField(), Description: desc, Reason: iss.GetCode(),
		})
	}
	return withDetails(st, append(details, br)...)
}

func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	for _, d := range details {
		if w, err := st.WithDetails(d); err == nil {
			st = w
		}
	}
	return st.Err()
}
