package metricsservicereceiver

import (
	"context"
	"net/url"
	"sync"
	"time"

	promrules "github.com/prometheus/prometheus/rules"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/rules"
)

// leaderRules evaluates the rules only while this node leads the fleet's
// rule evaluation (rules.run_on: leader): the rules are loaded on every
// node (the Prometheus API lists them), started when this node is elected
// and stopped when it is not any more. A stopped rules engine cannot run
// again, so each term gets a fresh one. It answers the Prometheus API's rule
// endpoints from the current engine.
type leaderRules struct {
	newEngine func() (*rules.Engine, error)
	log       *zap.Logger

	mu      sync.Mutex
	cur     *rules.Engine // loaded; nil when a reload for a new term failed
	used    bool          // cur was started (and so cannot start again)
	running bool
	closed  bool
}

// lead evaluates the rules until ctx ends (election work).
func (l *leaderRules) lead(ctx context.Context) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if l.cur == nil || l.used {
		next, err := l.newEngine()
		if err != nil {
			l.mu.Unlock()
			l.log.Error("This node leads rule evaluation but cannot load the rules; it evaluates nothing this term", zap.Error(err))
			<-ctx.Done()
			return
		}
		l.cur = next
	}
	eng := l.cur
	l.used, l.running = true, true
	eng.Start()
	l.mu.Unlock()
	l.log.Info("This node leads rule evaluation: evaluating the rules and sending alerts")
	<-ctx.Done()
	eng.Stop()
	l.mu.Lock()
	l.running = false
	l.mu.Unlock()
	l.log.Info("This node stopped evaluating the rules (leadership ended)")
}

// evaluating reports whether this node evaluates the rules now.
func (l *leaderRules) evaluating() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running
}

// close stops the current engine (after the election stopped).
func (l *leaderRules) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.cur != nil {
		l.cur.Stop()
	}
}

func (l *leaderRules) engine() *rules.Engine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// RuleGroups implements promapi.RuleSource.
func (l *leaderRules) RuleGroups() []*promrules.Group {
	if e := l.engine(); e != nil {
		return e.RuleGroups()
	}
	return nil
}

// AlertingRules implements promapi.RuleSource.
func (l *leaderRules) AlertingRules() []*promrules.AlertingRule {
	if e := l.engine(); e != nil {
		return e.AlertingRules()
	}
	return nil
}

// Alertmanagers implements promapi.RuleSource.
func (l *leaderRules) Alertmanagers() (active, dropped []*url.URL) {
	if e := l.engine(); e != nil {
		return e.Alertmanagers()
	}
	return nil, nil
}

// LastLoad implements promapi.RuleSource.
func (l *leaderRules) LastLoad() (time.Time, []string, error) {
	if e := l.engine(); e != nil {
		return e.LastLoad()
	}
	return time.Time{}, nil, nil
}
