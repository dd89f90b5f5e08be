package promapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

// fakeRules serves fixed groups.
type fakeRules struct{ groups []*rules.Group }

func (f fakeRules) RuleGroups() []*rules.Group { return f.groups }

func (f fakeRules) AlertingRules() []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, g := range f.groups {
		out = append(out, g.AlertingRules()...)
	}
	return out
}

func (fakeRules) Alertmanagers() (active, dropped []*url.URL) {
	u, _ := url.Parse("http://127.0.0.1:9093/api/v2/alerts")
	return []*url.URL{u}, nil
}

func (fakeRules) LastLoad() (time.Time, []string, error) {
	return time.Unix(100, 0), []string{"/etc/rules/a.yaml"}, nil
}

func newRulesServer(t *testing.T) *httptest.Server {
	t.Helper()
	expr := func(s string) parser.Expr {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(s)
		require.NoError(t, err)
		return e
	}
	opts := &rules.ManagerOptions{Registerer: prometheus.NewRegistry()}
	opts.Metrics = rules.NewGroupMetrics(opts.Registerer)
	g1 := rules.NewGroup(rules.GroupOptions{Name: "one", File: "/etc/rules/a.yaml", Interval: time.Minute, Opts: opts, Rules: []rules.Rule{
		rules.NewRecordingRule("job:up:sum", expr("sum by (job) (up)"), labels.FromStrings("team", "a")),
		rules.NewAlertingRule("Down", expr("up == 0"), 5*time.Minute, 0, labels.FromStrings("severity", "page"), labels.FromStrings("summary", "down"), labels.EmptyLabels(), "", true, nil),
	}})
	g2 := rules.NewGroup(rules.GroupOptions{Name: "two", File: "/etc/rules/b.yaml", Interval: 30 * time.Second, Opts: opts, Rules: []rules.Rule{
		rules.NewRecordingRule("job:req:rate5m", expr("sum by (job) (rate(req_total[5m]))"), labels.EmptyLabels()),
	}})
	eng, err := query.New(query.DefaultConfig(), storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return storage.NoopQuerier(), nil }), zap.NewNop())
	require.NoError(t, err)
	h, err := Handler(eng, nil, "", nil, WithRules(fakeRules{groups: []*rules.Group{g1, g2}}))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type rulesAnswer struct {
	Status string `json:"status"`
	Data   struct {
		Groups []struct {
			Name     string  `json:"name"`
			File     string  `json:"file"`
			Interval float64 `json:"interval"`
			Rules    []struct {
				Name   string            `json:"name"`
				Type   string            `json:"type"`
				Query  string            `json:"query"`
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
				State  string            `json:"state"`
				Alerts []any             `json:"alerts"`
			} `json:"rules"`
		} `json:"groups"`
		GroupNextToken string `json:"groupNextToken"`
	} `json:"data"`
}

func getRules(t *testing.T, srv *httptest.Server, q string) (int, rulesAnswer) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/rules?" + q)
	require.NoError(t, err)
	defer resp.Body.Close()
	var a rulesAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return resp.StatusCode, a
}

func ruleNames(a rulesAnswer) []string {
	var out []string
	for _, g := range a.Data.Groups {
		for _, r := range g.Rules {
			out = append(out, g.Name+"/"+r.Name)
		}
	}
	return out
}

func TestRulesFiltersAndPages(t *testing.T) {
	srv := newRulesServer(t)
	tests := []struct {
		name, query string
		want        []string
	}{
		{"all", "", []string{"one/job:up:sum", "one/Down", "two/job:req:rate5m"}},
		{"type record", "type=record", []string{"one/job:up:sum", "two/job:req:rate5m"}},
		{"type alert", "type=alert", []string{"one/Down"}},
		{"rule_name", "rule_name[]=Down&rule_name[]=job:req:rate5m", []string{"one/Down", "two/job:req:rate5m"}},
		{"rule_group", "rule_group[]=two", []string{"two/job:req:rate5m"}},
		{"file", "file[]=/etc/rules/a.yaml", []string{"one/job:up:sum", "one/Down"}},
		{"match on rule labels", `match[]={team="a"}`, []string{"one/job:up:sum"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, a := getRules(t, srv, tt.query)
			require.Equal(t, http.StatusOK, code)
			assert.Equal(t, tt.want, ruleNames(a))
		})
	}

	_, a := getRules(t, srv, "")
	g := a.Data.Groups[0]
	assert.Equal(t, "/etc/rules/a.yaml", g.File)
	assert.Equal(t, 60.0, g.Interval)
	assert.Equal(t, "recording", g.Rules[0].Type)
	assert.Equal(t, "sum by (job) (up)", g.Rules[0].Query)
	assert.Equal(t, "unknown", g.Rules[0].Health, "not evaluated yet")
	assert.Equal(t, "alerting", g.Rules[1].Type)
	assert.Equal(t, "unknown", g.Rules[1].State, "not evaluated yet")
	assert.NotNil(t, g.Rules[1].Alerts)

	// pages of one group, with Prometheus' token
	code, p1 := getRules(t, srv, "group_limit=1")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p1.Data.Groups, 1)
	require.NotEmpty(t, p1.Data.GroupNextToken)
	code, p2 := getRules(t, srv, "group_limit=1&group_next_token="+p1.Data.GroupNextToken)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"two/job:req:rate5m"}, ruleNames(p2))
	assert.Empty(t, p2.Data.GroupNextToken)
	code, _ = getRules(t, srv, "group_limit=1&group_next_token=stale")
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestAlertmanagersRuntimeInfoAndConfigFromTheRules(t *testing.T) {
	srv := newRulesServer(t)
	var ams struct {
		Data struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		} `json:"data"`
	}
	resp, err := http.Get(srv.URL + "/api/v1/alertmanagers")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ams))
	resp.Body.Close()
	require.Len(t, ams.Data.Active, 1)
	assert.Equal(t, "http://127.0.0.1:9093/api/v2/alerts", ams.Data.Active[0].URL)

	var ri struct {
		Data struct {
			ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
			LastConfigTime      time.Time `json:"lastConfigTime"`
		} `json:"data"`
	}
	resp, err = http.Get(srv.URL + "/api/v1/status/runtimeinfo")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ri))
	resp.Body.Close()
	assert.True(t, ri.Data.ReloadConfigSuccess)
	assert.True(t, ri.Data.LastConfigTime.Equal(time.Unix(100, 0)))

	var cfg struct {
		Data struct {
			YAML string `json:"yaml"`
		} `json:"data"`
	}
	resp, err = http.Get(srv.URL + "/api/v1/status/config")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&cfg))
	resp.Body.Close()
	assert.Contains(t, cfg.Data.YAML, "rule_files:\n  - \"/etc/rules/a.yaml\"\n")
	assert.Contains(t, cfg.Data.YAML, "# alerts are sent to http://127.0.0.1:9093/api/v2/alerts\n")
}
