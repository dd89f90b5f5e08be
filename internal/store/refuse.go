package store

import (
	"fmt"
	"strings"
	"time"
)

// Reason says why the store refuses a sample.
type Reason string

const (
	// ReasonTooOld: the sample is before the window (out-of-order window,
	// retention, head bounds).
	ReasonTooOld Reason = "too_old"
	// ReasonTooNew: the sample is after now + Config.MaxFuture.
	ReasonTooNew Reason = "too_far_ahead"
	// ReasonDuplicate: another value is already stored (or staged in the
	// same batch) at that millisecond for the series.
	ReasonDuplicate Reason = "duplicate_timestamp"
	// ReasonNameCollision: another metric name maps to the same stored name.
	ReasonNameCollision Reason = "name_collision"
	// ReasonLabelCollision: two label/attribute keys map to the same label
	// name.
	ReasonLabelCollision Reason = "label_collision"
	// ReasonInvalidUTF8: a name, unit, description, attribute key or value
	// is not valid UTF-8.
	ReasonInvalidUTF8 Reason = "invalid_utf8"
	// ReasonInvalid: the store cannot keep the point for another reason (an
	// empty metric name or attribute key, an invalid histogram).
	ReasonInvalid Reason = "invalid"
)

// RefusedError is Stage's error when any sample of the batch would not be
// kept; nothing is staged then.
type RefusedError struct {
	Reason Reason
	// Metric is the OTel metric name of the first refused point.
	Metric string
	// Field is what is wrong: "timestamp", "name", `attributes["a.b"]`,
	// `resource.attributes["k"]`, "unit", "description".
	Field string
	// Message is a full sentence: what, the allowed window (RFC 3339 both
	// ends) or the other name that collides.
	Message string
	// Fix is what the client should do (and the config key when a setting
	// widens it).
	Fix string
	// Count is how many samples of the batch were found refused for any
	// reason (at least 1; a refusal found while appending stops the checks
	// that need the TSDB, so later samples count only when outside Window).
	Count int
}

// Error implements error.
func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString("store refused ")
	if e.Count == 1 {
		b.WriteString("1 sample")
	} else {
		fmt.Fprintf(&b, "%d samples", e.Count)
	}
	fmt.Fprintf(&b, " (%s)", e.Reason)
	if e.Metric != "" {
		fmt.Fprintf(&b, ": metric %q", e.Metric)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %s", e.Field)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Fix != "" {
		b.WriteString(" Fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Window returns the oldest and newest timestamps a new sample may have now
// (inclusive); it mirrors the TSDB's own append checks:
//
//   - with out-of-order ingestion on (store.out_of_order_window > 0), a
//     sample may be up to the window behind the newest sample of the store
//     (the head's max time), or older, down to the in-order minimum valid
//     time, when it is newer than the last sample of its series (with the
//     default 1h window and 2h blocks both bounds are the same);
//   - with it off, a sample must not be older than the head's in-order
//     minimum valid time (the head max time minus half a block, and never
//     before the newest persisted block), and must be newer than the last
//     sample of its series (the appender checks that);
//   - never older than now − store.retention; on an empty store that is the
//     only lower bound;
//   - never newer than now + store.max_future.
func (s *Store) Window(now time.Time) (oldest, newest time.Time) {
	lo, hi := s.windowMillis(now)
	return time.UnixMilli(lo).UTC(), time.UnixMilli(hi).UTC()
}

func (s *Store) windowMillis(now time.Time) (oldest, newest int64) {
	oldest = now.Add(-s.cfg.Retention).UnixMilli()
	newest = now.Add(s.cfg.MaxFuture).UnixMilli()
	h := s.db.Head()
	minValid, ok := h.AppendableMinValidTime()
	if !ok {
		return oldest, newest
	}
	lo := minValid
	if ooo := s.cfg.OutOfOrderWindow.Milliseconds(); ooo > 0 {
		lo = min(lo, h.MaxTime()-ooo)
	}
	return max(oldest, lo), newest
}

// windowRefusal describes a sample at t outside [oldest, newest].
func (s *Store) windowRefusal(metric string, t, oldest, newest int64) *RefusedError {
	win := fmt.Sprintf("[%s, %s]", rfc(oldest), rfc(newest))
	if t > newest {
		return &RefusedError{
			Reason:  ReasonTooNew,
			Metric:  metric,
			Field:   "timestamp",
			Message: fmt.Sprintf("timestamp %s is more than %s ahead of the server clock; the store takes samples in %s.", rfc(t), s.cfg.MaxFuture, win),
			Fix:     fmt.Sprintf("send points not newer than %s (check the client clock), or widen store.max_future.", rfc(newest)),
		}
	}
	return &RefusedError{
		Reason:  ReasonTooOld,
		Metric:  metric,
		Field:   "timestamp",
		Message: fmt.Sprintf("timestamp %s is older than the store takes now; the store takes samples in %s.", rfc(t), win),
		Fix:     fmt.Sprintf("send points newer than %s, or widen store.out_of_order_window (store.retention bounds it); restore older data as a backup.", rfc(oldest)),
	}
}

func rfc(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
