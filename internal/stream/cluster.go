package stream

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ClusterConfig makes StreamMetrics fleet-wide: every node publishes each
// committed batch to a shared, ordered log (NATS JetStream) and every stream
// reads that log, so a subscriber on any node receives the matching points
// ingested on any node. Off while NATS.URL is empty.
type ClusterConfig struct {
	// Node names this node in the origin header of what it publishes.
	// Empty: the host name.
	Node string `mapstructure:"node"`
	// NATS is the JetStream stream that carries the batches.
	NATS NATSConfig `mapstructure:"nats"`
}

// NATSConfig configures the JetStream stream of cluster mode.
type NATSConfig struct {
	// URL of the NATS server(s), comma separated (nats://host:4222).
	// Empty: cluster mode off.
	URL string `mapstructure:"url"`
	// Subject the batches are published on; the stream holds this subject
	// only.
	Subject string `mapstructure:"subject"`
	// StreamName is the JetStream stream, created (or updated to this
	// configuration) by every node.
	StreamName string `mapstructure:"stream_name"`
	// MaxBytes bounds the stream; the oldest batches are discarded beyond it.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// MaxAge discards batches older than this from the stream.
	MaxAge time.Duration `mapstructure:"max_age"`
	// Replicas of the stream in a clustered NATS (1 for a single server).
	Replicas int `mapstructure:"replicas"`
	// PublishBufferBytes bounds the committed batches waiting to be
	// published (NATS unavailable or slow); beyond it new batches are
	// dropped and counted.
	PublishBufferBytes int64 `mapstructure:"publish_buffer_bytes"`
	// PublishTimeout bounds one publish (until JetStream acknowledged it).
	PublishTimeout time.Duration `mapstructure:"publish_timeout"`
	// ReconnectWait is the pause between attempts to reach NATS.
	ReconnectWait time.Duration `mapstructure:"reconnect_wait"`
}

// Enabled reports whether cluster mode is on.
func (c *ClusterConfig) Enabled() bool { return c.NATS.URL != "" }

// DefaultClusterConfig returns the defaults (cluster mode off).
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{NATS: NATSConfig{
		Subject:            "metricsmodule.stream",
		StreamName:         "METRICSMODULE_STREAM",
		MaxBytes:           1 << 30,
		MaxAge:             time.Hour,
		Replicas:           1,
		PublishBufferBytes: 64 << 20,
		PublishTimeout:     5 * time.Second,
		ReconnectWait:      time.Second,
	}}
}

// Validate checks the cluster block; messages name the field.
func (c *ClusterConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	n := &c.NATS
	if n.Subject == "" {
		errs = append(errs, errors.New("cluster.nats.subject: must not be empty"))
	}
	if n.StreamName == "" {
		errs = append(errs, errors.New("cluster.nats.stream_name: must not be empty"))
	}
	if n.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("cluster.nats.max_bytes: must be positive, got %d", n.MaxBytes))
	}
	if n.MaxAge <= 0 {
		errs = append(errs, errors.New("cluster.nats.max_age: must be positive"))
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		errs = append(errs, fmt.Errorf("cluster.nats.replicas: must be 1 to 5, got %d", n.Replicas))
	}
	if n.PublishBufferBytes <= 0 {
		errs = append(errs, fmt.Errorf("cluster.nats.publish_buffer_bytes: must be positive, got %d", n.PublishBufferBytes))
	}
	if n.PublishTimeout <= 0 {
		errs = append(errs, errors.New("cluster.nats.publish_timeout: must be positive"))
	}
	if n.ReconnectWait <= 0 {
		errs = append(errs, errors.New("cluster.nats.reconnect_wait: must be positive"))
	}
	return errors.Join(errs...)
}

// ClusterLog is the shared, ordered log of cluster mode (JetStream in
// natslog). Its sequences are the same on every node: they are the
// subscriptions' sequences in cluster mode.
type ClusterLog interface {
	// Publish queues the pdata protobuf of one committed batch of points
	// data points. It never blocks: when the bounded publish buffer is full
	// the batch is dropped and counted (and the count is published to the
	// log as soon as it can be, for every stream to report).
	Publish(payload []byte, points int)
	// Bounds returns the first and last sequence the log holds (first is
	// last+1 when it is empty). It fails while the log is unreachable.
	Bounds(ctx context.Context) (first, last uint64, err error)
	// Read returns a reader from sequence from (0: from the next record
	// published).
	Read(from uint64) ClusterReader
	// Status says whether the node reaches the log and what it dropped.
	Status() ClusterStatus
}

// ClusterReader reads a ClusterLog in order. It reconnects by itself: Next
// waits while the log is unreachable.
type ClusterReader interface {
	// Next returns the next record; it fails only when ctx ends.
	Next(ctx context.Context) (ClusterRecord, error)
	// Close releases the reader.
	Close()
}

// ClusterRecord is one record of the log: a committed batch (Payload), or a
// report of batches a node dropped before it could publish them.
type ClusterRecord struct {
	// Seq is the log's sequence of the record.
	Seq uint64
	// Origin is the node that published it.
	Origin string
	// Time is when the origin committed the batch.
	Time time.Time
	// Payload is the batch as pdata protobuf (pmetric.ProtoMarshaler);
	// empty in a drop report.
	Payload []byte
	// DroppedBatches and DroppedPoints report what Origin dropped before
	// publishing (publish buffer full, or a batch over the server's
	// max_payload).
	DroppedBatches, DroppedPoints uint64
}

// ClusterStatus is the state of a node's link to the log.
type ClusterStatus struct {
	// Healthy is false while the log is unreachable or publishing fails.
	Healthy bool
	// Connected reports that the node is connected to NATS (even while
	// Healthy is still false, e.g. before the first publish).
	Connected bool
	// Message says why not healthy.
	Message string
	// Buffered is the number of committed batches waiting to be published.
	Buffered int
	// Published, DroppedBatches and DroppedPoints count since start.
	Published, DroppedBatches, DroppedPoints uint64
}

// ErrUnavailable refuses a resume while the cluster log is unreachable.
var ErrUnavailable = errors.New("the stream's cluster log (NATS JetStream) is unreachable")
