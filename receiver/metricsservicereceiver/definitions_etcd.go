package metricsservicereceiver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/metricsmodule/metricsmodule/internal/election"
	"github.com/metricsmodule/metricsmodule/internal/registry"
)

// DefinitionsHealthService is the gRPC health service that says whether the
// metric definitions on etcd answer (NOT_SERVING while etcd does not: checks
// use the last known definitions, changes are refused).
const DefinitionsHealthService = "metricsmodule.v1.MetricDefinitions"

// definitionsFleet is the etcd side of definitions.backend: etcd: the
// client, and the election of the node that runs the scheduled deletions.
type definitionsFleet struct {
	cli     *clientv3.Client
	elector *election.Elector
	// rulesElector elects the node that evaluates the rules
	// (rules.run_on: leader; nil otherwise).
	rulesElector *election.Elector
	log          *zap.Logger

	unregister metric.Registration

	mu     sync.Mutex
	host   component.Host
	health *health.Server
	last   *registry.Health
}

// startEtcdDefinitions opens the definitions on etcd and campaigns for the
// scheduled deletions.
func (r *metricsReceiver) startEtcdDefinitions(ctx context.Context, host component.Host) error {
	ec := r.cfg.Definitions.Etcd
	log := r.settings.Logger
	cli, err := ec.NewClient(ctx, "definitions.etcd", log)
	if err != nil {
		return err
	}
	f := &definitionsFleet{cli: cli, log: log, host: host}
	reg, err := registry.OpenEtcd(ctx, registry.EtcdOptions{
		Client: cli, Prefix: ec.EffectivePrefix(), Endpoints: ec.Endpoints,
		RequestTimeout: ec.RequestTimeout, HealthInterval: ec.HealthInterval, Logger: log,
		OnHealth: f.report,
	}, r.cfg.Definitions.Mode)
	if err != nil {
		_ = cli.Close()
		return err
	}
	r.defs.fleet = f
	r.installRegistry(reg, "etcd "+ec.EffectivePrefix()+"defs/ at "+strings.Join(ec.Endpoints, ","))
	el, err := election.Start(cli, election.Config{
		Key: ec.EffectivePrefix() + "election/definitions", Job: "scheduled definition deletions",
		TTL: ec.EffectiveLeaseTTL(), Identity: election.DefaultIdentity() + "/" + r.settings.ID.String(),
		RequestTimeout: ec.RequestTimeout,
	}, log, func(ctx context.Context) {
		// a new leader takes over what is due at once
		r.runDueDeletions(time.Now())
		<-ctx.Done()
	})
	if err != nil {
		return err // Shutdown closes the registry and the client
	}
	reg.SetFence(el.Fence)
	f.mu.Lock()
	f.elector = el
	f.mu.Unlock()
	if lr := r.leaderRules; lr != nil {
		rel, err := election.Start(cli, election.Config{
			Key: ec.EffectivePrefix() + "election/rules", Job: "rule evaluation",
			TTL: ec.EffectiveLeaseTTL(), Identity: election.DefaultIdentity() + "/" + r.settings.ID.String(),
			RequestTimeout: ec.RequestTimeout,
		}, log, lr.lead)
		if err != nil {
			return err // Shutdown resigns, closes the registry and the client
		}
		f.mu.Lock()
		f.rulesElector = rel
		f.mu.Unlock()
	}
	if mp := r.settings.MeterProvider; mp != nil {
		m := mp.Meter(meterName)
		g, err := m.Int64ObservableGauge(MetricDefinitionsLeader, metric.WithUnit("1"),
			metric.WithDescription("1 while this node leads the fleet's scheduled definition deletions (definitions.backend: etcd), else 0."))
		if err == nil {
			f.unregister, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
				v := int64(0)
				if el.Leading() {
					v = 1
				}
				o.ObserveInt64(g, v)
				return nil
			}, g)
		}
		if err != nil {
			log.Warn("Could not register the definitions leader gauge", zap.Error(err))
		}
	}
	return nil
}

// MetricDefinitionsLeader is 1 while this node leads the fleet's scheduled
// definition deletions (definitions.backend: etcd).
const MetricDefinitionsLeader = "metricsmodule_definitions_leader"

// report sets the health service and the component status from the
// definitions' health.
func (f *definitionsFleet) report(h registry.Health) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = &h
	f.applyLocked()
}

func (f *definitionsFleet) applyLocked() {
	if f.last == nil {
		return
	}
	st, ev := healthpb.HealthCheckResponse_SERVING, componentstatus.NewEvent(componentstatus.StatusOK)
	if f.last.Degraded {
		st, ev = healthpb.HealthCheckResponse_NOT_SERVING, componentstatus.NewRecoverableErrorEvent(errors.New(f.last.Detail))
	}
	if f.health != nil {
		f.health.SetServingStatus(DefinitionsHealthService, st)
	}
	if f.host != nil {
		componentstatus.ReportStatus(f.host, ev)
	}
}

// serveHealth registers the definitions' health service on the receiver's
// health server (nil f: definitions are not on etcd).
func (f *definitionsFleet) serveHealth(hs *health.Server) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health = hs
	hs.SetServingStatus(DefinitionsHealthService, healthpb.HealthCheckResponse_SERVING)
	f.applyLocked()
}

// leadership is the election's state as this node sees it (who leads).
func (f *definitionsFleet) leadership(ctx context.Context) (election.Status, bool) {
	if f == nil {
		return election.Status{}, false
	}
	f.mu.Lock()
	el := f.elector
	f.mu.Unlock()
	if el == nil {
		return election.Status{}, false
	}
	return el.Status(ctx), true
}

// stopElection resigns (another node takes the scheduled deletions over at
// once) and waits for this node's run to end.
func (f *definitionsFleet) stopElection() {
	if f == nil {
		return
	}
	f.mu.Lock()
	el, rel := f.elector, f.rulesElector
	f.host, f.health = nil, nil
	f.mu.Unlock()
	if rel != nil {
		rel.Close()
	}
	if el != nil {
		el.Close()
	}
}

// close closes the etcd client (after the registry closed).
func (f *definitionsFleet) close() error {
	if f == nil {
		return nil
	}
	var err error
	if f.unregister != nil {
		err = f.unregister.Unregister()
	}
	return errors.Join(err, f.cli.Close())
}
