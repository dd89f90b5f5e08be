package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// Kind classifies query failures so the edges (gRPC, HTTP) can map them.
type Kind int

const (
	// KindInternal is an unexpected failure.
	KindInternal Kind = iota
	// KindBadQuery is a syntax or semantic error in the request.
	KindBadQuery
	// KindTimeout is a query that ran out of time.
	KindTimeout
	// KindCanceled is a query whose caller went away.
	KindCanceled
	// KindTooLarge is a query over the sample or series limits.
	KindTooLarge
	// KindUnavailable is a remote backend that did not answer.
	KindUnavailable
	// KindOverloaded is a query refused because every evaluation slot is
	// busy and the wait queue is full.
	KindOverloaded
	// KindExecution is a query the engine could not evaluate because of
	// what it asks (e.g. "vector cannot contain metrics with the same
	// labelset"), as Prometheus' errorType "execution".
	KindExecution
)

// Error is a classified query failure.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// LimitError is a request refused by a configured limit, before evaluation
// when the limit bounds the query's shape. It is wrapped in an *Error.
type LimitError struct {
	// Key is the config key of the limit, e.g. "query.max_subquery_steps".
	Key string
	// Value is what the request needs; Limit is the configured bound.
	Value, Limit int64
	// What says what Value counts; Fix says how to stay under the limit.
	What, Fix string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s is %d, the limit is %d; %s", e.Key, e.What, e.Value, e.Limit, e.Fix)
}

func newError(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// classify wraps an engine error with its kind.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var qe *Error
	if errors.As(err, &qe) {
		return err
	}
	var pe parser.ParseErrors
	var pe1 *parser.ParseErr
	var tooMany promql.ErrTooManySamples
	var tooManySeries promql.ErrTooManySeries
	var timeout promql.ErrQueryTimeout
	var canceled promql.ErrQueryCanceled
	var storageErr promql.ErrStorage
	switch {
	case errors.As(err, &pe), errors.As(err, &pe1):
		return &Error{Kind: KindBadQuery, Err: fmt.Errorf("PromQL %w", err)}
	case errors.As(err, &tooMany), errors.As(err, &tooManySeries):
		return &Error{Kind: KindTooLarge, Err: fmt.Errorf("%w (query.max_samples or the request's max_samples: narrow the selector or the time range, or raise the limit)", err)}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindTimeout, Err: err}
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &Error{Kind: KindCanceled, Err: err}
	case errors.As(err, &storageErr):
		return &Error{Kind: KindInternal, Err: err}
	default:
		return &Error{Kind: KindExecution, Err: err}
	}
}
