package reads

// Kind classifies a refused read.
type Kind int

const (
	// KindInvalid is a request field that is wrong: the field, what is
	// wrong and how to fix it are in the *Error.
	KindInvalid Kind = iota + 1
	// KindTooLarge is a read over a configured bound (Field names the config
	// key, e.g. query.max_samples).
	KindTooLarge
)

// Error is a refused read request: the field (e.g. "page_token"), what is
// wrong with it and how to fix it.
type Error struct {
	// Kind classifies the refusal.
	Kind Kind
	// Field is the path of the refused field, or the config key of a limit.
	Field string
	// Message says what is wrong.
	Message string
	// Fix says how to correct it (may be empty).
	Fix string
}

// Error implements error: "field: message (fix: fix)".
func (e *Error) Error() string {
	if e.Fix == "" {
		return e.Field + ": " + e.Message
	}
	return e.Field + ": " + e.Message + " (fix: " + e.Fix + ")"
}

func invalid(field, fix, msg string) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: msg, Fix: fix}
}
