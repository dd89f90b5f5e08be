package rules

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/prometheus/common/model"
)

// Config configures rule evaluation and alert notification.
type Config struct {
	// Files are globs of rule files in Prometheus' format (promtool check
	// rules). None: no rules are evaluated.
	Files []string `mapstructure:"files"`
	// EvaluationInterval is how often a group is evaluated unless the group
	// sets its own interval.
	EvaluationInterval time.Duration `mapstructure:"evaluation_interval"`
	// ReloadInterval is how often the globs are expanded again and the
	// files checked for changes (size, mtime, content); 0 turns reloading off.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// Alertmanagers are the base URLs of the Alertmanagers alerts are sent
	// to (http://host:9093, with a path prefix if any); API v2.
	Alertmanagers []string `mapstructure:"alertmanagers"`
	// AlertmanagerTimeout bounds one send to an Alertmanager.
	AlertmanagerTimeout time.Duration `mapstructure:"alertmanager_timeout"`
	// NotificationQueueCapacity is how many alerts wait for the
	// Alertmanagers before the oldest are dropped.
	NotificationQueueCapacity int `mapstructure:"notification_queue_capacity"`
	// ExternalURL is the base of the alerts' generatorURL (Prometheus'
	// --web.external-url), e.g. the Grafana or collector address users open.
	ExternalURL string `mapstructure:"external_url"`
	// ExternalLabels are added to every alert sent.
	ExternalLabels map[string]string `mapstructure:"external_labels"`
	// OutageTolerance is the longest outage after which the for-state of
	// alerts is restored from the store (ALERTS_FOR_STATE).
	OutageTolerance time.Duration `mapstructure:"outage_tolerance"`
	// ForGracePeriod is the least time an alert with a for clause waits
	// after a restore before it fires.
	ForGracePeriod time.Duration `mapstructure:"for_grace_period"`
	// ResendDelay is how long to wait before resending a firing alert.
	ResendDelay time.Duration `mapstructure:"resend_delay"`
	// RunOn says which nodes of a fleet evaluate the rules: RunOnAll
	// (default, "" too: every node over its own store) or RunOnLeader (one
	// node at a time, elected on etcd; the others load the rules but do not
	// evaluate them or send alerts).
	RunOn string `mapstructure:"run_on"`
}

// Values of Config.RunOn.
const (
	RunOnAll    = "all"
	RunOnLeader = "leader"
)

// DefaultConfig returns Prometheus' defaults: rules every minute, files
// checked every 30s.
func DefaultConfig() Config {
	return Config{
		EvaluationInterval:        time.Minute,
		ReloadInterval:            30 * time.Second,
		AlertmanagerTimeout:       10 * time.Second,
		NotificationQueueCapacity: 10000,
		OutageTolerance:           time.Hour,
		ForGracePeriod:            10 * time.Minute,
		ResendDelay:               time.Minute,
	}
}

// Enabled reports whether any rule file is configured.
func (c *Config) Enabled() bool { return len(c.Files) > 0 }

// Validate checks the settings; messages name the field (under rules.).
func (c *Config) Validate() error {
	var errs []error
	for i, f := range c.Files {
		if f == "" {
			errs = append(errs, fmt.Errorf("files[%d]: must not be empty; give a path or glob such as /etc/metricsmodule/rules/*.yaml", i))
		} else if _, err := filepath.Match(f, ""); err != nil {
			errs = append(errs, fmt.Errorf("files[%d]: %q is not a valid glob: %w", i, f, err))
		}
	}
	if c.EvaluationInterval <= 0 {
		errs = append(errs, fmt.Errorf("evaluation_interval: must be positive, got %s (Prometheus' default is 1m)", c.EvaluationInterval))
	}
	switch c.RunOn {
	case "", RunOnAll, RunOnLeader:
	default:
		errs = append(errs, fmt.Errorf("run_on: %q is not one of all, leader", c.RunOn))
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, fmt.Errorf("reload_interval: must not be negative (0 turns reloading off), got %s", c.ReloadInterval))
	}
	for i, s := range c.Alertmanagers {
		if _, err := alertmanagerURL(s); err != nil {
			errs = append(errs, fmt.Errorf("alertmanagers[%d]: %w", i, err))
		}
	}
	if len(c.Alertmanagers) > 0 && c.AlertmanagerTimeout <= 0 {
		errs = append(errs, fmt.Errorf("alertmanager_timeout: must be positive, got %s", c.AlertmanagerTimeout))
	}
	if c.NotificationQueueCapacity <= 0 {
		errs = append(errs, fmt.Errorf("notification_queue_capacity: must be positive, got %d", c.NotificationQueueCapacity))
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("external_url: %q is not an absolute URL; use e.g. http://grafana.example:3000", c.ExternalURL))
		}
	}
	for k := range c.ExternalLabels {
		if !model.LegacyValidation.IsValidLabelName(k) {
			errs = append(errs, fmt.Errorf("external_labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", k))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"outage_tolerance", c.OutageTolerance}, {"for_grace_period", c.ForGracePeriod}, {"resend_delay", c.ResendDelay}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// alertmanagerURL parses an Alertmanager base URL.
func alertmanagerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL with a host; use e.g. http://127.0.0.1:9093", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: user info, query and fragment are not supported; give scheme, host and path prefix only", s)
	}
	return u, nil
}
