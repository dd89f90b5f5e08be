package metricsservicereceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"

	"github.com/metricsmodule/metricsmodule/internal/authz"
	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/etcdconf"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/rules"
	"github.com/metricsmodule/metricsmodule/internal/summary"
)

// Config is the receiver configuration.
type Config struct {
	// ServerConfig is the gRPC server (endpoint, TLS, auth, keepalive, ...).
	configgrpc.ServerConfig `mapstructure:",squash"`
	// Aggregation says how records become pdata.
	Aggregation AggregationConfig `mapstructure:"aggregation"`
	// Limits bound what a request may carry.
	Limits LimitsConfig `mapstructure:"limits"`
	// Dedup configures idempotent retries by request id.
	Dedup DedupConfig `mapstructure:"dedup"`
	// Store is the metrics_store extension that keeps what every pipeline
	// ingests and answers reads and streams. Unset: the one metrics_store
	// extension of the collector, if there is one.
	Store *component.ID `mapstructure:"store"`
	// Query configures QueryMetrics and GetMetrics (engine limits, results
	// cache, remote backend).
	Query query.Config `mapstructure:"query"`
	// PrometheusAPI serves the Prometheus HTTP read API; off unless the
	// block is present.
	PrometheusAPI configoptional.Optional[confighttp.ServerConfig] `mapstructure:"prometheus_api"`
	// Rules evaluates Prometheus recording and alerting rule files over
	// the store and sends alerts to Alertmanagers; off without rules.files.
	Rules rules.Config `mapstructure:"rules"`
	// Definitions configures metric definitions (RegisterMetric). The key
	// registry is its deprecated name, still accepted (not both).
	Definitions DefinitionsConfig `mapstructure:"definitions"`
	// Authorization maps principals to roles and roles to method families,
	// on the gRPC server and the Prometheus API; absent: every caller may
	// call every method.
	Authorization configoptional.Optional[authz.Config] `mapstructure:"authorization"`
	// Recommendations are the thresholds of GetMetricsSummary's
	// recommendation rules; zero keys take their defaults.
	Recommendations summary.Thresholds `mapstructure:"recommendations"`

	// deprecatedRegistryKey is set when the config named the definitions
	// block registry (logged at start).
	deprecatedRegistryKey bool
}

// deprecatedDefinitionsKey is the old name of the definitions block: in
// the metrics_management extension registry means the provider registry.
const deprecatedDefinitionsKey = "registry"

var _ confmap.Unmarshaler = (*Config)(nil)

// Unmarshal reads the config; a registry block is read as definitions.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	if !conf.IsSet(deprecatedDefinitionsKey) {
		return conf.Unmarshal(cfg)
	}
	if conf.IsSet("definitions") {
		return errors.New("registry: is the deprecated name of definitions; set only definitions (move the registry settings under definitions)")
	}
	m := conf.ToStringMap()
	m["definitions"] = m[deprecatedDefinitionsKey]
	delete(m, deprecatedDefinitionsKey)
	if err := confmap.NewFromStringMap(m).Unmarshal(cfg); err != nil {
		return err
	}
	cfg.deprecatedRegistryKey = true
	return nil
}

// DefinitionsConfig configures the metric definitions.
type DefinitionsConfig struct {
	// Mode is open (unregistered metrics accepted) or strict (refused).
	Mode registry.Mode `mapstructure:"mode"`
	// Storage is a storage extension (e.g. file_storage) that keeps the
	// definitions. When unset they are kept in Path.
	Storage *component.ID `mapstructure:"storage"`
	// Path is the bbolt file of the definitions when no storage extension is
	// set. Empty: next to the store (<store.path>/../registry.db), or in
	// memory only when there is no store.
	Path string `mapstructure:"path"`
	// BackupDir is where UnregisterMetric writes backups. Empty: next to the
	// store (<store.path>/../backups). With backend etcd, backups are kept
	// in etcd and only those larger than 1 MiB go here.
	BackupDir string `mapstructure:"backup_dir"`
	// Backend is where the definitions live: local (default: the storage
	// extension, the bbolt file or memory, for this node) or etcd (shared by
	// a fleet of collectors; see Etcd).
	Backend string `mapstructure:"backend"`
	// Etcd is the etcd cluster of backend: etcd.
	Etcd etcdconf.Config `mapstructure:"etcd"`
}

// Definitions backends.
const (
	DefinitionsBackendLocal = "local"
	DefinitionsBackendEtcd  = "etcd"
)

// AggregationConfig says how records become pdata.
type AggregationConfig struct {
	// CounterTemporality of emitted counters: cumulative (default) or delta.
	CounterTemporality convert.Temporality `mapstructure:"counter_temporality"`
	// HistogramTemporality of histograms and timers built from observations.
	HistogramTemporality convert.Temporality `mapstructure:"histogram_temporality"`
	// Histogram layout of observations.
	Histogram convert.HistogramConfig `mapstructure:"histogram"`
	// Summary settings of observations.
	Summary convert.SummaryConfig `mapstructure:"summary"`
	// SeriesTTL is how long an idle series keeps its state.
	SeriesTTL time.Duration `mapstructure:"series_ttl"`
	// SeriesCacheSize is the most series whose checked labels, key and
	// attributes the ingest path remembers (about 0.5 KiB each with 4
	// labels); 0 disables the cache.
	SeriesCacheSize int `mapstructure:"series_cache_size"`
}

// LimitsConfig bounds what a request may carry.
type LimitsConfig struct {
	convert.Limits `mapstructure:",squash"`
	// MaxBatchSize is the most items of one RecordBatchMetrics.
	MaxBatchSize int `mapstructure:"max_batch_size"`
}

// DedupConfig configures idempotent retries.
type DedupConfig struct {
	// Window is how long a request id is remembered; 0 disables dedup.
	Window time.Duration `mapstructure:"window"`
	// MaxEntries is the most remembered request ids.
	MaxEntries int `mapstructure:"max_entries"`
	// MaxBytes bounds the memory of the remembered results (request ids and
	// responses); the oldest are forgotten first. 0: no bound besides
	// MaxEntries.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MaxRequestIDBytes is the longest request_id accepted; a longer one is
	// refused with INVALID_ARGUMENT.
	MaxRequestIDBytes int `mapstructure:"max_request_id_bytes"`
	// Persist keeps the remembered results in a journal file, so that a
	// retry after a restart (kill -9 included) is still recognised. It
	// applies when there is a store (or Path is set).
	Persist bool `mapstructure:"persist"`
	// Path is the journal file. Empty: next to the store
	// (<store.path>/../dedup.journal; dedup-<name>.journal for a receiver
	// metrics_service/<name>), or memory only when there is no store.
	Path string `mapstructure:"path"`
}

var _ component.Config = (*Config)(nil)

// convertConfig returns the conversion settings of cfg.
func (cfg *Config) convertConfig() convert.Config {
	return convert.Config{
		CounterTemporality:   cfg.Aggregation.CounterTemporality,
		HistogramTemporality: cfg.Aggregation.HistogramTemporality,
		Histogram:            cfg.Aggregation.Histogram,
		Summary:              cfg.Aggregation.Summary,
		Limits:               cfg.Limits.Limits,
		SeriesTTL:            cfg.Aggregation.SeriesTTL,
		SeriesCacheSize:      cfg.Aggregation.SeriesCacheSize,
	}
}

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set, e.g. localhost:4320"))
	}
	cc := cfg.convertConfig()
	if err := cc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Limits.MaxBatchSize <= 0 {
		errs = append(errs, fmt.Errorf("limits.max_batch_size: must be positive, got %d", cfg.Limits.MaxBatchSize))
	}
	if err := cfg.Query.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("query: %w", err))
	}
	if err := cfg.Rules.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rules: %w", err))
	}
	if cfg.Rules.Enabled() && cfg.Query.Remote.Endpoint != "" {
		errs = append(errs, errors.New("rules.files: rules are evaluated over the local store and cannot be combined with query.remote.endpoint; evaluate them on the remote backend or remove query.remote.endpoint"))
	}
	if cfg.Rules.Enabled() && cfg.Rules.RunOn == rules.RunOnLeader && cfg.Definitions.Backend != DefinitionsBackendEtcd {
		errs = append(errs, errors.New("rules.run_on: leader elects the evaluating node on the etcd cluster of definitions.etcd; set definitions.backend: etcd (and definitions.etcd.endpoints), or rules.run_on: all"))
	}
	if cfg.Definitions.Mode != registry.ModeOpen && cfg.Definitions.Mode != registry.ModeStrict {
		errs = append(errs, fmt.Errorf("definitions.mode: %q is not one of open, strict", cfg.Definitions.Mode))
	}
	switch cfg.Definitions.Backend {
	case "", DefinitionsBackendLocal:
	case DefinitionsBackendEtcd:
		if err := cfg.Definitions.Etcd.Validate("definitions.etcd"); err != nil {
			errs = append(errs, err)
		}
		if cfg.Definitions.Storage != nil || cfg.Definitions.Path != "" {
			errs = append(errs, errors.New("definitions.storage, definitions.path: the definitions are in etcd with definitions.backend: etcd; remove them (or use definitions.backend: local)"))
		}
	default:
		errs = append(errs, fmt.Errorf("definitions.backend: %q is not a backend; use local or etcd", cfg.Definitions.Backend))
	}
	if cfg.Dedup.Window < 0 {
		errs = append(errs, errors.New("dedup.window: must not be negative"))
	}
	if err := cfg.Recommendations.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Dedup.Window > 0 && cfg.Dedup.MaxEntries <= 0 {
		errs = append(errs, errors.New("dedup.max_entries: must be positive when dedup.window is set"))
	}
	if cfg.Dedup.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("dedup.max_bytes: must not be negative, got %d", cfg.Dedup.MaxBytes))
	}
	if cfg.Dedup.Path != "" && !cfg.Dedup.Persist {
		errs = append(errs, errors.New("dedup.path: is set while dedup.persist is false; remove dedup.path or set dedup.persist: true"))
	}
	if cfg.Dedup.MaxRequestIDBytes <= 0 {
		errs = append(errs, fmt.Errorf("dedup.max_request_id_bytes: must be positive, got %d", cfg.Dedup.MaxRequestIDBytes))
	}
	return errors.Join(errs...)
}
