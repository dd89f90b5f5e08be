package promapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

// RuleSource is what /api/v1/rules, /api/v1/alerts and
// /api/v1/alertmanagers answer from (internal/rules.Engine).
type RuleSource interface {
	// RuleGroups returns the loaded rule groups, in file and group order.
	RuleGroups() []*rules.Group
	// AlertingRules returns the alerting rules of every group.
	AlertingRules() []*rules.AlertingRule
	// Alertmanagers returns the Alertmanagers alerts are sent to.
	Alertmanagers() (active, dropped []*url.URL)
	// LastLoad returns when the rule files were last loaded or a reload
	// was refused, the files in force, and the refusal (nil after a good
	// load): status/runtimeinfo and status/config report them.
	LastLoad() (at time.Time, files []string, err error)
}

// WithRules serves rules, alerts and alertmanagers from src; without it
// they answer empty lists.
func WithRules(src RuleSource) Option {
	return func(a *api) { a.rulesSrc = src }
}

// apiAlert is Prometheus' Alert.
type apiAlert struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

// ruleGroup is Prometheus' RuleGroup.
type ruleGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []any     `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// alertingRule is Prometheus' AlertingRule.
type alertingRule struct {
	State          string           `json:"state"`
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Duration       float64          `json:"duration"`
	KeepFiringFor  float64          `json:"keepFiringFor"`
	Labels         labels.Labels    `json:"labels"`
	Annotations    labels.Labels    `json:"annotations"`
	Alerts         []*apiAlert      `json:"alerts"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

// recordingRule is Prometheus' RecordingRule.
type recordingRule struct {
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Labels         labels.Labels    `json:"labels"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

type ruleDiscovery struct {
	RuleGroups     []*ruleGroup `json:"groups"`
	GroupNextToken string       `json:"groupNextToken,omitempty"`
}

func apiAlerts(in []*rules.Alert) []*apiAlert {
	out := make([]*apiAlert, 0, len(in))
	for _, ra := range in {
		a := &apiAlert{
			Labels:      ra.Labels,
			Annotations: ra.Annotations,
			State:       ra.State.String(),
			ActiveAt:    &ra.ActiveAt,
			Value:       strconv.FormatFloat(ra.Value, 'e', -1, 64),
		}
		if !ra.KeepFiringSince.IsZero() {
			a.KeepFiringSince = &ra.KeepFiringSince
		}
		out = append(out, a)
	}
	return out
}

// alerts answers the active alerts of every alerting rule.
func (a *api) alerts(w http.ResponseWriter, _ *http.Request) {
	out := []*apiAlert{}
	if a.rulesSrc != nil {
		for _, r := range a.rulesSrc.AlertingRules() {
			out = append(out, apiAlerts(r.ActiveAlerts())...)
		}
	}
	ok(w, struct {
		Alerts []*apiAlert `json:"alerts"`
	}{Alerts: out}, nil)
}

// alertmanagers answers where alerts are sent.
func (a *api) alertmanagers(w http.ResponseWriter, _ *http.Request) {
	type am struct {
		URL string `json:"url"`
	}
	active, dropped := []am{}, []am{}
	if a.rulesSrc != nil {
		act, drop := a.rulesSrc.Alertmanagers()
		for _, u := range act {
			active = append(active, am{URL: u.String()})
		}
		for _, u := range drop {
			dropped = append(dropped, am{URL: u.String()})
		}
	}
	ok(w, struct {
		Active  []am `json:"activeAlertmanagers"`
		Dropped []am `json:"droppedAlertmanagers"`
	}{active, dropped}, nil)
}

// rules answers the rule groups with the filters and pagination of
// Prometheus' /api/v1/rules (type, rule_name[], rule_group[], file[],
// match[], exclude_alerts, group_limit, group_next_token).
func (a *api) rules(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		fail(w, badData("error parsing form values: %v", err))
		return
	}
	set := func(values []string) map[string]struct{} {
		m := make(map[string]struct{}, len(values))
		for _, v := range values {
			m[v] = struct{}{}
		}
		return m
	}
	rnSet, rgSet, fSet := set(r.Form["rule_name[]"]), set(r.Form["rule_group[]"]), set(r.Form["file[]"])
	var matcherSets [][]*labels.Matcher
	for _, m := range r.Form["match[]"] {
		ms, err := selectorParser.ParseMetricSelector(m)
		if err != nil {
			fail(w, badData("invalid parameter \"match[]\": %v", err))
			return
		}
		matcherSets = append(matcherSets, ms)
	}
	typ := strings.ToLower(r.URL.Query().Get("type"))
	if typ != "" && typ != "alert" && typ != "record" {
		fail(w, badData("invalid parameter \"type\": not supported value %q; use alert or record", typ))
		return
	}
	excludeAlerts := false
	if s := r.URL.Query().Get("exclude_alerts"); s != "" {
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			fail(w, badData("invalid parameter \"exclude_alerts\": error converting exclude_alerts: %v", err))
			return
		}
		excludeAlerts = b
	}
	maxGroups, nextToken := int64(-1), r.URL.Query().Get("group_next_token")
	if s := r.URL.Query().Get("group_limit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n <= 0 {
			fail(w, badData("invalid parameter \"group_limit\": %q: group_limit needs to be a number greater than 0", s))
			return
		}
		maxGroups = n
	} else if nextToken != "" {
		fail(w, badData("invalid parameter \"group_next_token\": group_limit needs to be present in order to paginate over the groups"))
		return
	}
	res := &ruleDiscovery{RuleGroups: []*ruleGroup{}}
	if a.rulesSrc == nil {
		ok(w, res, nil)
		return
	}
	foundToken := false
	for _, grp := range a.rulesSrc.RuleGroups() {
		if maxGroups > 0 && nextToken != "" && !foundToken {
			if nextToken != groupToken(grp.File(), grp.Name()) {
				continue
			}
			foundToken = true
		}
		if _, in := rgSet[grp.Name()]; len(rgSet) > 0 && !in {
			continue
		}
		if _, in := fSet[grp.File()]; len(fSet) > 0 && !in {
			continue
		}
		g := &ruleGroup{
			Name: grp.Name(), File: grp.File(), Interval: grp.Interval().Seconds(), Limit: grp.Limit(),
			Rules: []any{}, EvaluationTime: grp.GetEvaluationTime().Seconds(), LastEvaluation: grp.GetLastEvaluation(),
		}
		for _, rr := range grp.Rules(matcherSets...) {
			if _, in := rnSet[rr.Name()]; len(rnSet) > 0 && !in {
				continue
			}
			lastError := ""
			if err := rr.LastError(); err != nil {
				lastError = err.Error()
			}
			switch rule := rr.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				var active []*apiAlert
				if !excludeAlerts {
					active = apiAlerts(rule.ActiveAlerts())
				}
				g.Rules = append(g.Rules, alertingRule{
					State: rule.State().String(), Name: rule.Name(), Query: rule.Query().String(),
					Duration: rule.HoldDuration().Seconds(), KeepFiringFor: rule.KeepFiringFor().Seconds(),
					Labels: rule.Labels(), Annotations: rule.Annotations(), Alerts: active,
					Health: rule.Health(), LastError: lastError,
					EvaluationTime: rule.GetEvaluationDuration().Seconds(), LastEvaluation: rule.GetEvaluationTimestamp(),
					Type: "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				g.Rules = append(g.Rules, recordingRule{
					Name: rule.Name(), Query: rule.Query().String(), Labels: rule.Labels(),
					Health: rule.Health(), LastError: lastError,
					EvaluationTime: rule.GetEvaluationDuration().Seconds(), LastEvaluation: rule.GetEvaluationTimestamp(),
					Type: "recording",
				})
			}
		}
		if len(g.Rules) == 0 {
			continue
		}
		if maxGroups > 0 && int64(len(res.RuleGroups)) == maxGroups {
			res.GroupNextToken = groupToken(grp.File(), grp.Name())
			break
		}
		res.RuleGroups = append(res.RuleGroups, g)
	}
	if maxGroups > 0 && nextToken != "" && !foundToken {
		fail(w, badData("invalid parameter \"group_next_token\": invalid group_next_token %q; were rule groups changed? Start again without it", nextToken))
		return
	}
	ok(w, res, nil)
}

// groupToken is Prometheus' page token of a rule group.
func groupToken(file, group string) string {
	h := sha256.Sum256([]byte(file + ";" + group))
	return hex.EncodeToString(h[:])
}
