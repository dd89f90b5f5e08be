package statsdexporter

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/statsd"
)

// Transports.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
)

// maxUDPPayload is the largest UDP payload over IPv4.
const maxUDPPayload = 65507

// Config is the exporter configuration.
type Config struct {
	// Endpoint is the StatsD server, host:port.
	Endpoint string `mapstructure:"endpoint"`
	// Transport is udp or tcp.
	Transport string `mapstructure:"transport"`
	// Prefix is put before every metric name, followed by a '.'.
	Prefix string `mapstructure:"prefix"`
	// TagFormat is none, dogstatsd, influxdb or graphite.
	TagFormat string `mapstructure:"tag_format"`
	// SampleRate in (0, 1] thins counters and histogram lines; sent lines
	// carry |@rate so that the server scales them back.
	SampleRate float64 `mapstructure:"sample_rate"`
	// MaxPacketSize is the most bytes of one UDP datagram (or TCP write).
	MaxPacketSize int `mapstructure:"max_packet_size"`
	// Histogram says how histograms and summaries are sent.
	Histogram HistogramConfig `mapstructure:"histogram"`
	// ResourceToTelemetryConversion adds the resource attributes as tags.
	ResourceToTelemetryConversion ResourceToTelemetryConfig `mapstructure:"resource_to_telemetry_conversion"`
	// MetricExpiration is how long the last value of an idle cumulative
	// series is kept to compute increments.
	MetricExpiration time.Duration `mapstructure:"metric_expiration"`

	// TimeoutConfig is the timeout of one send attempt.
	TimeoutConfig exporterhelper.TimeoutConfig `mapstructure:",squash"`
	// QueueConfig is the exporterhelper sending queue.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// RetryConfig is the exporterhelper retry of failed sends.
	RetryConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`
}

// HistogramConfig says how histograms are sent.
type HistogramConfig struct {
	// Mode is aggregates (count, sum, min, max and quantile gauges) or
	// observations (one weighted timer/histogram line per bucket).
	Mode string `mapstructure:"mode"`
	// Quantiles are the quantile gauges of the aggregates mode.
	Quantiles []float64 `mapstructure:"quantiles"`
	// ObservationType is the StatsD type of observations: ms, h or d.
	ObservationType string `mapstructure:"observation_type"`
}

// ResourceToTelemetryConfig turns resource attributes into tags.
type ResourceToTelemetryConfig struct {
	// Enabled adds every resource attribute as a tag.
	Enabled bool `mapstructure:"enabled"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; messages name the field.
func (cfg *Config) Validate() error {
	var errs []error
	if err := validateEndpoint(cfg.Endpoint); err != nil {
		errs = append(errs, err)
	}
	if cfg.Transport != TransportUDP && cfg.Transport != TransportTCP {
		errs = append(errs, fmt.Errorf("transport: %q is not one of udp, tcp", cfg.Transport))
	}
	if i := strings.IndexFunc(cfg.Prefix, func(r rune) bool { return statsd.SanitizeName(string(r)) != string(r) }); i >= 0 {
		errs = append(errs, fmt.Errorf("prefix: %q holds %q; use letters, digits, '_', '-' and '.'", cfg.Prefix, cfg.Prefix[i:i+1]))
	}
	if !validTagFormat(cfg.TagFormat) {
		errs = append(errs, fmt.Errorf("tag_format: %q is not one of %s", cfg.TagFormat, joinFormats()))
	}
	if !(cfg.SampleRate > 0 && cfg.SampleRate <= 1) {
		errs = append(errs, fmt.Errorf("sample_rate: must be in (0, 1], got %v", cfg.SampleRate))
	}
	if cfg.MaxPacketSize < 64 || cfg.MaxPacketSize > maxUDPPayload {
		errs = append(errs, fmt.Errorf("max_packet_size: must be between 64 and %d, got %d", maxUDPPayload, cfg.MaxPacketSize))
	}
	switch statsd.HistogramMode(cfg.Histogram.Mode) {
	case statsd.HistogramAggregates, statsd.HistogramObservations:
	default:
		errs = append(errs, fmt.Errorf("histogram.mode: %q is not one of aggregates, observations", cfg.Histogram.Mode))
	}
	for i, q := range cfg.Histogram.Quantiles {
		if !(q >= 0 && q <= 1) {
			errs = append(errs, fmt.Errorf("histogram.quantiles[%d]: %v is not in [0, 1]", i, q))
		}
	}
	switch statsd.Type(cfg.Histogram.ObservationType) {
	case statsd.Timer, statsd.Histogram, statsd.Distribution:
	default:
		errs = append(errs, fmt.Errorf("histogram.observation_type: %q is not one of ms, h, d", cfg.Histogram.ObservationType))
	}
	if cfg.MetricExpiration <= 0 {
		errs = append(errs, fmt.Errorf("metric_expiration: must be positive, got %s", cfg.MetricExpiration))
	}
	return errors.Join(errs...)
}

func validateEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("endpoint: must be set to host:port, e.g. localhost:8125")
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint: %q is not host:port: %w", endpoint, err)
	}
	if host == "" {
		return fmt.Errorf("endpoint: %q has no host", endpoint)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("endpoint: %q has no valid port (1-65535)", endpoint)
	}
	return nil
}

func validTagFormat(s string) bool {
	for _, f := range statsd.TagFormats {
		if string(f) == s {
			return true
		}
	}
	return false
}

func joinFormats() string {
	names := make([]string, len(statsd.TagFormats))
	for i, f := range statsd.TagFormats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}
