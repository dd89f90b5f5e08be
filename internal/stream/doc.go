// Package stream is the fan-out hub behind StreamMetrics: the receiver hands
// it every batch the pipeline accepted, and it delivers the data points each
// subscription's filter selects, in numbered batches, with the subscription's
// quality of service (a bounded drop-oldest buffer, or a replay log that a
// reconnecting client resumes from).
//
// The ingest path never waits for a subscriber: Stage converts only what some
// filter matches (once, shared by all the subscriptions it matches), Commit
// appends to per-subscription queues under a short lock, and each stream
// sends from its own goroutine. A subscriber that cannot keep up loses its
// oldest batches (best effort, counted) or falls out of its replay log
// (at least once, a DataLossError).
//
// Sequences are per subscription: from 1, without gaps, assigned when a batch
// is closed; a batch never changes after that, so a client can deduplicate by
// sequence. Best-effort subscriptions end with their stream; a subscription
// with a replay log outlives its stream for Config.Replay.IdleTTL and keeps
// collecting meanwhile, so that a client can resume it.
//
// In cluster mode (WithCluster, Config.Cluster) the hub delivers nothing
// itself: Commit publishes the batch to a shared ClusterLog (NATS JetStream,
// package natslog), and every stream reads that log from its own position,
// so it carries the batches of every node. Sequences are then the log's
// (the same on every node, increasing, with gaps where a record had nothing
// for the filter), and the log is the replay log (cluster_stream.go).
package stream // import "github.com/metricsmodule/metricsmodule/internal/stream"
