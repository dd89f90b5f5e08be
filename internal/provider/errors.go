package provider

import (
	"errors"
	"fmt"
	"strings"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Sentinel errors; the extension maps them to gRPC codes in one place.
var (
	// ErrNotFound: the provider or backup does not exist (NOT_FOUND).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a provider with the id exists with another config (ALREADY_EXISTS).
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: the request is valid but cannot be applied now or
	// here, e.g. the exporter type is not compiled in (FAILED_PRECONDITION).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrAborted: expected_version did not match (ABORTED).
	ErrAborted = errors.New("aborted")
	// ErrUnavailable: the engine is not started or is shutting down (UNAVAILABLE).
	ErrUnavailable = errors.New("unavailable")
)

// ValidationError carries the field-level problems that refused a request
// (INVALID_ARGUMENT with BadRequest field violations).
type ValidationError struct {
	// Issues are the problems found; at least one has severity ERROR.
	Issues []*pb.ValidationIssue
}

func (e *ValidationError) Error() string {
	var errs []string
	for _, iss := range e.Issues {
		if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
			errs = append(errs, iss.GetField()+": "+iss.GetMessage())
		}
	}
	if len(errs) == 0 {
		return "invalid request"
	}
	msg := errs[0]
	if len(errs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return msg
}

// MissingExporterError says that the exporter type a provider needs is not
// compiled into the collector. It is an ErrFailedPrecondition.
type MissingExporterError struct {
	// Type is the exporter component type, e.g. "pushgateway".
	Type string
	// Field is the request field that selected it.
	Field string
}

func (e *MissingExporterError) Error() string {
	return fmt.Sprintf("exporter type %q is not compiled into this collector; add it to the distribution "+
		"(builder-config.yaml) or choose another provider type", e.Type)
}

// Unwrap makes errors.Is(err, ErrFailedPrecondition) hold.
func (e *MissingExporterError) Unwrap() error { return ErrFailedPrecondition }

// issue builds a refusing validation issue.
func issue(field, code, msg, suggestion string) *pb.ValidationIssue {
	return &pb.ValidationIssue{Field: field, Code: code, Message: msg, Suggestion: suggestion, Severity: pb.Severity_SEVERITY_ERROR}
}

// warning builds a reported-only validation issue.
func warning(field, code, msg, suggestion string) *pb.ValidationIssue {
	return &pb.ValidationIssue{Field: field, Code: code, Message: msg, Suggestion: suggestion, Severity: pb.Severity_SEVERITY_WARNING}
}

// hasErrors reports whether any issue refuses the request.
func hasErrors(issues []*pb.ValidationIssue) bool {
	for _, iss := range issues {
		if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
			return true
		}
	}
	return false
}

// splitIssues returns the errors and the warnings.
func splitIssues(issues []*pb.ValidationIssue) (errs, warns []*pb.ValidationIssue) {
	for _, iss := range issues {
		if iss.GetSeverity() == pb.Severity_SEVERITY_ERROR {
			errs = append(errs, iss)
		} else {
			warns = append(warns, iss)
		}
	}
	return errs, warns
}

// oneLine folds a multi-line error text (confmap's) into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
