package metricsstoreprocessor

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

// storeProcessor stages each batch in the sink, passes it on, and commits it
// when the rest of the pipeline accepted it (rolls it back otherwise).
type storeProcessor struct {
	cfg      *Config
	settings processor.Settings
	next     consumer.Metrics
	provider datapath.Provider
}

func newProcessor(cfg *Config, set processor.Settings, next consumer.Metrics) *storeProcessor {
	return &storeProcessor{cfg: cfg, settings: set, next: next}
}

// Start finds the metrics_store extension.
func (p *storeProcessor) Start(_ context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[p.cfg.Extension]
	if !ok {
		return fmt.Errorf("extension: %q is not configured; add it under extensions and service.extensions", p.cfg.Extension)
	}
	prov, ok := ext.(datapath.Provider)
	if !ok {
		return fmt.Errorf("extension: %q is not a metrics_store extension", p.cfg.Extension)
	}
	p.provider = prov
	return nil
}

// Shutdown has nothing to release.
func (*storeProcessor) Shutdown(context.Context) error { return nil }

// Capabilities says the processor only reads the data.
func (*storeProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// ConsumeMetrics keeps md in the store and the stream hub, hands it on, and
// makes it visible once the rest of the pipeline accepted it. A batch the
// store would not keep whole (points outside its window, colliding names,
// invalid UTF-8) is refused with a permanent error: nothing of it is stored,
// streamed or passed on.
func (p *storeProcessor) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	sink := p.provider.Sink()
	if sink == nil {
		return errors.New("metrics_store: the store is not open (the collector is starting or stopping); retry")
	}
	st, err := sink.Stage(ctx, md)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("metrics_store: %w; retry", err)
		}
		var we *sharedstore.WriteError
		if errors.As(err, &we) {
			return sharedRefusal(we)
		}
		// the store refuses the batch as it is: resending it cannot help
		return consumererror.NewPermanent(refusal{err})
	}
	datapath.MarkStored(ctx)
	if err := p.next.ConsumeMetrics(ctx, md); err != nil {
		st.Rollback()
		return err
	}
	if err := st.Commit(); err != nil {
		// The rest of the pipeline has the data but the store does not: the
		// sender retries (exporters may then see the batch twice) rather
		// than hold an acknowledgement the store did not keep.
		p.settings.Logger.Error("An accepted batch could not be committed to the metrics store", zap.Error(err))
		return fmt.Errorf("metrics_store: %w", err)
	}
	return nil
}

// refusal is a batch the store would not keep. It carries INVALID_ARGUMENT
// for receivers that answer with the error's gRPC status (otlpreceiver:
// gRPC InvalidArgument, HTTP 400: the client must not resend it as is).
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }

func (r refusal) Unwrap() error { return r.err }

// GRPCStatus is the status receivers answer with.
func (r refusal) GRPCStatus() *status.Status { return status.New(codes.InvalidArgument, r.err.Error()) }

// sharedRefusal is a batch the shared store's backend did not accept:
// retryable (UNAVAILABLE: the backend is unreachable, slow or overloaded)
// or permanent (INVALID_ARGUMENT when the backend refused the data, HTTP
// 400; FAILED_PRECONDITION for any other 4xx: the endpoint, credentials or
// tenant of metrics_store shared are wrong).
func sharedRefusal(we *sharedstore.WriteError) error {
	code := codes.Unavailable
	switch {
	case we.Retryable:
		return sharedError{err: fmt.Errorf("metrics_store: %w", we), code: code}
	case we.StatusCode == http.StatusBadRequest:
		code = codes.InvalidArgument
	default:
		code = codes.FailedPrecondition
	}
	return consumererror.NewPermanent(sharedError{err: fmt.Errorf("metrics_store: %w", we), code: code})
}

// sharedError carries the gRPC status of a shared store refusal.
type sharedError struct {
	err  error
	code codes.Code
}

func (e sharedError) Error() string { return e.err.Error() }

func (e sharedError) Unwrap() error { return e.err }

// GRPCStatus is the status receivers answer with.
func (e sharedError) GRPCStatus() *status.Status { return status.New(e.code, e.err.Error()) }
