package stream

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed ends streams when the hub shuts down.
	ErrClosed = errors.New("the stream hub is shutting down")
	// ErrInvalidRequest wraps a refused request; the message names the field.
	ErrInvalidRequest = errors.New("invalid stream request")
	// ErrTooManySubscribers refuses a subscription over Config.MaxSubscribers.
	ErrTooManySubscribers = errors.New("too many subscriptions")
	// ErrTakenOver ends a stream whose subscription a newer stream took over.
	ErrTakenOver = errors.New("the subscription was taken over by a newer stream")
	// ErrSubscriptionMismatch refuses a stream that names an existing
	// subscription with another filter or quality of service.
	ErrSubscriptionMismatch = errors.New("the subscription exists with another filter or quality of service")
	// ErrResumeAhead refuses a resume after a sequence the subscription has
	// not produced.
	ErrResumeAhead = errors.New("resume_after_sequence is ahead of the subscription")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// DataLossError says that batches a stream should deliver are gone: the
// replay log no longer holds them (it was outrun, or it expired with its
// subscription).
type DataLossError struct {
	// SubscriptionID names the subscription.
	SubscriptionID string
	// From is the first missing sequence.
	From uint64
	// To is the last missing sequence; 0 when unknown (the subscription is
	// gone).
	To uint64
	// Unknown is set when the subscription itself is gone.
	Unknown bool
	// Cluster is set in cluster mode: the range is of the JetStream
	// stream's sequences, gone past its retention.
	Cluster bool
}

func (e *DataLossError) Error() string {
	if e.Cluster {
		return fmt.Sprintf("subscription %q: batches %d..%d are no longer in the cluster log (the JetStream stream discarded them past stream.cluster.nats.max_bytes or max_age); resume after sequence %d to continue with the oldest batch the stream holds",
			e.SubscriptionID, e.From, e.To, e.To)
	}
	if e.Unknown {
		return fmt.Sprintf("subscription %q is unknown (it expired after replay.idle_ttl without a stream, or the server restarted without a replay directory): batches from sequence %d on are lost; open the subscription again without resume_after_sequence",
			e.SubscriptionID, e.From)
	}
	return fmt.Sprintf("subscription %q: batches %d..%d are no longer in the replay log (the stream fell behind its replay.max_bytes or replay.max_age); resume after sequence %d to continue with the oldest batch the log holds",
		e.SubscriptionID, e.From, e.To, e.To)
}
