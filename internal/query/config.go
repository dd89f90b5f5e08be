package query

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"time"
)

// Config configures the query engine.
type Config struct {
	// Timeout is the longest a query may run unless the request asks for less.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxSamples is the most samples a query may hold in memory.
	MaxSamples int `mapstructure:"max_samples"`
	// MaxSeries is the most series in one answer.
	MaxSeries int `mapstructure:"max_series"`
	// LookbackDelta is how far back an instant selector looks for a sample.
	LookbackDelta time.Duration `mapstructure:"lookback_delta"`
	// MaxRangeSteps is the most evaluation steps of a range query
	// ((end-start)/step), as Prometheus' 11,000.
	MaxRangeSteps int64 `mapstructure:"max_range_steps"`
	// MaxSubquerySteps is the most steps one subquery may evaluate: its range
	// plus the range of the evaluation around it, divided by its step.
	MaxSubquerySteps int64 `mapstructure:"max_subquery_steps"`
	// MaxSubqueryPoints is the most points per series all subqueries of a
	// query may produce and have scanned by the functions around them (the
	// subquery's window points times the steps of the enclosing evaluation).
	MaxSubqueryPoints int64 `mapstructure:"max_subquery_points"`
	// MaxConcurrent is the most queries evaluated at once.
	MaxConcurrent int `mapstructure:"max_concurrent"`
	// MaxQueued is the most queries waiting for a slot; a query waits at
	// most until its deadline.
	MaxQueued int `mapstructure:"max_queued"`
	// Cache is the results cache of range queries.
	Cache CacheConfig `mapstructure:"cache"`
	// Remote, when its endpoint is set, answers queries instead of the store.
	Remote RemoteConfig `mapstructure:"remote"`
}

// CacheConfig configures the step-aligned results cache.
type CacheConfig struct {
	// Enabled turns the cache on.
	Enabled bool `mapstructure:"enabled"`
	// MaxBytes bounds the memory of cached results.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MaxFreshness: results newer than now minus this are never cached,
	// because samples may still arrive for them.
	MaxFreshness time.Duration `mapstructure:"max_freshness"`
}

// RemoteConfig points queries at a Prometheus-compatible HTTP API.
type RemoteConfig struct {
	// Endpoint is the API base URL, e.g. http://prometheus:9090 or
	// http://mimir:8080/prometheus. Empty: use the embedded store.
	Endpoint string `mapstructure:"endpoint"`
	// Headers are added to every request (e.g. X-Scope-OrgID for Mimir).
	Headers map[string]string `mapstructure:"headers"`
}

// DefaultConfig returns the default query settings.
func DefaultConfig() Config {
	return Config{
		Timeout:           2 * time.Minute,
		MaxSamples:        50_000_000,
		MaxSeries:         10_000,
		LookbackDelta:     5 * time.Minute,
		MaxRangeSteps:     11_000,
		MaxSubquerySteps:  1_000_000,
		MaxSubqueryPoints: 20_000_000,
		MaxConcurrent:     defaultMaxConcurrent(),
		MaxQueued:         64,
		Cache: CacheConfig{
			Enabled:      true,
			MaxBytes:     64 << 20,
			MaxFreshness: time.Minute,
		},
	}
}

// defaultMaxConcurrent is one query per two cores: evaluation is
// CPU-bound and ingest must keep the other cores (metricsbench hostile,
// BENCHMARKS.md: on 2 cores, heavy queries in 2 slots took ingest to 0.44x
// at full load, in 1 slot to 0.65x).
func defaultMaxConcurrent() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// Validate checks the settings; messages name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if c.MaxSamples <= 0 {
		errs = append(errs, errors.New("max_samples: must be positive"))
	}
	if c.MaxSeries <= 0 {
		errs = append(errs, errors.New("max_series: must be positive"))
	}
	if c.LookbackDelta <= 0 {
		errs = append(errs, errors.New("lookback_delta: must be positive"))
	}
	if c.MaxRangeSteps <= 0 {
		errs = append(errs, errors.New("max_range_steps: must be positive"))
	}
	if c.MaxSubquerySteps <= 0 {
		errs = append(errs, errors.New("max_subquery_steps: must be positive"))
	}
	if c.MaxSubqueryPoints <= 0 {
		errs = append(errs, errors.New("max_subquery_points: must be positive"))
	}
	if c.MaxConcurrent <= 0 {
		errs = append(errs, errors.New("max_concurrent: must be positive"))
	}
	if c.MaxQueued < 0 {
		errs = append(errs, errors.New("max_queued: must not be negative (0: refuse when every slot is busy)"))
	}
	if c.Cache.Enabled && c.Cache.MaxBytes <= 0 {
		errs = append(errs, errors.New("cache.max_bytes: must be positive when the cache is enabled"))
	}
	if c.Cache.MaxFreshness < 0 {
		errs = append(errs, errors.New("cache.max_freshness: must not be negative"))
	}
	if c.Remote.Endpoint != "" {
		u, err := url.Parse(c.Remote.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("remote.endpoint: %q is not an http(s) URL", c.Remote.Endpoint))
		}
	}
	return errors.Join(errs...)
}
