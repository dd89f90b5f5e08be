package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql"

	"github.com/metricsmodule/metricsmodule/internal/promapi"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/rules"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

// startRules loads the rule files (refusing the start on a bad one) and
// starts evaluating them over the store through the query engine.
func (r *metricsReceiver) startRules() error {
	if !r.cfg.Rules.Enabled() {
		return nil
	}
	if r.store == nil || r.sink == nil {
		return errors.New("rules.files: rules need the metrics_store extension (their output is stored there); add it, or remove rules.files")
	}
	if r.sink.Shared() != nil && r.cfg.Rules.RunOn != rules.RunOnLeader {
		// every node's engine answers from the fleet's backend: each would
		// write the fleet's results again under its own collector_instance
		return errors.New("rules.run_on: with a shared store (metrics_store shared) every node evaluates the rules over the whole fleet's data, so each node would store the same results again; set rules.run_on: leader (with definitions.backend: etcd) so one elected node evaluates them")
	}
	sink := r.sink
	newEngine := func() (*rules.Engine, error) {
		return rules.New(r.cfg.Rules, rules.Deps{
			Query:     r.ruleQuery,
			Queryable: r.store.Queryable(),
			Sink:      func() rules.Stager { return sink },
			Logger:    r.settings.Logger.Named("rules"),
			Slog:      store.NewSlogger(r.settings.Logger.Named("rules")),
		})
	}
	eng, err := newEngine()
	if err != nil {
		return err
	}
	if r.cfg.Rules.RunOn == rules.RunOnLeader {
		// loaded here (a bad file refuses the start); evaluated while this
		// node leads (definitions_etcd.go starts the election)
		r.leaderRules = &leaderRules{newEngine: newEngine, log: r.settings.Logger.Named("rules"), cur: eng}
		return nil
	}
	r.rules = eng
	eng.Start()
	return nil
}

// ruleSource is what the Prometheus API lists rules and alerts from (nil
// without rules).
func (r *metricsReceiver) ruleSource() promapi.RuleSource {
	switch {
	case r.rules != nil:
		return r.rules
	case r.leaderRules != nil:
		return r.leaderRules
	}
	return nil
}

// ruleQuery evaluates a rule expression with the engine's limits; a scalar
// becomes a one-sample vector, as in Prometheus' EngineQueryFunc.
func (r *metricsReceiver) ruleQuery(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
	res, err := r.engine.Do(ctx, query.Request{Query: q, Instant: true, Time: t, NoCache: true})
	if err != nil {
		return nil, err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		return v, nil
	case promql.Scalar:
		return promql.Vector{promql.Sample{T: v.T, F: v.V}}, nil
	case nil:
		return promql.Vector{}, nil
	default:
		return nil, fmt.Errorf("rule expression %q is a %s; a rule needs an instant vector or a scalar", q, v.Type())
	}
}

// stopRules ends rule evaluation; safe when rules never started.
func (r *metricsReceiver) stopRules() {
	if r.rules != nil {
		r.rules.Stop()
	}
	if r.leaderRules != nil {
		r.leaderRules.close()
	}
}
