package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	otlptranslator "github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/pmetric"
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
}

// DefaultConfig returns the default store settings.
func DefaultConfig() Config {
	return Config{
		Path:              filepath.Join("data", "metricsmodule", "tsdb"),
		Retention:         15 * 24 * time.Hour,
		OutOfOrderWindow:  time.Hour,
		Histograms:        HistogramsClassic,
		AddMetricSuffixes: true,
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

	rejected atomic.Int64 // samples the TSDB refused (out of order, too old, duplicate)
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
		},
		meta:  newMetaIndex(),
		stats: NewIngestStats(time.Now),
	}
	s.convs.New = func() any { return otlptranslator.NewPrometheusConverter(nil) }
	if err := s.meta.load(filepath.Join(cfg.Path, metadataFile)); err != nil {
		logger.Warn("Metric metadata could not be restored; it is rebuilt as data arrives", zap.Error(err))
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
	if err := s.meta.save(filepath.Join(s.cfg.Path, metadataFile)); err != nil {
		errs = append(errs, fmt.Errorf("save metric metadata: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close TSDB: %w", err))
	}
	return errors.Join(errs...)
}

// Queryable is what the PromQL engine reads.
func (s *Store) Queryable() storage.Queryable { return s.db }

// DB returns the TSDB (stats, admin).
func (s *Store) DB() *tsdb.DB { return s.db }

// Stats returns the ingest statistics.
func (s *Store) Stats() *IngestStats { return s.stats }

// Rejected returns how many samples the TSDB refused since start.
func (s *Store) Rejected() int64 { return s.rejected.Load() }

// Metadata returns the type, unit and help of metric families seen.
func (s *Store) Metadata() map[string]metadata.Metadata { return s.meta.snapshot() }

// MetadataOf returns the metadata of one metric family.
func (s *Store) MetadataOf(family string) (metadata.Metadata, bool) { return s.meta.get(family) }

// Txn is a staged batch: samples are in the appender, not yet visible.
type Txn struct {
	s       *Store
	app     storage.AppenderV2
	meta    map[string]metadata.Metadata
	samples map[string]int
	total   int
	minT    int64
}

// ErrClosed is returned by Stage after Close.
var ErrClosed = errors.New("store is closed")

// Stage translates md to Prometheus series (Prometheus' OTLP translator) and
// appends them to a new appender. Samples the TSDB refuses (out of order,
// too old, duplicates) are counted and left out; they do not fail the batch.
func (s *Store) Stage(ctx context.Context, md pmetric.Metrics) (*Txn, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	t := &Txn{s: s, meta: map[string]metadata.Metadata{}, samples: map[string]int{}, minT: math.MaxInt64}
	t.app = &recordingAppender{AppenderV2: s.db.AppenderV2(ctx), txn: t}
	conv := s.convs.Get().(*otlptranslator.PrometheusConverter)
	conv.Reset(t.app)
	_, err := conv.FromMetrics(ctx, md, s.settings)
	conv.Reset(nil)
	s.convs.Put(conv)
	if err != nil {
		s.logger.Debug("Some samples were not stored", zap.Error(err))
	}
	return t, nil
}

// Commit makes the staged samples visible.
func (t *Txn) Commit() error {
	if err := t.app.Commit(); err != nil {
		return fmt.Errorf("commit samples to store: %w", err)
	}
	t.s.meta.merge(t.meta)
	t.s.stats.Add(t.samples, t.total)
	if h := t.s.lateHook; h != nil && t.total > 0 && t.minT < time.Now().Add(-t.s.lateAge).UnixMilli() {
		h(time.UnixMilli(t.minT))
	}
	return nil
}

// Rollback discards the staged samples.
func (t *Txn) Rollback() { _ = t.app.Rollback() }

// recordingAppender counts appended samples per metric family, keeps their
// metadata, and counts the samples the TSDB refused.
type recordingAppender struct {
	storage.AppenderV2
	txn *Txn
}

func (a *recordingAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	r, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		var partial *storage.AppendPartialError
		if !errors.As(err, &partial) {
			a.txn.s.rejected.Add(1)
			return r, err
		}
	}
	family := opts.MetricFamilyName
	if family == "" {
		family = ls.Get(labels.MetricName)
	}
	if _, ok := a.txn.meta[family]; !ok && opts.Metadata.Type != "" {
		a.txn.meta[family] = opts.Metadata
	}
	a.txn.samples[family]++
	a.txn.total++
	a.txn.minT = min(a.txn.minT, t)
	return r, err
}

// metaIndex maps metric family names to metadata.
type metaIndex struct {
	mu sync.RWMutex
	m  map[string]metadata.Metadata
}

func newMetaIndex() *metaIndex { return &metaIndex{m: map[string]metadata.Metadata{}} }

func (x *metaIndex) merge(m map[string]metadata.Metadata) {
	if len(m) == 0 {
		return
	}
	x.mu.RLock()
	changed := false
	for k, v := range m {
		if x.m[k] != v {
			changed = true
			break
		}
	}
	x.mu.RUnlock()
	if !changed {
		return
	}
	x.mu.Lock()
	for k, v := range m {
		x.m[k] = v
	}
	x.mu.Unlock()
}

func (x *metaIndex) get(k string) (metadata.Metadata, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	v, ok := x.m[k]
	return v, ok
}

func (x *metaIndex) snapshot() map[string]metadata.Metadata {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string]metadata.Metadata, len(x.m))
	for k, v := range x.m {
		out[k] = v
	}
	return out
}

// metadataFile keeps the metric metadata across restarts (the TSDB keeps
// samples, not types).
const metadataFile = "metadata.json"

func (x *metaIndex) save(path string) error {
	x.mu.RLock()
	b, err := json.Marshal(x.m)
	x.mu.RUnlock()
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (x *metaIndex) load(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	m := map[string]metadata.Metadata{}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	x.merge(m)
	return nil
}
