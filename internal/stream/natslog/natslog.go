// Package natslog is the cluster log of the stream hub (stream.ClusterLog)
// on NATS JetStream: one stream, one subject, one message per committed
// batch (pdata protobuf, with headers for the origin node, the commit time
// and the point count). Publishing goes through a bounded in-memory buffer
// drained by one goroutine, in commit order, each message with a
// Nats-Msg-Id so that a retry after a lost acknowledgement is not stored
// twice. Readers are ordered consumers that reconnect by themselves.
package natslog // import "github.com/metricsmodule/metricsmodule/internal/stream/natslog"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/stream"
)

// Message headers.
const (
	// HeaderOrigin names the node that committed the batch.
	HeaderOrigin = "Metrics-Origin"
	// HeaderTime is the commit time, unix nanoseconds.
	HeaderTime = "Metrics-Time"
	// HeaderPoints is the number of data points of the batch.
	HeaderPoints = "Metrics-Points"
	// HeaderDroppedBatches and HeaderDroppedPoints report batches the
	// origin dropped before publishing (a message without payload).
	HeaderDroppedBatches = "Metrics-Dropped-Batches"
	HeaderDroppedPoints  = "Metrics-Dropped-Points"
)

// duplicateWindow is the JetStream de-duplication window of the stream
// (bounded by max_age).
const duplicateWindow = 2 * time.Minute

// pullBatch bounds the messages a reader holds ahead of its stream.
const pullBatch = 16

// pullExpiry is how long one pull request of a reader waits.
const pullExpiry = 5 * time.Second

// publishWindow bounds the batches in flight (published, not yet
// acknowledged).
const publishWindow = 64

// Log is a stream.ClusterLog on JetStream. Open never fails because NATS is
// unreachable: the log connects, creates the stream and publishes in the
// background, and reports its state through Status.
type Log struct {
	cfg    stream.NATSConfig
	node   string
	boot   string // distinguishes this process's message ids
	logger *zap.Logger
	nc     *nats.Conn
	js     jetstream.JetStream

	mu       sync.Mutex
	queue    []pending
	head     int
	bytes    int64
	wake     chan struct{}
	nextID   uint64
	dropB    uint64 // dropped, not yet reported to the log
	dropP    uint64
	lastErr  error
	ready    bool // the stream exists as configured
	onChange func(stream.ClusterStatus)

	published atomic.Uint64
	droppedB  atomic.Uint64
	droppedP  atomic.Uint64

	done chan struct{}
	wg   sync.WaitGroup
}

type pending struct {
	payload []byte
	points  int
	at      time.Time
	id      uint64
}

var _ stream.ClusterLog = (*Log)(nil)

// Open connects to cfg.NATS.URL (retrying in the background when it is
// unreachable) and starts the publisher. onChange, if set, is called when
// the log turns healthy or degraded.
func Open(cfg stream.ClusterConfig, logger *zap.Logger, onChange func(stream.ClusterStatus)) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	node := cfg.Node
	if node == "" {
		node, _ = os.Hostname()
	}
	l := &Log{
		cfg: cfg.NATS, node: node, boot: nuid.Next(), logger: logger, wake: make(chan struct{}, 1),
		done: make(chan struct{}), onChange: onChange,
		lastErr: errors.New("connecting to " + cfg.NATS.URL),
	}
	nc, err := nats.Connect(cfg.NATS.URL,
		nats.Name("metricsmodule "+node),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.NATS.ReconnectWait),
		nats.Timeout(cfg.NATS.PublishTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case <-l.done:
				return // Close
			default:
			}
			if err == nil {
				err = errors.New("disconnected")
			}
			l.setErr(fmt.Errorf("nats: %w", err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) { l.kick() }),
		nats.ConnectHandler(func(*nats.Conn) { l.kick() }),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster.nats.url: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.NATS.PublishTimeout),
		jetstream.WithPublishAsyncMaxPending(2*publishWindow))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	l.mu.Lock() // the connection's handlers may already run
	l.nc, l.js = nc, js
	l.mu.Unlock()
	l.wg.Go(l.publisher)
	return l, nil
}

// Close publishes what is buffered while ctx lasts and NATS answers, then
// stops the publisher (batches still buffered are lost and counted) and the
// connection. It is idempotent.
func (l *Log) Close(ctx context.Context) {
	select {
	case <-l.done:
		return
	default:
	}
	tick := time.NewTicker(10 * time.Millisecond)
	for st := l.Status(); st.Buffered > 0 && st.Healthy; st = l.Status() {
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	tick.Stop()
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	if n := len(l.queue) - l.head; n > 0 {
		var points uint64
		for _, p := range l.queue[l.head:] {
			points += uint64(p.points)
		}
		l.droppedB.Add(uint64(n))
		l.droppedP.Add(points)
		l.logger.Warn("Batches not published to the cluster log at shutdown", zap.Int("batches", n), zap.Uint64("points", points))
	}
	l.queue, l.head, l.bytes = nil, 0, 0
	l.mu.Unlock()
	l.nc.Close()
}

// Publish queues a committed batch; see stream.ClusterLog.
func (l *Log) Publish(payload []byte, points int) {
	l.mu.Lock()
	if l.bytes+int64(len(payload)) > l.cfg.PublishBufferBytes {
		l.dropB++
		l.dropP += uint64(points)
		l.mu.Unlock()
		l.droppedB.Add(1)
		l.droppedP.Add(uint64(points))
		l.kick()
		return
	}
	l.nextID++
	l.queue = append(l.queue, pending{payload: payload, points: points, at: time.Now(), id: l.nextID})
	l.bytes += int64(len(payload))
	l.mu.Unlock()
	l.kick()
}

func (l *Log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Status reports the link to the log.
func (l *Log) Status() stream.ClusterStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statusLocked()
}

func (l *Log) statusLocked() stream.ClusterStatus {
	s := stream.ClusterStatus{
		Healthy:        l.lastErr == nil,
		Connected:      l.nc != nil && l.nc.IsConnected(),
		Buffered:       len(l.queue) - l.head,
		Published:      l.published.Load(),
		DroppedBatches: l.droppedB.Load(),
		DroppedPoints:  l.droppedP.Load(),
	}
	if l.lastErr != nil {
		s.Message = fmt.Sprintf("%v; %d batches buffered, %d dropped (cluster.nats.publish_buffer_bytes)", l.lastErr, s.Buffered, s.DroppedBatches)
	}
	return s
}

// setErr records the link state (nil: healthy) and reports a change.
func (l *Log) setErr(err error) {
	l.mu.Lock()
	changed := (l.lastErr == nil) != (err == nil)
	l.lastErr = err
	if err != nil {
		l.ready = false // check the stream again once back
	}
	st := l.statusLocked()
	cb := l.onChange
	l.mu.Unlock()
	if !changed {
		return
	}
	if err != nil {
		l.logger.Warn("Cluster log degraded: streams carry no new batches until it is back", zap.Error(err))
	} else {
		l.logger.Info("Cluster log reachable", zap.String("stream", l.cfg.StreamName))
	}
	if cb != nil {
		cb(st)
	}
}

// publisher drains the buffer in order, retrying each batch until JetStream
// acknowledges it.
func (l *Log) publisher() {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		err := l.drain()
		if err == nil {
			select {
			case <-l.done:
				return
			case <-l.wake:
			}
			continue
		}
		l.setErr(err)
		retry.Reset(l.cfg.ReconnectWait)
		select {
		case <-l.done:
			return
		case <-retry.C:
		}
	}
}

// drain publishes what is buffered, up to publishWindow batches in flight;
// it returns the first failure. Batches are published in commit order; after
// a failure the batches from the failed one on are published again (the
// message ids keep JetStream from storing any twice), so a retried batch can
// land after later batches of the same node.
func (l *Log) drain() error {
	if !l.isReady() {
		if err := l.ensureStream(); err != nil {
			return err
		}
	}
	for {
		select {
		case <-l.done:
			return nil
		default:
		}
		l.mu.Lock()
		dropB, dropP := l.dropB, l.dropP
		window := append([]pending(nil), l.queue[l.head:min(len(l.queue), l.head+publishWindow)]...)
		l.mu.Unlock()
		if dropB > 0 {
			if err := l.publishDrops(dropB, dropP); err != nil {
				return err
			}
			l.mu.Lock()
			l.dropB -= dropB
			l.dropP -= dropP
			l.mu.Unlock()
			continue
		}
		if len(window) == 0 {
			l.setErr(nil)
			return nil
		}
		settled, err := l.publishWindow(window)
		l.pop(window[:settled])
		if err != nil {
			return err
		}
	}
}

// publishWindow publishes batches asynchronously and waits for their
// acknowledgements in order; it returns how many from the front are settled
// (stored, or dropped as too large) and the first failure.
func (l *Log) publishWindow(window []pending) (int, error) {
	futures := make([]jetstream.PubAckFuture, len(window))
	tooBig := make([]bool, len(window))
	var sendErr error
	for i, p := range window {
		f, err := l.js.PublishMsgAsync(l.batchMsg(p))
		if errors.Is(err, nats.ErrMaxPayload) {
			tooBig[i] = true
			continue
		}
		if err != nil {
			sendErr = fmt.Errorf("publish to JetStream stream %q: %w", l.cfg.StreamName, err)
			break
		}
		futures[i] = f
	}
	// a bound of our own on the wait, whatever becomes of a future
	deadline := time.NewTimer(l.cfg.PublishTimeout + time.Second)
	defer deadline.Stop()
	for i, p := range window {
		switch {
		case tooBig[i]:
			l.logger.Warn("Batch not published: larger than the NATS server's max_payload", zap.Int("bytes", len(p.payload)),
				zap.Int("points", p.points), zap.Int64("max_payload", l.nc.MaxPayload()))
			l.mu.Lock()
			l.dropB++
			l.dropP += uint64(p.points)
			l.mu.Unlock()
			l.droppedB.Add(1)
			l.droppedP.Add(uint64(p.points))
			continue
		case futures[i] == nil:
			return i, sendErr
		}
		select {
		case <-futures[i].Ok():
			l.published.Add(1)
		case err := <-futures[i].Err():
			l.noteSendErr(err)
			return i, fmt.Errorf("publish to JetStream stream %q: %w", l.cfg.StreamName, err)
		case <-deadline.C:
			return i, fmt.Errorf("publish to JetStream stream %q: no acknowledgement within cluster.nats.publish_timeout (%s)", l.cfg.StreamName, l.cfg.PublishTimeout)
		case <-l.done:
			return i, nil
		}
	}
	return len(window), sendErr
}

// pop removes the settled batches from the front of the buffer.
func (l *Log) pop(settled []pending) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range settled {
		l.queue[l.head] = pending{}
		l.head++
		l.bytes -= int64(len(p.payload))
	}
	if l.head == len(l.queue) {
		l.queue, l.head = l.queue[:0], 0
	} else if l.head >= 64 && 2*l.head >= len(l.queue) {
		n := copy(l.queue, l.queue[l.head:])
		clear(l.queue[n:])
		l.queue, l.head = l.queue[:n], 0
	}
}

func (l *Log) isReady() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

// ensureStream creates the stream, or updates it to the configuration.
func (l *Log) ensureStream() error {
	if !l.nc.IsConnected() {
		return fmt.Errorf("nats: not connected to %s", l.cfg.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
	defer cancel()
	_, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       l.cfg.StreamName,
		Subjects:   []string{l.cfg.Subject},
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxBytes:   l.cfg.MaxBytes,
		MaxAge:     l.cfg.MaxAge,
		MaxMsgs:    -1,
		Storage:    jetstream.FileStorage,
		Replicas:   l.cfg.Replicas,
		Duplicates: min(duplicateWindow, l.cfg.MaxAge),
	})
	if err != nil {
		return fmt.Errorf("create JetStream stream %q (cluster.nats.stream_name): %w", l.cfg.StreamName, err)
	}
	l.mu.Lock()
	l.ready = true
	l.mu.Unlock()
	return nil
}

func (l *Log) msg(id string) *nats.Msg {
	m := nats.NewMsg(l.cfg.Subject)
	m.Header.Set(HeaderOrigin, l.node)
	m.Header.Set(jetstream.MsgIDHeader, l.node+"."+l.boot+"."+id)
	return m
}

func (l *Log) batchMsg(p pending) *nats.Msg {
	m := l.msg(strconv.FormatUint(p.id, 10))
	m.Header.Set(HeaderTime, strconv.FormatInt(p.at.UnixNano(), 10))
	m.Header.Set(HeaderPoints, strconv.Itoa(p.points))
	m.Data = p.payload
	return m
}

func (l *Log) publishDrops(batches, points uint64) error {
	m := l.msg("d" + strconv.FormatUint(l.droppedB.Load(), 10))
	m.Header.Set(HeaderTime, strconv.FormatInt(time.Now().UnixNano(), 10))
	m.Header.Set(HeaderDroppedBatches, strconv.FormatUint(batches, 10))
	m.Header.Set(HeaderDroppedPoints, strconv.FormatUint(points, 10))
	return l.send(m)
}

func (l *Log) send(m *nats.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.PublishTimeout)
	defer cancel()
	if _, err := l.js.PublishMsg(ctx, m); err != nil {
		l.noteSendErr(err)
		return fmt.Errorf("publish to JetStream stream %q: %w", l.cfg.StreamName, err)
	}
	return nil
}

// noteSendErr makes the next drain check the stream again when a publish
// found no stream (e.g. a server restarted without its store).
func (l *Log) noteSendErr(err error) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) {
		l.mu.Lock()
		l.ready = false
		l.mu.Unlock()
	}
}

// Bounds returns the first and last sequence the stream holds.
func (l *Log) Bounds(ctx context.Context) (first, last uint64, err error) {
	s, err := l.js.Stream(ctx, l.cfg.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	info := s.CachedInfo()
	first, last = info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		first = last + 1
	}
	return first, last, nil
}

// Read returns a reader from sequence from (0: from the next record).
func (l *Log) Read(from uint64) stream.ClusterReader {
	return &reader{l: l, next: from}
}

// reader is an ordered consumer that it recreates, from the sequence after
// the last record it returned, whenever it fails.
type reader struct {
	l    *Log
	next uint64 // 0: not positioned yet
	it   jetstream.MessagesContext
}

// Next returns the next record; it waits (retrying every reconnect_wait)
// while JetStream is unreachable and fails only when ctx ends.
func (r *reader) Next(ctx context.Context) (stream.ClusterRecord, error) {
	for {
		if err := ctx.Err(); err != nil {
			return stream.ClusterRecord{}, err
		}
		if r.it == nil {
			if err := r.open(ctx); err != nil {
				if ctx.Err() != nil {
					return stream.ClusterRecord{}, ctx.Err()
				}
				if err := r.pause(ctx); err != nil {
					return stream.ClusterRecord{}, err
				}
				continue
			}
		}
		msg, err := r.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			r.it.Stop()
			r.it = nil
			if ctx.Err() != nil {
				return stream.ClusterRecord{}, ctx.Err()
			}
			if err := r.pause(ctx); err != nil {
				return stream.ClusterRecord{}, err
			}
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := meta.Sequence.Stream
		r.next = seq + 1
		return record(seq, msg), nil
	}
}

func (r *reader) pause(ctx context.Context) error {
	t := time.NewTimer(r.l.cfg.ReconnectWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// open creates the ordered consumer at r.next (positioning a new reader
// after the stream's last sequence).
func (r *reader) open(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, r.l.cfg.PublishTimeout)
	defer cancel()
	if r.next == 0 {
		_, last, err := r.l.Bounds(octx)
		if err != nil {
			return err
		}
		r.next = last + 1
	}
	// the stream holds the one subject: no subject filter (filter_subjects
	// needs NATS 2.10)
	cons, err := r.l.js.OrderedConsumer(octx, r.l.cfg.StreamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   r.next,
	})
	if err != nil {
		return err
	}
	// short pulls with idle heartbeats: a consumer that stalls (a lost pull,
	// a server restart) is noticed and recreated within seconds
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBatch), jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullExpiry/5))
	if err != nil {
		return err
	}
	r.it = it
	return nil
}

// Close stops the consumer.
func (r *reader) Close() {
	if r.it != nil {
		r.it.Stop()
		r.it = nil
	}
}

func record(seq uint64, msg jetstream.Msg) stream.ClusterRecord {
	h := msg.Headers()
	rec := stream.ClusterRecord{Seq: seq, Origin: h.Get(HeaderOrigin), Payload: msg.Data()}
	if ns, err := strconv.ParseInt(h.Get(HeaderTime), 10, 64); err == nil {
		rec.Time = time.Unix(0, ns)
	}
	rec.DroppedBatches, _ = strconv.ParseUint(h.Get(HeaderDroppedBatches), 10, 64)
	rec.DroppedPoints, _ = strconv.ParseUint(h.Get(HeaderDroppedPoints), 10, 64)
	return rec
}
