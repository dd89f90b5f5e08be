package stream

import (
	"errors"
	"fmt"
	"time"
)

// Config bounds the hub. The worst-case memory of batches held for
// subscribers is MaxTotalBytes (best-effort buffers and in-memory replay logs
// together); within it each subscription is bounded by MaxBufferBytes (best
// effort) or Replay.MaxBytes (replay log).
type Config struct {
	// MaxSubscribers is the most subscriptions at once: streaming ones and
	// replay subscriptions kept for a resume. At the limit, a new one takes
	// the slot of the longest-idle replay subscription without a stream.
	MaxSubscribers int `mapstructure:"max_subscribers"`
	// MaxBatchSize is the largest batch_size a stream may ask for.
	MaxBatchSize int `mapstructure:"max_batch_size"`
	// BufferSize is the best-effort buffer, in batches, of a stream that does
	// not set buffer_size.
	BufferSize int `mapstructure:"buffer_size"`
	// MaxBufferSize is the largest buffer_size a stream may ask for.
	MaxBufferSize int `mapstructure:"max_buffer_size"`
	// MaxBufferBytes bounds one best-effort buffer, in encoded bytes.
	MaxBufferBytes int64 `mapstructure:"max_buffer_bytes"`
	// MaxTotalBytes bounds the batches held in memory by all subscriptions
	// together. A subscription that receives data while the hub is over it
	// drops (best effort) or trims (replay log) its own oldest batches.
	MaxTotalBytes int64 `mapstructure:"max_total_bytes"`
	// Replay configures the replay logs of at-least-once and exactly-once
	// subscriptions.
	Replay ReplayConfig `mapstructure:"replay"`
	// Cluster makes streams fleet-wide through NATS JetStream (off by
	// default).
	Cluster ClusterConfig `mapstructure:"cluster"`
}

// ReplayConfig configures the replay logs.
type ReplayConfig struct {
	// MaxBytes bounds one subscription's log, in encoded bytes.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MaxAge drops batches older than this from the logs.
	MaxAge time.Duration `mapstructure:"max_age"`
	// IdleTTL is how long a subscription without a stream is kept (and keeps
	// collecting into its log) for a resume.
	IdleTTL time.Duration `mapstructure:"idle_ttl"`
	// Directory keeps the logs on disk (one folder per subscription) instead
	// of in memory; they then survive a restart. Empty: in memory.
	Directory string `mapstructure:"directory"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxSubscribers: 64,
		MaxBatchSize:   10_000,
		BufferSize:     100,
		MaxBufferSize:  10_000,
		MaxBufferBytes: 16 << 20,
		MaxTotalBytes:  256 << 20,
		Replay: ReplayConfig{
			MaxBytes: 64 << 20,
			MaxAge:   15 * time.Minute,
			IdleTTL:  15 * time.Minute,
		},
		Cluster: DefaultClusterConfig(),
	}
}

// Validate checks the configuration; messages name the field.
func (c *Config) Validate() error {
	var errs []error
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", name, v))
		}
	}
	positive("max_subscribers", int64(c.MaxSubscribers))
	positive("max_batch_size", int64(c.MaxBatchSize))
	positive("buffer_size", int64(c.BufferSize))
	positive("max_buffer_size", int64(c.MaxBufferSize))
	positive("max_buffer_bytes", c.MaxBufferBytes)
	positive("max_total_bytes", c.MaxTotalBytes)
	positive("replay.max_bytes", c.Replay.MaxBytes)
	if c.BufferSize > c.MaxBufferSize && c.MaxBufferSize > 0 {
		errs = append(errs, fmt.Errorf("buffer_size: %d is more than max_buffer_size %d", c.BufferSize, c.MaxBufferSize))
	}
	if c.Replay.MaxAge <= 0 {
		errs = append(errs, errors.New("replay.max_age: must be positive"))
	}
	if c.Replay.IdleTTL <= 0 {
		errs = append(errs, errors.New("replay.idle_ttl: must be positive"))
	}
	if err := c.Cluster.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Cluster.Enabled() && c.Replay.Directory != "" {
		errs = append(errs, errors.New("replay.directory: not used in cluster mode (the JetStream stream is the replay log); remove replay.directory or cluster.nats.url"))
	}
	return errors.Join(errs...)
}

// Stream option defaults and bounds (StreamOptions).
const (
	defaultBatchSize    = 100
	defaultBatchTimeout = time.Second
	defaultHeartbeat    = 10 * time.Second
	minHeartbeat        = 10 * time.Millisecond
	maxBatchTimeout     = time.Minute
)
