package datapath

import (
	"context"
	"sync/atomic"
)

// Mark records whether a batch reached a Sink synchronously: the
// metrics_service receiver checks it after the pipeline answered, to tell an
// operator whose pipeline stores its data only later (a batch processor
// before metrics_store) that reads may lag acknowledgements.
type Mark struct{ stored atomic.Bool }

type markKey struct{}

// WithMark returns ctx carrying a new Mark.
func WithMark(ctx context.Context) (context.Context, *Mark) {
	m := &Mark{}
	return context.WithValue(ctx, markKey{}, m), m
}

// MarkStored sets the Mark of ctx, if any.
func MarkStored(ctx context.Context) {
	if m, ok := ctx.Value(markKey{}).(*Mark); ok {
		m.stored.Store(true)
	}
}

// Stored reports whether a Sink staged the batch.
func (m *Mark) Stored() bool { return m.stored.Load() }
