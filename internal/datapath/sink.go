package datapath

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
)

// Staged is a pending change for one batch.
type Staged interface {
	// Commit applies the change after the pipeline accepted the batch.
	Commit() error
	// Rollback discards it after the pipeline refused the batch.
	Rollback()
}

// Sink keeps batches in the store and hands them to the stream hub.
type Sink struct {
	store  *store.Store
	hub    *stream.Hub
	shared *sharedstore.Writer // nil: no shared store
}

// NewSink returns a sink over an open store and a started hub.
func NewSink(st *store.Store, hub *stream.Hub) *Sink {
	return &Sink{store: st, hub: hub}
}

// Store returns the store the sink writes (reads, admin).
func (s *Sink) Store() *store.Store { return s.store }

// SetShared makes Stage write every batch to the fleet's shared store; call
// it before the sink is used.
func (s *Sink) SetShared(w *sharedstore.Writer) { s.shared = w }

// Shared returns the shared store's writer; nil when there is none.
func (s *Sink) Shared() *sharedstore.Writer { return s.shared }

// Hub returns the stream hub the sink feeds.
func (s *Sink) Hub() *stream.Hub { return s.hub }

// Stage stages md in the store and the hub. md is only read. A store refusal
// (a point it would not keep) is returned as is (a *store.RefusedError) and
// nothing is staged. With a shared store, the batch the store accepted is
// written to the backend before Stage returns; a backend that does not
// accept it fails Stage with a *sharedstore.WriteError and nothing is
// staged (the backend keeps what it accepted: a sender's retry writes the
// same running totals again, which changes no total).
func (s *Sink) Stage(ctx context.Context, md pmetric.Metrics) (Staged, error) {
	if s.shared == nil {
		txn, err := s.store.Stage(ctx, md)
		if err != nil {
			return nil, err
		}
		return &staged{txn: txn, hub: s.hub.Stage(md)}, nil
	}
	b := s.shared.NewBatch()
	txn, err := s.store.StageTo(ctx, md, b)
	if err != nil {
		return nil, err
	}
	// not cut short by the caller's cancellation: a write the backend may
	// have kept is answered (shared.timeout bounds it)
	if err := s.shared.Write(context.WithoutCancel(ctx), b); err != nil {
		txn.Rollback()
		return nil, err
	}
	return &staged{txn: txn, hub: s.hub.Stage(md)}, nil
}

// staged is one batch staged in the store and the hub.
type staged struct {
	txn *store.Txn
	hub *stream.Staged // nil: no subscription selected anything
}

// Commit makes the batch readable, then streams it: a subscriber never sees
// a point that a read right after could not find.
func (s *staged) Commit() error {
	var errs []error
	if err := s.txn.Commit(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	if s.hub != nil {
		if err := s.hub.Commit(); err != nil {
			errs = append(errs, fmt.Errorf("stream: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Rollback discards the batch from the store and the hub.
func (s *staged) Rollback() {
	s.txn.Rollback()
	if s.hub != nil {
		s.hub.Rollback()
	}
}

// Provider is implemented by the extension that owns a Sink.
type Provider interface {
	// Sink returns the sink; nil before the extension started.
	Sink() *Sink
}
