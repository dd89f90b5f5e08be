package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/service/hostcapabilities"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// built is an exporter config made from a provider config.
type built struct {
	factory      exporter.Factory
	cfg          component.Config
	exporterType component.Type
	// concurrency is the default of limits.concurrency for this exporter type.
	defaultConcurrency int
	warnings           []*pb.ValidationIssue
}

// buildConfig finds the exporter factory through the host and builds the
// exporter config: CreateDefaultConfig, then the provider's settings through
// confmap (unknown keys are errors), then confmap.Validate. Refusals are
// field-level issues in a *ValidationError; a missing factory is a
// *MissingExporterError.
func buildConfig(factories hostcapabilities.ComponentFactory, pc *pb.ProviderConfig) (*built, error) {
	p := planExporter(pc)
	if p == nil {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("config.type", "invalid_value", "unknown provider type", "")}}
	}
	typ, err := component.NewType(p.exporterType)
	if err != nil {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue(p.typeField, "invalid_format", err.Error(), "")}}
	}
	if factories == nil {
		return nil, fmt.Errorf("%w: the host does not expose component factories", ErrFailedPrecondition)
	}
	f, _ := factories.GetFactory(component.KindExporter, typ).(exporter.Factory)
	if f == nil {
		return nil, &MissingExporterError{Type: p.exporterType, Field: p.typeField}
	}
	if f.MetricsStability() == component.StabilityLevelUndefined {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue(p.typeField, "unsupported_signal",
			fmt.Sprintf("exporter type %q does not export metrics", p.exporterType), "choose a metrics exporter")}}
	}
	b := &built{factory: f, exporterType: typ, defaultConcurrency: p.defaultConcurrency}
	b.warnings = append(b.warnings, p.warnings...)

	var issues []*pb.ValidationIssue
	conf := map[string]any{}
	field := p.typeField
	if p.raw != nil {
		field = "config.settings.custom.config"
		conf = maps.Clone(p.raw)
	}
	// Settings every provider gets, where the exporter type has them: the
	// provider queues, counts and drains itself, so the exporter's own queue
	// is off and each export returns its result; the retry policy.
	var helpers []assignment
	if _, set := conf["sending_queue"]; !set {
		helpers = append(helpers, assignment{key: "sending_queue::enabled", value: false, optional: true})
	}
	if r := pc.GetRetry(); r != nil {
		if _, set := conf["retry_on_failure"]; !set {
			helpers = append(helpers, retryAssignments(r)...)
		}
	}
	for _, a := range append(p.assigns, helpers...) {
		probe := map[string]any{}
		setPath(probe, a.key, a.value)
		if err := confmap.NewFromStringMap(probe).Unmarshal(f.CreateDefaultConfig()); err != nil {
			switch {
			case a.optional && a.field != "":
				b.warnings = append(b.warnings, warning(a.field, "unsupported_setting",
					fmt.Sprintf("the %s exporter has no setting %q; ignored", p.exporterType, a.key), ""))
			case a.optional:
			default:
				issues = append(issues, issue(a.field, "invalid_value", fmt.Sprintf("%s exporter setting %q: %s", p.exporterType, a.key, oneLine(err.Error())), ""))
			}
			continue
		}
		setPath(conf, a.key, a.value)
	}
	if len(issues) > 0 {
		return nil, &ValidationError{Issues: append(issues, b.warnings...)}
	}
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(conf).Unmarshal(cfg); err != nil {
		return nil, &ValidationError{Issues: append([]*pb.ValidationIssue{issue(field, "invalid_config",
			fmt.Sprintf("%s exporter config: %s", p.exporterType, oneLine(err.Error())), "only the exporter's documented keys are accepted")}, b.warnings...)}
	}
	if err := confmap.Validate(cfg); err != nil {
		return nil, &ValidationError{Issues: append([]*pb.ValidationIssue{issue(field, "invalid_config",
			fmt.Sprintf("%s exporter config: %s", p.exporterType, oneLine(err.Error())), "")}, b.warnings...)}
	}
	b.cfg = cfg
	return b, nil
}

func retryAssignments(r *pb.RetryPolicy) []assignment {
	const f = "config.retry"
	out := []assignment{{key: "retry_on_failure::enabled", value: r.GetEnabled(), field: f, optional: true}}
	if d := r.GetInitialInterval(); d != nil {
		out = append(out, assignment{key: "retry_on_failure::initial_interval", value: d.AsDuration().String(), field: f + ".initial_interval", optional: true})
	}
	if d := r.GetMaxInterval(); d != nil {
		out = append(out, assignment{key: "retry_on_failure::max_interval", value: d.AsDuration().String(), field: f + ".max_interval", optional: true})
	}
	if d := r.GetMaxElapsedTime(); d != nil {
		out = append(out, assignment{key: "retry_on_failure::max_elapsed_time", value: d.AsDuration().String(), field: f + ".max_elapsed_time", optional: true})
	}
	return out
}

// exporterID is the component ID of a provider's exporter: the exporter type
// with the name "providers/<provider_id>/g<generation>/v<version>". The
// generation makes the IDs (and so the exporter's internal telemetry) of a
// provider deleted and created again distinct.
func exporterID(typ component.Type, providerID string, generation, version uint64) component.ID {
	return component.NewIDWithName(typ, fmt.Sprintf("providers/%s/g%d/v%d", providerID, generation, version))
}

// createExporter creates (does not start) the exporter of b. onRetry, when
// set, is called with the error of each export attempt the exporter's
// retry_on_failure is about to retry.
func createExporter(ctx context.Context, set Settings, b *built, id component.ID, providerID string, scrub *scrubber, onRetry func(error)) (exporter.Metrics, error) {
	ts := set.TelemetrySettings
	ts.Logger = scrubLogger(ts.Logger, scrub).With(zap.String("provider_id", providerID), zap.String("exporter", id.String())).
		WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return exporterLogCore{Core: c, onRetry: onRetry} }))
	exp, err := b.factory.CreateMetrics(ctx, exporter.Settings{ID: id, TelemetrySettings: ts, BuildInfo: set.BuildInfo}, b.cfg)
	if err != nil {
		return nil, scrub.err(fmt.Errorf("create %s exporter: %w", b.exporterType, err))
	}
	return exp, nil
}

// scrubEvent returns ev with its error scrubbed of the provider's secrets.
func scrubEvent(ev *componentstatus.Event, s *scrubber) *componentstatus.Event {
	if s == nil || ev.Err() == nil {
		return ev
	}
	err := s.err(ev.Err())
	switch ev.Status() {
	case componentstatus.StatusRecoverableError:
		return componentstatus.NewRecoverableErrorEvent(err)
	case componentstatus.StatusPermanentError:
		return componentstatus.NewPermanentErrorEvent(err)
	case componentstatus.StatusFatalError:
		return componentstatus.NewFatalErrorEvent(err)
	}
	return ev
}

// childHost is the host of a runtime exporter: the collector's host (so
// storage and auth extension IDs resolve, and factories are found), with the
// exporter's component status captured into the provider's health, since the
// exporter is outside the service graph.
type childHost struct {
	component.Host
	report func(*componentstatus.Event)
}

var (
	_ componentstatus.Reporter          = (*childHost)(nil)
	_ hostcapabilities.ComponentFactory = (*childHost)(nil)
)

// Report receives the exporter's status events.
func (h *childHost) Report(ev *componentstatus.Event) {
	if h.report != nil {
		h.report(ev)
	}
}

// GetFactory forwards to the collector's host.
func (h *childHost) GetFactory(kind component.Kind, typ component.Type) component.Factory {
	if cf, ok := h.Host.(hostcapabilities.ComponentFactory); ok {
		return cf.GetFactory(kind, typ)
	}
	return nil
}

// exporterLogCore is the log core of a provider's exporter. It logs
// exporterhelper's per-batch "Exporting failed. Rejecting data. Try enabling
// sending_queue" at debug level: a provider's exporter runs without its
// queue on purpose (the provider queues), and every failure is counted in
// the provider's stats and health, whose transitions are logged.
//
// It also observes exporterhelper's "Exporting failed. Will retry the
// request after interval." (retry_sender.go, logged with the attempt's error
// before each back-off, whatever the log level): exporterhelper neither
// returns nor reports (componentstatus) a failed attempt while it retries,
// so this entry is the only place where a failing destination shows before
// the retries are exhausted (max_elapsed_time, 5 minutes by default).
type exporterLogCore struct {
	zapcore.Core
	onRetry func(error)
}

const (
	rejectionMessage = "Exporting failed. Rejecting data"
	retryMessage     = "Exporting failed. Will retry"
)

// Enabled implements zapcore.Core: Info entries are checked even when the
// collector logs at a higher level, so that retries are observed.
func (c exporterLogCore) Enabled(l zapcore.Level) bool {
	return c.Core.Enabled(l) || (c.onRetry != nil && l == zapcore.InfoLevel)
}

// Check implements zapcore.Core.
func (c exporterLogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.onRetry != nil && strings.HasPrefix(e.Message, retryMessage) {
		ce = ce.AddCore(e, retryObserver(c.onRetry))
	}
	if e.Level > zapcore.DebugLevel && strings.HasPrefix(e.Message, rejectionMessage) {
		e.Level = zapcore.DebugLevel
	}
	return c.Core.Check(e, ce)
}

// With implements zapcore.Core.
func (c exporterLogCore) With(fields []zapcore.Field) zapcore.Core {
	return exporterLogCore{Core: c.Core.With(fields), onRetry: c.onRetry}
}

// retryObserver is a core that hands the error field of a retry entry to a
// function; it is added to the entry only by exporterLogCore.Check.
type retryObserver func(error)

func (retryObserver) Enabled(zapcore.Level) bool          { return true }
func (r retryObserver) With([]zapcore.Field) zapcore.Core { return r }
func (retryObserver) Sync() error                         { return nil }
func (r retryObserver) Check(_ zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce
}

func (r retryObserver) Write(e zapcore.Entry, fields []zapcore.Field) error {
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Type == zapcore.ErrorType {
			r(err)
			return nil
		}
	}
	r(errors.New(e.Message))
	return nil
}
