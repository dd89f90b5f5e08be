package convert

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Temporality is the aggregation temporality of emitted sums and histograms.
type Temporality string

const (
	// TemporalityCumulative emits running totals since the series' start time.
	TemporalityCumulative Temporality = "cumulative"
	// TemporalityDelta emits the change since the previous emission.
	TemporalityDelta Temporality = "delta"
)

// HistogramKind selects the bucket layout of histograms built from observations.
type HistogramKind string

const (
	// HistogramExplicit uses fixed bucket bounds (Config.Histogram.Buckets).
	HistogramExplicit HistogramKind = "explicit"
	// HistogramExponential uses OpenTelemetry base-2 exponential buckets.
	HistogramExponential HistogramKind = "exponential"
)

// DefaultBuckets are the explicit bucket bounds used when none are configured
// (the Prometheus client defaults, in seconds).
var DefaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// HistogramConfig configures histograms aggregated from observations.
type HistogramConfig struct {
	// Kind is explicit or exponential.
	Kind HistogramKind `mapstructure:"kind"`
	// Buckets are the explicit upper bounds, strictly increasing.
	Buckets []float64 `mapstructure:"buckets"`
	// MaxSize is the most buckets of an exponential histogram.
	MaxSize int32 `mapstructure:"max_size"`
}

// SummaryConfig configures summaries aggregated from observations.
type SummaryConfig struct {
	// Quantiles reported, each in [0,1].
	Quantiles []float64 `mapstructure:"quantiles"`
	// RelativeAccuracy of the DDSketch quantile sketch, in (0,1).
	RelativeAccuracy float64 `mapstructure:"relative_accuracy"`
}

// Limits bound what one record may carry and how many series are kept.
type Limits struct {
	// MaxNameBytes is the longest metric name.
	MaxNameBytes int `mapstructure:"max_name_bytes"`
	// MaxLabels is the most labels per record.
	MaxLabels int `mapstructure:"max_labels"`
	// MaxLabelValueBytes is the longest label value.
	MaxLabelValueBytes int `mapstructure:"max_label_value_bytes"`
	// MaxLabelNameBytes is the longest label name. 0 = unlimited.
	MaxLabelNameBytes int `mapstructure:"max_label_name_bytes"`
	// MaxUnitBytes is the longest unit. 0 = unlimited.
	MaxUnitBytes int `mapstructure:"max_unit_bytes"`
	// MaxDescriptionBytes is the longest description. 0 = unlimited.
	MaxDescriptionBytes int `mapstructure:"max_description_bytes"`
	// MaxBuckets is the most buckets of a pre-aggregated histogram record
	// (explicit bounds + 1, or exponential positive + negative buckets).
	// 0 = unlimited.
	MaxBuckets int `mapstructure:"max_buckets"`
	// MaxResourceAttributes is the most resource attributes of a request or
	// record (each becomes a target_info label). 0 = unlimited.
	MaxResourceAttributes int `mapstructure:"max_resource_attributes"`
	// MaxResourceAttributeBytes is the longest resource attribute name or
	// value (service.name becomes the job label). 0 = unlimited.
	MaxResourceAttributeBytes int `mapstructure:"max_resource_attribute_bytes"`
	// MaxFutureSkew is how far in the future a timestamp may be.
	MaxFutureSkew time.Duration `mapstructure:"max_future_skew"`
	// MaxSeriesPerMetric is the most series of one metric kept by the
	// accumulator; a record that would create one more is refused. 0 = unlimited.
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`
	// MaxMetricNames is the most distinct metric names. 0 = unlimited.
	MaxMetricNames int `mapstructure:"max_metric_names"`
}

// Config configures conversion and accumulation.
type Config struct {
	// CounterTemporality of emitted counter sums.
	CounterTemporality Temporality `mapstructure:"counter_temporality"`
	// HistogramTemporality of histograms and timers built from observations.
	HistogramTemporality Temporality `mapstructure:"histogram_temporality"`
	// Histogram layout of observations.
	Histogram HistogramConfig `mapstructure:"histogram"`
	// Summary settings of observations.
	Summary SummaryConfig `mapstructure:"summary"`
	// Limits on records and series.
	Limits Limits `mapstructure:"limits"`
	// SeriesTTL is how long a series without records keeps its state; after
	// that a counter restarts with a new start time.
	SeriesTTL time.Duration `mapstructure:"series_ttl"`
	// SeriesCacheSize is the most series the series cache remembers (about
	// 0.5 KiB each with 4 labels); 0 disables it. The cache lets a record
	// of a series seen before skip label decoding, validation and keying.
	SeriesCacheSize int `mapstructure:"series_cache_size"`
}

// DefaultConfig returns the default conversion settings.
func DefaultConfig() Config {
	return Config{
		CounterTemporality:   TemporalityCumulative,
		HistogramTemporality: TemporalityCumulative,
		Histogram: HistogramConfig{
			Kind:    HistogramExplicit,
			Buckets: append([]float64(nil), DefaultBuckets...),
			MaxSize: 160,
		},
		Summary: SummaryConfig{
			Quantiles:        []float64{0.5, 0.9, 0.95, 0.99},
			RelativeAccuracy: 0.01,
		},
		Limits: Limits{
			MaxNameBytes:              255,
			MaxLabels:                 32,
			MaxLabelValueBytes:        2048,
			MaxLabelNameBytes:         256,
			MaxUnitBytes:              64,
			MaxDescriptionBytes:       4096,
			MaxBuckets:                160,
			MaxResourceAttributes:     64,
			MaxResourceAttributeBytes: 2048,
			MaxFutureSkew:             5 * time.Minute,
			MaxSeriesPerMetric:        100_000,
			MaxMetricNames:            100_000,
		},
		SeriesTTL:       time.Hour,
		SeriesCacheSize: DefaultSeriesCacheSize,
	}
}

// Validate reports settings that cannot work, naming the field.
func (c *Config) Validate() error {
	var errs []error
	for name, t := range map[string]Temporality{"counter_temporality": c.CounterTemporality, "histogram_temporality": c.HistogramTemporality} {
		if t != TemporalityCumulative && t != TemporalityDelta {
			errs = append(errs, fmt.Errorf("%s: %q is not one of cumulative, delta", name, t))
		}
	}
	switch c.Histogram.Kind {
	case HistogramExplicit:
		if len(c.Histogram.Buckets) == 0 {
			errs = append(errs, errors.New("histogram.buckets: at least one bound is needed for explicit histograms"))
		}
		if !sort.Float64sAreSorted(c.Histogram.Buckets) {
			errs = append(errs, errors.New("histogram.buckets: bounds must be increasing"))
		}
		for i := 1; i < len(c.Histogram.Buckets); i++ {
			if c.Histogram.Buckets[i] == c.Histogram.Buckets[i-1] {
				errs = append(errs, fmt.Errorf("histogram.buckets: bound %v appears twice", c.Histogram.Buckets[i]))
			}
		}
	case HistogramExponential:
		if c.Histogram.MaxSize < 2 {
			errs = append(errs, errors.New("histogram.max_size: must be at least 2"))
		}
	default:
		errs = append(errs, fmt.Errorf("histogram.kind: %q is not one of explicit, exponential", c.Histogram.Kind))
	}
	for _, q := range c.Summary.Quantiles {
		if q < 0 || q > 1 {
			errs = append(errs, fmt.Errorf("summary.quantiles: %v is outside [0,1]", q))
		}
	}
	if c.Summary.RelativeAccuracy <= 0 || c.Summary.RelativeAccuracy >= 1 {
		errs = append(errs, errors.New("summary.relative_accuracy: must be in (0,1)"))
	}
	if c.Limits.MaxNameBytes <= 0 {
		errs = append(errs, errors.New("limits.max_name_bytes: must be positive"))
	}
	if c.Limits.MaxLabels < 0 {
		errs = append(errs, errors.New("limits.max_labels: must not be negative"))
	}
	if c.Limits.MaxLabelValueBytes <= 0 {
		errs = append(errs, errors.New("limits.max_label_value_bytes: must be positive"))
	}
	for key, v := range map[string]int{
		"max_label_name_bytes": c.Limits.MaxLabelNameBytes, "max_unit_bytes": c.Limits.MaxUnitBytes,
		"max_description_bytes": c.Limits.MaxDescriptionBytes, "max_buckets": c.Limits.MaxBuckets,
		"max_resource_attributes": c.Limits.MaxResourceAttributes, "max_resource_attribute_bytes": c.Limits.MaxResourceAttributeBytes,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("limits.%s: must not be negative (0 = unlimited), got %d", key, v))
		}
	}
	if c.Histogram.Kind == HistogramExplicit && c.Limits.MaxBuckets > 0 && len(c.Histogram.Buckets)+1 > c.Limits.MaxBuckets {
		errs = append(errs, fmt.Errorf("histogram.buckets: %d bounds make %d buckets, over limits.max_buckets (%d)",
			len(c.Histogram.Buckets), len(c.Histogram.Buckets)+1, c.Limits.MaxBuckets))
	}
	if c.Histogram.Kind == HistogramExponential && c.Limits.MaxBuckets > 0 && int(c.Histogram.MaxSize) > c.Limits.MaxBuckets {
		errs = append(errs, fmt.Errorf("histogram.max_size: %d is over limits.max_buckets (%d)", c.Histogram.MaxSize, c.Limits.MaxBuckets))
	}
	if c.Limits.MaxFutureSkew < 0 {
		errs = append(errs, errors.New("limits.max_future_skew: must not be negative"))
	}
	if c.Limits.MaxSeriesPerMetric < 0 || c.Limits.MaxMetricNames < 0 {
		errs = append(errs, errors.New("limits: series and name limits must not be negative"))
	}
	if c.SeriesCacheSize < 0 {
		errs = append(errs, fmt.Errorf("series_cache_size: must not be negative (0 disables the cache), got %d", c.SeriesCacheSize))
	}
	if c.SeriesTTL <= 0 {
		errs = append(errs, errors.New("series_ttl: must be positive"))
	}
	return errors.Join(errs...)
}
