package rules

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/goleak"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// fakeSink records the batches staged and committed.
type fakeSink struct {
	mu        sync.Mutex
	committed []pmetric.Metrics
	refuse    error
}

type fakeStaged struct {
	s  *fakeSink
	md pmetric.Metrics
}

func (f *fakeStaged) Commit() error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.committed = append(f.s.committed, f.md)
	return nil
}
func (f *fakeStaged) Rollback() {}

func (s *fakeSink) Stage(_ context.Context, md pmetric.Metrics) (datapath.Staged, error) {
	if s.refuse != nil {
		return nil, s.refuse
	}
	return &fakeStaged{s: s, md: md}, nil
}

func (s *fakeSink) batches() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pmetric.Metrics(nil), s.committed...)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

const goodRules = `groups:
  - name: g
    rules:
      - record: job:up:sum
        expr: vector(1)
`

func newEngine(t *testing.T, cfg Config, sink Stager) *Engine {
	t.Helper()
	e, err := New(cfg, Deps{
		Query: func(context.Context, string, time.Time) (promql.Vector, error) {
			return promql.Vector{{Metric: labels.FromStrings("job", "a"), F: 2}}, nil
		},
		Queryable: storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return storage.NoopQuerier(), nil }),
		Sink:      func() Stager { return sink },
	})
	require.NoError(t, err)
	t.Cleanup(e.Stop)
	return e
}

func TestNewRefusesBadRuleFilesWithFileLineAndFix(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"bad YAML", "groups:\n  - name: g\n    rules: [\n", []string{"yaml:", "line"}},
		{"bad PromQL", "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n", []string{"5:15", `group "g", rule 1, "x"`}},
		{"unknown field", "groups:\n  - name: g\n    rulez: []\n", []string{"field rulez not found"}},
		{"record the store would rename", "groups:\n  - name: g\n    rules:\n      - record: job__up\n        expr: vector(1)\n", []string{"4:17", `record "job__up" would be stored under another name`, `e.g. "job_up"`}},
		{"label the store would rename", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vector(1)\n        labels:\n          team.name: x\n", []string{`label "team.name" would be stored under another name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := writeFile(t, dir, "bad.yaml", tt.content)
			_, err := New(Config{Files: []string{filepath.Join(dir, "*.yaml")}, EvaluationInterval: time.Minute, NotificationQueueCapacity: 1}, Deps{})
			var fe *FileError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, f, fe.File)
			assert.ErrorContains(t, err, "rules.files: "+f)
			assert.ErrorContains(t, err, "promtool check rules "+f)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestNewRefusesAMissingPlainPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "rules.yaml")
	_, err := New(Config{Files: []string{missing}, EvaluationInterval: time.Minute, NotificationQueueCapacity: 1}, Deps{})
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	assert.ErrorContains(t, err, "the file does not exist")
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"interval", func(c *Config) { c.EvaluationInterval = 0 }, "evaluation_interval: must be positive"},
		{"reload", func(c *Config) { c.ReloadInterval = -time.Second }, "reload_interval: must not be negative"},
		{"am scheme", func(c *Config) { c.Alertmanagers = []string{"127.0.0.1:9093"} }, "alertmanagers[0]"},
		{"am query", func(c *Config) { c.Alertmanagers = []string{"http://127.0.0.1:9093/?x=1"} }, "query and fragment are not supported"},
		{"glob", func(c *Config) { c.Files = []string{"[a"} }, "files[0]: \"[a\" is not a valid glob"},
		{"external url", func(c *Config) { c.ExternalURL = "grafana" }, "external_url"},
		{"external labels", func(c *Config) { c.ExternalLabels = map[string]string{"a-b": "x"} }, "external_labels: \"a-b\""},
		{"queue", func(c *Config) { c.NotificationQueueCapacity = 0 }, "notification_queue_capacity"},
		{"run on leader", func(c *Config) { c.RunOn = RunOnLeader }, ""},
		{"run on", func(c *Config) { c.RunOn = "some" }, `run_on: "some" is not one of all, leader`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRecordingRuleOutputIsStagedAsGauges(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Files = []string{writeFile(t, dir, "r.yaml", goodRules)}
	cfg.EvaluationInterval = 10 * time.Millisecond
	sink := &fakeSink{}
	e := newEngine(t, cfg, sink)
	e.Start()
	require.Eventually(t, func() bool { return len(sink.batches()) > 0 }, 10*time.Second, 5*time.Millisecond)
	md := sink.batches()[0]
	sm := md.ResourceMetrics().At(0).ScopeMetrics().At(0)
	assert.Equal(t, ScopeName, sm.Scope().Name())
	m := sm.Metrics().At(0)
	assert.Equal(t, "job:up:sum", m.Name())
	require.Equal(t, pmetric.MetricTypeGauge, m.Type())
	dp := m.Gauge().DataPoints().At(0)
	assert.Equal(t, 2.0, dp.DoubleValue())
	assert.Equal(t, map[string]any{"job": "a"}, dp.Attributes().AsRaw())
	groups := e.RuleGroups()
	require.Len(t, groups, 1)
	require.Eventually(t, func() bool { return groups[0].Rules()[0].Health() == "ok" }, 10*time.Second, 5*time.Millisecond)
}

func TestStoreRefusalIsTheRulesLastError(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Files = []string{writeFile(t, dir, "r.yaml", goodRules)}
	cfg.EvaluationInterval = 10 * time.Millisecond
	e := newEngine(t, cfg, &fakeSink{refuse: errors.New("timestamp outside the store's window")})
	e.Start()
	rule := e.RuleGroups()[0].Rules()[0]
	require.Eventually(t, func() bool { return rule.Health() == "err" }, 10*time.Second, 5*time.Millisecond)
	assert.ErrorContains(t, rule.LastError(), "store rule output: timestamp outside the store's window")
}

func TestAppenderStaleMarkersAndNamesTheStoreWouldRename(t *testing.T) {
	sink := &fakeSink{}
	app := sinkAppendable{sink: func() Stager { return sink }}.AppenderV2(context.Background())
	_, err := app.Append(0, labels.FromStrings("__name__", "a:b", "job", "x"), 0, 1000, math.Float64frombits(value.StaleNaN), nil, nil, storage.AppendV2Options{})
	require.NoError(t, err)
	_, err = app.Append(0, labels.FromStrings("__name__", "a__b"), 0, 1000, 1, nil, nil, storage.AppendV2Options{})
	require.ErrorIs(t, err, ErrNotStorable)
	_, err = app.Append(0, labels.FromStrings("__name__", "a", "x__y", "1"), 0, 1000, 1, nil, nil, storage.AppendV2Options{})
	require.ErrorIs(t, err, ErrNotStorable)
	require.NoError(t, app.Commit())
	require.Len(t, sink.batches(), 1)
	dp := sink.batches()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
	assert.True(t, dp.Flags().NoRecordedValue(), "a stale marker is a point without a recorded value")
	assert.Equal(t, int64(1000*1e6), int64(dp.Timestamp()))
}

func TestReloadKeepsTheLastGoodRulesAndPicksUpChanges(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Files = []string{filepath.Join(dir, "*.yaml")}
	cfg.ReloadInterval = 0
	f := writeFile(t, dir, "r.yaml", goodRules)
	e := newEngine(t, cfg, &fakeSink{})
	e.Start()

	changed, err := e.Reload()
	require.NoError(t, err)
	assert.False(t, changed, "nothing changed")

	writeFile(t, dir, "r.yaml", "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n")
	changed, err = e.Reload()
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	assert.False(t, changed)
	assert.Equal(t, f, fe.File)
	require.Len(t, e.RuleGroups(), 1)
	assert.Equal(t, "job:up:sum", e.RuleGroups()[0].Rules()[0].Name(), "the last good rules stay")
	assert.ErrorAs(t, e.Status().Err, &fe)

	writeFile(t, dir, "more.yaml", "groups:\n  - name: h\n    rules:\n      - alert: A\n        expr: vector(1)\n")
	writeFile(t, dir, "r.yaml", goodRules)
	changed, err = e.Reload()
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Len(t, e.RuleGroups(), 2)
	assert.Len(t, e.AlertingRules(), 1)
	assert.NoError(t, e.Status().Err)
}

func TestStopWithoutStart(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Files = []string{writeFile(t, dir, "r.yaml", goodRules)}
	cfg.Alertmanagers = []string{"http://127.0.0.1:1"}
	e := newEngine(t, cfg, &fakeSink{})
	active, _ := e.Alertmanagers()
	assert.Empty(t, active, "targets are synced by the notifier's loop, after Start")
	e.Stop()
	e.Stop()
}
