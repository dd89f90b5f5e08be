package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/definitions"
	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/reads"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
	"github.com/metricsmodule/metricsmodule/internal/summary"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// This file is the one place where the engines' typed errors become gRPC
// statuses: convert.Issue kinds, summary, definitions, registry and metricfilter
// errors, store refusals and errors of the next consumer. Handlers return
// statusOf(err) (or issuesStatus, consumerStatus) and build no status of
// their own for engine errors; read errors (reads and query) go through readsStatus,
// the stream hub's through streamStatus.

// issueCode maps a refusal kind to its gRPC code.
func issueCode(iss *convert.Issue) codes.Code {
	switch iss.Kind {
	case convert.KindResourceExhausted:
		return codes.ResourceExhausted
	case convert.KindOutOfRange:
		return codes.OutOfRange
	default:
		return codes.InvalidArgument
	}
}

// summaryCodes maps summary.Kind to gRPC codes.
var summaryCodes = map[summary.Kind]codes.Code{
	summary.KindInvalid:     codes.InvalidArgument,
	summary.KindUnavailable: codes.Unavailable,
}

// definitionsCodes maps definitions.Kind to gRPC codes.
var definitionsCodes = map[definitions.Kind]codes.Code{
	definitions.KindInvalid:            codes.InvalidArgument,
	definitions.KindNotFound:           codes.NotFound,
	definitions.KindAlreadyExists:      codes.AlreadyExists,
	definitions.KindFailedPrecondition: codes.FailedPrecondition,
	definitions.KindDataLoss:           codes.DataLoss,
	definitions.KindInternal:           codes.Internal,
}

// statusOf maps an engine error to a gRPC status. A status passes
// unchanged; an error of no known type is INTERNAL.
func statusOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var (
		cfl  *registry.ConflictError
		fe   *metricfilter.Error
		se   *summary.Error
		be   *definitions.Error
		inv  *registry.InvalidError
		iss  *convert.Issue
		refd *store.RefusedError
	)
	switch {
	case errors.As(err, &cfl):
		// definitions on etcd: another node changed the metric first
		return status.Error(codes.Aborted, cfl.Error())
	case errors.Is(err, registry.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, fe.Error())
	case errors.As(err, &se):
		return status.Error(codeOr(summaryCodes, se.Kind), se.Error())
	case errors.As(err, &be):
		return status.Error(codeOr(definitionsCodes, be.Kind), be.Error())
	case errors.As(err, &inv):
		return registryInvalidStatus(inv)
	case errors.Is(err, registry.ErrBreaking):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, registry.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.As(err, &iss):
		return issuesStatus([]*convert.Issue{iss})
	case errors.As(err, &refd):
		return storeRefusalStatus(refd)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func codeOr[K comparable](m map[K]codes.Code, k K) codes.Code {
	if c, ok := m[k]; ok {
		return c
	}
	return codes.Internal
}

// registryInvalidStatus is an invalid definition: INVALID_ARGUMENT naming
// the first field and its fix, every issue as a BadRequest violation.
func registryInvalidStatus(inv *registry.InvalidError) error {
	st := status.New(codes.InvalidArgument, inv.Error()+" (fix: "+inv.Issues[0].Suggestion+")")
	br := &errdetails.BadRequest{}
	for _, iss := range inv.Issues {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: iss.Field, Description: iss.Message, Reason: iss.Code})
	}
	if d, derr := st.WithDetails(br); derr == nil {
		st = d
	}
	return st.Err()
}

// errNoStore is the answer of a method that reads the store when there is
// no metrics_store extension.
func errNoStore(method string) error {
	return status.Errorf(codes.FailedPrecondition,
		"%s: needs the metrics_store extension: add it (and the metrics_store processor to the pipelines) to the collector config", method)
}

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
	st := status.New(issueCode(first), msg)
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

// errNoReads is the answer of read methods when neither the store nor a
// remote backend is configured.
func errNoReads(method string) error {
	return status.Errorf(codes.FailedPrecondition,
		"%s: reads are disabled: add the store block (or query.remote.endpoint) to the metrics_service receiver config", method)
}

// readsStatus maps a failed read to a gRPC status, in one place: a refused
// field is INVALID_ARGUMENT, a read over a configured bound
// RESOURCE_EXHAUSTED; query failures by their kind (a timeout
// DEADLINE_EXCEEDED, a busy engine RESOURCE_EXHAUSTED, a remote backend
// that did not answer UNAVAILABLE, a query the engine cannot evaluate
// INVALID_ARGUMENT); anything else INTERNAL.
func readsStatus(err error) error {
	var re *reads.Error
	if errors.As(err, &re) {
		if re.Kind == reads.KindTooLarge {
			return status.Error(codes.ResourceExhausted, re.Error())
		}
		return status.Error(codes.InvalidArgument, re.Error())
	}
	var qe *query.Error
	if !errors.As(err, &qe) {
		return status.Error(codes.Internal, err.Error())
	}
	switch qe.Kind {
	case query.KindBadQuery, query.KindExecution:
		return status.Error(codes.InvalidArgument, qe.Error())
	case query.KindTimeout:
		return status.Error(codes.DeadlineExceeded, qe.Error())
	case query.KindCanceled:
		return status.Error(codes.Canceled, qe.Error())
	case query.KindTooLarge, query.KindOverloaded:
		return status.Error(codes.ResourceExhausted, qe.Error())
	case query.KindUnavailable:
		return status.Error(codes.Unavailable, qe.Error())
	default:
		return status.Error(codes.Internal, qe.Error())
	}
}

// errorDomain is the domain of the ErrorInfo details of stream errors.
const errorDomain = "metricsmodule.v1.MetricsService"

// streamStatus maps the hub's errors to gRPC statuses.
func streamStatus(err error) error {
	if err == nil {
		return nil
	}
	var loss *stream.DataLossError
	switch {
	case errors.As(err, &loss):
		st := status.New(codes.DataLoss, loss.Error())
		reason := "REPLAY_LOG_OUTRUN"
		md := map[string]string{
			"subscription_id": loss.SubscriptionID,
			"first_missing":   strconv.FormatUint(loss.From, 10),
		}
		if loss.Unknown {
			reason = "SUBSCRIPTION_UNKNOWN"
		} else {
			md["last_missing"] = strconv.FormatUint(loss.To, 10)
		}
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: md}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, stream.ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, strings.TrimPrefix(err.Error(), stream.ErrInvalidRequest.Error()+": "))
	case errors.Is(err, stream.ErrTooManySubscribers):
		return status.Error(codes.ResourceExhausted, err.Error()+"; retry later")
	case errors.Is(err, stream.ErrSubscriptionMismatch):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, stream.ErrResumeAhead):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, stream.ErrTakenOver):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, stream.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, stream.ErrClosed):
		return status.Error(codes.Unavailable, "the receiver is shutting down; reconnect (with resume_after_sequence to resume)")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}
