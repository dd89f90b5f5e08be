package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/prometheus/prometheus/tsdb"
	"go.uber.org/zap"
)

// HistogramMode says how explicit-bucket histograms are stored.
type HistogramMode string

const (
	// HistogramsClassic stores _bucket/_sum/_count series (works with every
	// Prometheus-compatible reader).
	HistogramsClassic HistogramMode = "classic"
	// HistogramsNative stores native histograms with custom buckets (NHCB).
	HistogramsNative HistogramMode = "native"
)

// Config configures the store.
type Config struct {
	// Path is the TSDB directory.
	Path string `mapstructure:"path"`
	// Retention is how long samples are kept.
	Retention time.Duration `mapstructure:"retention"`
	// RetentionSize is the most bytes of persisted blocks; 0 = unlimited.
	RetentionSize int64 `mapstructure:"retention_size"`
	// OutOfOrderWindow is how far behind the newest sample of a series a
	// sample may arrive and still be stored.
	OutOfOrderWindow time.Duration `mapstructure:"out_of_order_window"`
	// Histograms is classic or native.
	Histograms HistogramMode `mapstructure:"histograms"`
	// AddMetricSuffixes adds _total and unit suffixes to metric names, as
	// Prometheus' OTLP endpoint does by default.
	AddMetricSuffixes bool `mapstructure:"add_metric_suffixes"`
	// MaxFuture is how far ahead of the server clock a sample may be.
	MaxFuture time.Duration `mapstructure:"max_future"`
	// MaxExemplars is the size of the in-memory ring of exemplars (the
	// TSDB's exemplar storage, kept in the WAL); 0 keeps no exemplars.
	MaxExemplars int64 `mapstructure:"max_exemplars"`
}

// DefaultConfig returns the default store settings.
func DefaultConfig() Config {
	return Config{
		Path:              filepath.Join("data", "metricsmodule", "tsdb"),
		Retention:         15 * 24 * time.Hour,
		OutOfOrderWindow:  time.Hour,
		Histograms:        HistogramsClassic,
		AddMetricSuffixes: true,
		MaxFuture:         10 * time.Minute,
		MaxExemplars:      100000,
	}
}

// Validate checks the settings; messages name the field.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: must be set"))
	}
	if c.Retention <= 0 {
		errs = append(errs, errors.New("retention: must be positive"))
	}
	if c.RetentionSize < 0 {
		errs = append(errs, errors.New("retention_size: must not be negative"))
	}
	if c.OutOfOrderWindow < 0 {
		errs = append(errs, errors.New("out_of_order_window: must not be negative"))
	}
	if c.MaxExemplars < 0 {
		errs = append(errs, fmt.Errorf("max_exemplars: must not be negative (0 keeps no exemplars), got %d", c.MaxExemplars))
	}
	if c.MaxFuture < 0 {
		errs = append(errs, errors.New("max_future: must not be negative"))
	}
	if c.Histograms != HistogramsClassic && c.Histograms != HistogramsNative {
		errs = append(errs, fmt.Errorf("histograms: %q is not one of classic, native", c.Histograms))
	}
	return errors.Join(errs...)
}

// Store is the embedded TSDB.
type Store struct {
	cfg      Config
	db       *tsdb.DB
	logger   *zap.Logger
	settings otlptranslator.Settings
	convs    sync.Pool
	meta     *metaIndex
	stats    *IngestStats

	rejected atomic.Int64 // samples of refused batches
	last     lastTimes    // newest committed timestamp per series ref
	counters lastTimes    // last committed value (float64 bits) per counter series ref
	card     *cardinality // series per metric name and label pair in the head
	closed   atomic.Bool

	lateAge  time.Duration
	lateHook func(oldest time.Time)
}

// OnLateSamples calls fn after a commit whose oldest sample is older than
// age (results caches drop what those samples change). Call before use.
func (s *Store) OnLateSamples(age time.Duration, fn func(oldest time.Time)) {
	s.lateAge, s.lateHook = age, fn
}

// Open opens (or creates) the TSDB at cfg.Path, replaying its WAL.
func Open(cfg Config, logger *zap.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Path, 0o750); err != nil {
		return nil, fmt.Errorf("create store directory %s: %w", cfg.Path, err)
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	opts.MaxBytes = cfg.RetentionSize
	opts.OutOfOrderTimeWindow = cfg.OutOfOrderWindow.Milliseconds()
	// backfilled blocks (restored backups) become visible within seconds
	opts.BlockReloadInterval = 2 * time.Second
	opts.EnableExemplarStorage = cfg.MaxExemplars > 0
	opts.MaxExemplars = cfg.MaxExemplars
	card := newCardinality()
	opts.SeriesLifecycleCallback = card
	start := time.Now()
	db, err := tsdb.Open(cfg.Path, newSlogger(logger.Named("tsdb")), prometheus.NewRegistry(), opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open TSDB at %s: %w", cfg.Path, err)
	}
	s := &Store{
		cfg:    cfg,
		db:     db,
		logger: logger,
		settings: otlptranslator.Settings{
			AddMetricSuffixes:       cfg.AddMetricSuffixes,
			ConvertHistogramsToNHCB: cfg.Histograms == HistogramsNative,
			// Delta sums and histograms are kept as their per-interval
			// values (Prometheus 3's native delta ingestion): an
			// acknowledged delta point is stored, not dropped.
			AllowDeltaTemporality: true,
		},
		meta:  newMetaIndex(),
		stats: NewIngestStats(time.Now),
		card:  card,
	}
	s.convs.New = func() any { return otlptranslator.NewPrometheusConverter(nil) }
	skipped, err := s.meta.open(cfg.Path)
	if err != nil {
		logger.Warn("Metric metadata could not be fully restored; it is rebuilt as data arrives", zap.Error(err))
	}
	if skipped > 0 {
		logger.Warn("Unreadable lines of the metadata journal were skipped (a crash in the middle of a write)", zap.Int("lines", skipped))
	}
	logger.Info("Opened metrics store",
		zap.String("path", cfg.Path),
		zap.Uint64("series", db.Head().NumSeries()),
		zap.Int("blocks", len(db.Blocks())),
		zap.Duration("retention", cfg.Retention),
		zap.Duration("open_time", time.Since(start)))
	return s, nil
}

// Close flushes and closes the TSDB. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	if err := s.meta.close(); err != nil {
		errs = append(errs, fmt.Errorf("save metric metadata: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close TSDB: %w", err))
	}
	return errors.Join(errs...)
}

// Queryable is what the PromQL engine reads.
func (s *Store) Queryable() storage.Queryable { return s.db }

// ExemplarQuerier reads the exemplars of the store's head (the newest
// store.max_exemplars of them).
func (s *Store) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.db.ExemplarQuerier(ctx)
}

// Stats returns the ingest statistics.
func (s *Store) Stats() *IngestStats { return s.stats }

// Rejected returns how many samples Stage refused since start (see
// RefusedError).
func (s *Store) Rejected() int64 { return s.rejected.Load() }

// Metadata returns the type, unit and help of metric families seen.
func (s *Store) Metadata() map[string]metadata.Metadata { return s.meta.snapshot() }

// MetadataOf returns the metadata of one metric family.
func (s *Store) MetadataOf(family string) (metadata.Metadata, bool) { return s.meta.get(family) }
