package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	promrules "github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"go.uber.org/zap"
)

// QueryFunc runs an instant query (the receiver's governed engine).
type QueryFunc = promrules.QueryFunc

// Deps are what the engine evaluates over and writes to.
type Deps struct {
	// Query evaluates rule expressions.
	Query QueryFunc
	// Queryable reads ALERTS_FOR_STATE to restore alerts after a restart.
	Queryable storage.Queryable
	// Sink returns where rule output is staged (the metrics_store
	// extension's datapath.Sink); nil while the store is closed.
	Sink func() Stager
	// Logger logs loads, reloads and notifier errors.
	Logger *zap.Logger
	// Slog is the same logger for Prometheus' packages.
	Slog *slog.Logger
	// Registerer takes the rule manager's and notifier's metrics; nil: a
	// private registry.
	Registerer prometheus.Registerer
}

// Engine evaluates Prometheus rule files over the store with Prometheus'
// rules manager, writes recording rule output (and ALERTS) through the
// data path, and sends alerts to Alertmanagers with Prometheus' notifier.
type Engine struct {
	cfg    Config
	deps   Deps
	mgr    *promrules.Manager
	notif  *notifier.Manager
	amSets chan map[string][]*targetgroup.Group

	mu     sync.Mutex // one reload at a time: files, stamps
	files  []string
	stamps map[string]fileStamp

	statusMu sync.Mutex // apart from mu: a reload may wait for an evaluation
	status   ReloadStatus

	stop    chan struct{}
	cancel  context.CancelFunc // ends in-flight rule queries on Stop
	wg      sync.WaitGroup
	once    sync.Once
	started bool
}

// ReloadStatus is the outcome of the last load of the rule files.
type ReloadStatus struct {
	// Time is when the files were last loaded or checked after a change.
	Time time.Time
	// Files are the files of the rules in force.
	Files []string
	// Err is the last reload's refusal (the previous rules stay in force);
	// nil after a good load.
	Err error
}

// New expands the globs and checks every rule file. A bad file is refused
// with a *FileError naming the file, the line and the fix; nothing runs.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Slog == nil {
		deps.Slog = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	files, err := expand(cfg.Files)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(files); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, deps: deps, files: files, stop: make(chan struct{})}
	e.stamps = stampFiles(files)
	if len(cfg.Alertmanagers) > 0 {
		e.notif = notifier.NewManager(&notifier.Options{
			QueueCapacity: cfg.NotificationQueueCapacity,
			Registerer:    deps.Registerer,
		}, model.UTF8Validation, deps.Slog.With("component", "notifier"))
		amCfg, groups, err := alertmanagerConfig(cfg)
		if err != nil {
			return nil, err
		}
		if err := e.notif.ApplyConfig(amCfg); err != nil {
			return nil, fmt.Errorf("alertmanagers: %w", err)
		}
		e.amSets = make(chan map[string][]*targetgroup.Group, 1)
		e.amSets <- groups
	}
	var notify promrules.NotifyFunc = func(context.Context, string, ...*promrules.Alert) {}
	if e.notif != nil {
		notify = promrules.SendAlerts(e.notif, cfg.ExternalURL)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.mgr = promrules.NewManager(&promrules.ManagerOptions{
		NameValidationScheme: model.UTF8Validation,
		QueryFunc:            deps.Query,
		NotifyFunc:           notify,
		Context:              ctx,
		AppendableV2:         sinkAppendable{sink: deps.Sink},
		Queryable:            deps.Queryable,
		Logger:               deps.Slog.With("component", "rules"),
		Registerer:           deps.Registerer,
		OutageTolerance:      cfg.OutageTolerance,
		ForGracePeriod:       cfg.ForGracePeriod,
		ResendDelay:          cfg.ResendDelay,
	})
	if err := e.update(files); err != nil {
		cancel()
		return nil, err
	}
	return e, nil
}

// alertmanagerConfig builds one static Alertmanager config per URL (each
// may have its own scheme and path prefix) and the target groups the
// notifier would get from service discovery.
func alertmanagerConfig(cfg Config) (*promconfig.Config, map[string][]*targetgroup.Group, error) {
	out := &promconfig.Config{}
	out.GlobalConfig.ExternalLabels = labels.FromMap(cfg.ExternalLabels)
	groups := map[string][]*targetgroup.Group{}
	for i, s := range cfg.Alertmanagers {
		u, err := alertmanagerURL(s)
		if err != nil {
			return nil, nil, fmt.Errorf("alertmanagers[%d]: %w", i, err)
		}
		amc := promconfig.DefaultAlertmanagerConfig
		amc.Scheme = u.Scheme
		amc.PathPrefix = strings.TrimSuffix(u.Path, "/")
		amc.Timeout = model.Duration(cfg.AlertmanagerTimeout)
		amc.HTTPClientConfig = commoncfg.DefaultHTTPClientConfig
		out.AlertingConfig.AlertmanagerConfigs = append(out.AlertingConfig.AlertmanagerConfigs, &amc)
		groups[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
			Source:  s,
		}}
	}
	return out, groups, nil
}

// update hands files to the rules manager (which keeps its previous rules
// if they do not load: checkFiles ran before).
func (e *Engine) update(files []string) error {
	if err := e.mgr.Update(e.cfg.EvaluationInterval, files, labels.FromMap(e.cfg.ExternalLabels), e.cfg.ExternalURL, nil); err != nil {
		return fmt.Errorf("rules.files: %w", err)
	}
	e.statusMu.Lock()
	e.status = ReloadStatus{Time: time.Now(), Files: files}
	e.statusMu.Unlock()
	return nil
}

// Start runs the rule groups, the notifier and the reload loop.
func (e *Engine) Start() {
	e.mu.Lock()
	e.started = true
	files := e.files
	e.mu.Unlock()
	e.wg.Go(e.mgr.Run)
	if e.notif != nil {
		e.wg.Go(func() { e.notif.Run(e.amSets) })
	}
	if e.cfg.ReloadInterval > 0 {
		e.wg.Go(e.reloadLoop)
	}
	e.deps.Logger.Info("Evaluating rules",
		zap.Strings("files", files), zap.Int("groups", len(e.mgr.RuleGroups())),
		zap.Duration("evaluation_interval", e.cfg.EvaluationInterval), zap.Strings("alertmanagers", e.cfg.Alertmanagers))
}

// Stop ends evaluation and notification and waits for them. It is
// idempotent and safe without Start.
func (e *Engine) Stop() {
	e.once.Do(func() {
		e.mu.Lock()
		if !e.started {
			// the loaded groups wait for Run before they can stop
			e.wg.Go(e.mgr.Run)
		}
		e.mu.Unlock()
		close(e.stop)
		e.cancel() // a rule query in flight ends now, not at query.timeout
		e.mgr.Stop()
		if e.notif != nil {
			e.notif.Stop()
		}
		e.wg.Wait()
	})
}

func (e *Engine) reloadLoop() {
	t := time.NewTicker(e.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			_, _ = e.Reload()
		}
	}
}

// Reload expands the globs again and, if a file was added, removed or
// changed, checks and loads them. A bad file keeps the rules in force:
// the refusal is logged and returned, and ReloadStatus reports it. It
// reports whether the rules changed.
func (e *Engine) Reload() (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	files, err := expand(e.cfg.Files)
	if err == nil {
		stamps := stampFiles(files)
		if sameStamps(stamps, e.stamps) {
			return false, nil
		}
		e.stamps = stamps
		if err = checkFiles(files); err == nil {
			if err = e.update(files); err == nil {
				e.files = files
				e.deps.Logger.Info("Reloaded rule files", zap.Strings("files", files), zap.Int("groups", len(e.mgr.RuleGroups())))
				return true, nil
			}
		}
	}
	e.statusMu.Lock()
	e.status.Time, e.status.Err = time.Now(), err
	e.statusMu.Unlock()
	e.deps.Logger.Error("Rule files not reloaded; the previous rules stay in force", zap.Error(err))
	return false, err
}

// Status returns the outcome of the last load.
func (e *Engine) Status() ReloadStatus {
	e.statusMu.Lock()
	defer e.statusMu.Unlock()
	s := e.status
	s.Files = append([]string(nil), s.Files...)
	return s
}

// LastLoad is Status for the Prometheus API: when, which files, and the
// last reload's refusal.
func (e *Engine) LastLoad() (time.Time, []string, error) {
	s := e.Status()
	return s.Time, s.Files, s.Err
}

// RuleGroups returns the groups in force, ordered by file and position.
func (e *Engine) RuleGroups() []*promrules.Group { return e.mgr.RuleGroups() }

// AlertingRules returns the alerting rules of every group.
func (e *Engine) AlertingRules() []*promrules.AlertingRule { return e.mgr.AlertingRules() }

// Alertmanagers returns the Alertmanagers alerts go to.
func (e *Engine) Alertmanagers() (active, dropped []*url.URL) {
	if e.notif == nil {
		return nil, nil
	}
	return e.notif.Alertmanagers(), e.notif.DroppedAlertmanagers()
}

// errNoFiles is a glob that matches no file.
var errNoFiles = errors.New("matches no file")
