// Package etcdconf is the config block of an etcd cluster that a fleet of
// collectors shares (the metrics_management extension's provider registry,
// the metrics_service receiver's metric definitions) and the client it
// builds.
package etcdconf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultPrefix         = "/metricsmodule/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultHealthInterval = time.Second
	DefaultLeaseTTL       = 10 * time.Second
)

// Config is an etcd cluster shared by a fleet of collectors.
type Config struct {
	// Endpoints are the etcd client URLs, e.g. http://10.0.0.1:2379.
	Endpoints []string `mapstructure:"endpoints"`
	// Prefix is the key prefix of this fleet's keys.
	Prefix string `mapstructure:"prefix"`
	// DialTimeout bounds the first connection.
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
	// RequestTimeout bounds each read and write.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	// HealthInterval is how often each node checks etcd answers.
	HealthInterval time.Duration `mapstructure:"health_interval"`
	// LeaseTTL is the session lease of the leader election that runs
	// once-only work (scheduled deletions): a leader that dies is replaced
	// within about this long. Whole seconds, at least 1s.
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`
	// TLS to etcd; absent: plain text.
	TLS configoptional.Optional[configtls.ClientConfig] `mapstructure:"tls"`
	// Username and Password authenticate to etcd when set.
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
}

// Default returns the defaults (no endpoints).
func Default() Config {
	return Config{
		Prefix: DefaultPrefix, DialTimeout: DefaultDialTimeout, RequestTimeout: DefaultRequestTimeout,
		HealthInterval: DefaultHealthInterval, LeaseTTL: DefaultLeaseTTL,
	}
}

// Validate checks the block; field is its config key (e.g.
// "definitions.etcd") for the messages.
func (c *Config) Validate(field string) error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, fmt.Errorf("%s.endpoints: must list the etcd client URLs, e.g. [http://127.0.0.1:2379]", field))
	}
	for i, ep := range c.Endpoints {
		if strings.TrimSpace(ep) == "" {
			errs = append(errs, fmt.Errorf("%s.endpoints[%d]: is empty; give an etcd client URL, e.g. http://127.0.0.1:2379", field, i))
		}
	}
	if c.DialTimeout <= 0 || c.RequestTimeout <= 0 || c.HealthInterval <= 0 {
		errs = append(errs, fmt.Errorf("%s.dial_timeout, %s.request_timeout, %s.health_interval: must be positive", field, field, field))
	}
	if c.LeaseTTL != 0 && (c.LeaseTTL < time.Second || c.LeaseTTL%time.Second != 0) {
		errs = append(errs, fmt.Errorf("%s.lease_ttl: %s is not a whole number of seconds of at least 1s (etcd leases count seconds), e.g. 10s", field, c.LeaseTTL))
	}
	return errors.Join(errs...)
}

// EffectivePrefix is Prefix (DefaultPrefix when empty) ending in "/".
func (c *Config) EffectivePrefix() string {
	p := c.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// EffectiveLeaseTTL is LeaseTTL, DefaultLeaseTTL when unset.
func (c *Config) EffectiveLeaseTTL() time.Duration {
	if c.LeaseTTL <= 0 {
		return DefaultLeaseTTL
	}
	return c.LeaseTTL
}

// NewClient builds the etcd client (TLS loaded from the block). field names
// the block in messages. The client connects lazily: a cluster that is down
// fails the first request, not NewClient.
func (c *Config) NewClient(ctx context.Context, field string, log *zap.Logger) (*clientv3.Client, error) {
	if len(c.Endpoints) == 0 {
		return nil, fmt.Errorf("%s.endpoints: at least one etcd client URL is required, e.g. http://127.0.0.1:2379", field)
	}
	cc := clientv3.Config{
		Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Username: c.Username, Password: string(c.Password),
		Logger: log.Named("etcd").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	}
	if cc.DialTimeout <= 0 {
		cc.DialTimeout = DefaultDialTimeout
	}
	if tc := c.TLS.Get(); tc != nil {
		t, err := tc.LoadTLSConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s.tls: %w", field, err)
		}
		cc.TLS = t
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("%s.endpoints: connect to %v: %w", field, c.Endpoints, err)
	}
	return cli, nil
}
