package metricsclient

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// FieldViolation is one refused field of a server error (from its
// google.rpc.BadRequest details, or a PreconditionFailure).
type FieldViolation struct {
	// Field is the path of the field, e.g. `metrics[3].labels["path"]`.
	Field string
	// Description says what is wrong (and often the fix).
	Description string
	// Reason is the server's rule name, e.g. "invalid_metric_name".
	Reason string
}

// Violations returns the field violations carried by a gRPC status error.
func Violations(err error) []FieldViolation {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	var out []FieldViolation
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.FieldViolations {
				out = append(out, FieldViolation{Field: v.Field, Description: v.Description, Reason: v.Reason})
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.Violations {
				out = append(out, FieldViolation{Field: v.Subject, Description: v.Description, Reason: v.Type})
			}
		}
	}
	return out
}

// Explain renders a server error for a person: the code, the message (which
// names the field and the fix), then each field violation and ErrorInfo of
// its details on a line of its own.
func Explain(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", st.Code(), st.Message())
	for _, v := range Violations(err) {
		fmt.Fprintf(&b, "\n  field %s: %s", v.Field, v.Description)
		if v.Reason != "" {
			fmt.Fprintf(&b, " [%s]", v.Reason)
		}
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			fmt.Fprintf(&b, "\n  reason %s", info.Reason)
			for _, k := range slices.Sorted(maps.Keys(info.Metadata)) {
				fmt.Fprintf(&b, " %s=%s", k, info.Metadata[k])
			}
		}
	}
	return b.String()
}
