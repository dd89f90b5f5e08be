package stream

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Cluster mode. The node delivers nothing itself: Commit publishes the
// batch to the cluster log, and each stream reads the log from its own
// position (the next record, or resume_after_sequence+1), picks out what
// its filter selects with the same routing and encoding as local delivery,
// and sends one batch per log record that has matching points, numbered by
// the record's log sequence. Sequences therefore mean the same on every
// node: they increase but skip the records a filter did not match, and a
// resume token from one node works on any other. The log is the replay log:
// a stream that falls behind what the log retains (or resumes before it)
// fails with a DataLossError naming the missing range (at least once) or
// counts the missing records as dropped batches (best effort).

// clusterMarshaler encodes committed batches for the log.
var clusterMarshaler = &pmetric.ProtoMarshaler{}

// stageCluster encodes md for publishing on Commit.
func (h *Hub) stageCluster(md pmetric.Metrics) *Staged {
	if md.DataPointCount() == 0 {
		return nil
	}
	payload, err := clusterMarshaler.MarshalMetrics(md)
	if err != nil {
		h.logger.Warn("Batch not streamed: cannot encode it for the cluster log", zap.Error(err))
		return nil
	}
	return &Staged{cluster: h.cluster, payload: payload, points: md.DataPointCount()}
}

// clusterStream is the cluster-mode part of a Stream.
type clusterStream struct {
	log     ClusterLog
	from    uint64 // first sequence to read; 0: the next record published
	routing *routing
	replay  bool

	dropBatches atomic.Uint64 // since the last heartbeat
	dropPoints  atomic.Uint64
}

// clusterItem is what the reader goroutine hands to the stream: a batch,
// the end of the stream, or (neither) the position after records that had
// nothing for the filter.
type clusterItem struct {
	b   *batch
	seq uint64
	err error
}

// subscribeCluster opens a stream in cluster mode. A resume is checked
// against what the log holds; nothing about the subscription is kept on the
// node beyond its running stream.
func (h *Hub) subscribeCluster(p params, filter *Filter) (*Stream, error) {
	var from, lastSent uint64
	resume := p.resume != nil && *p.resume > 0
	var first, last uint64
	err := ErrUnavailable
	if resume || h.cluster.Status().Connected {
		// a new subscription does not wait for an unreachable log: it
		// starts after the last record once the log is back
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Cluster.NATS.PublishTimeout)
		first, last, err = h.cluster.Bounds(ctx)
		cancel()
	}
	if resume {
		n := *p.resume
		if err != nil {
			return nil, fmt.Errorf("%w: cannot check resume_after_sequence %d: %w (fix: retry; the resume stays valid while the stream retains sequence %d)", ErrUnavailable, n, err, n+1)
		}
		if n > last {
			return nil, fmt.Errorf("%w: the cluster log %q holds sequences up to %d, resume_after_sequence is %d", ErrResumeAhead, h.cfg.Cluster.NATS.StreamName, last, n)
		}
		if n+1 < first {
			if p.id == "" {
				p.id = newSubscriptionID()
			}
			return nil, &DataLossError{SubscriptionID: p.id, From: n + 1, To: first - 1, Cluster: true}
		}
		from, lastSent = n+1, n
	} else if err == nil {
		from, lastSent = last+1, last // a new subscription starts after the log's last record
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if p.id == "" {
		p.id = newSubscriptionID()
	}
	old := h.clusterStreams[p.id]
	if old == nil && len(h.clusterStreams) >= h.cfg.MaxSubscribers {
		return nil, fmt.Errorf("%w: the server runs stream.max_subscribers (%d) streams (fix: retry later, or raise stream.max_subscribers)", ErrTooManySubscribers, h.cfg.MaxSubscribers)
	}
	if old != nil {
		close(old.kicked)
	}
	att := &attachment{kicked: make(chan struct{})}
	h.clusterStreams[p.id] = att
	h.active.Add(1)
	s := &subscription{hub: h, id: p.id, filter: filter, replay: p.replay, qos: p.qos}
	cl := &clusterStream{log: h.cluster, from: from, routing: &routing{subs: []*subscription{s}}, replay: p.replay}
	return &Stream{hub: h, sub: s, att: att, heartbeat: p.heartbeat, lastSent: lastSent, cl: cl}, nil
}

// detachCluster unlinks a finished cluster-mode stream.
func (h *Hub) detachCluster(st *Stream) {
	h.mu.Lock()
	if h.clusterStreams[st.sub.id] == st.att {
		delete(h.clusterStreams, st.sub.id)
	}
	h.mu.Unlock()
	h.active.Add(-1)
}

// runCluster is Run in cluster mode.
func (st *Stream) runCluster(ctx context.Context, send func(Message) error, notice Notice) error {
	defer st.hub.detachCluster(st)
	reader := st.cl.log.Read(st.cl.from)
	rctx, cancel := context.WithCancel(ctx)
	items := make(chan clusterItem, 4)
	var wg sync.WaitGroup
	wg.Go(func() { st.cl.pump(rctx, st.sub, reader, items) })
	defer func() {
		cancel()
		wg.Wait()
		reader.Close()
	}()
	hb := time.NewTicker(st.heartbeat)
	defer hb.Stop()

	if err := send(st.clusterHeartbeat(notice)); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.hub.done:
			return ErrClosed
		case <-st.att.kicked:
			return ErrTakenOver
		case <-hb.C:
			if err := send(st.clusterHeartbeat(Notice{Compression: notice.Compression})); err != nil {
				return err
			}
		case it := <-items:
			if it.err != nil {
				return it.err
			}
			if it.b == nil {
				st.lastSent = max(st.lastSent, it.seq)
				continue
			}
			if err := send(batchMessage{b: it.b}); err != nil {
				return err
			}
			st.lastSent = it.b.seq
		}
	}
}

// pump reads the log, checks it has no gap, and turns records into batches
// of the stream's filter.
func (cl *clusterStream) pump(ctx context.Context, s *subscription, reader ClusterReader, out chan<- clusterItem) {
	expected := cl.from
	for {
		rec, err := reader.Next(ctx)
		if err != nil {
			return // ctx ended
		}
		if expected != 0 && rec.Seq > expected {
			if cl.replay {
				select {
				case out <- clusterItem{err: &DataLossError{SubscriptionID: s.id, From: expected, To: rec.Seq - 1, Cluster: true}}:
				case <-ctx.Done():
				}
				return
			}
			cl.dropBatches.Add(rec.Seq - expected)
		}
		if rec.Seq < expected {
			continue // a redelivery after a reconnect
		}
		expected = rec.Seq + 1
		if rec.DroppedBatches > 0 || rec.DroppedPoints > 0 {
			cl.dropBatches.Add(rec.DroppedBatches)
			cl.dropPoints.Add(rec.DroppedPoints)
		}
		if len(rec.Payload) == 0 {
			skipped(out, rec.Seq)
			continue
		}
		md, err := clusterUnmarshaler.UnmarshalMetrics(rec.Payload)
		if err != nil {
			s.hub.logger.Warn("Cluster log record is not a pdata batch; skipped", zap.Uint64("sequence", rec.Seq),
				zap.String("origin", rec.Origin), zap.Error(err))
			cl.dropBatches.Add(1)
			skipped(out, rec.Seq)
			continue
		}
		staged := stage(cl.routing, md)
		if staged == nil || len(staged.per[0]) == 0 {
			skipped(out, rec.Seq)
			continue
		}
		created := rec.Time
		if created.IsZero() {
			created = s.hub.now()
		}
		b := newBatch(rec.Seq, created, staged.per[0])
		select {
		case out <- clusterItem{b: b}:
		case <-ctx.Done():
			return
		}
	}
}

var clusterUnmarshaler = &pmetric.ProtoUnmarshaler{}

// skipped moves the stream's position past seq, a record without anything
// for it, when the stream has room (a lagging position is only re-examined
// on a resume, never lost).
func skipped(out chan<- clusterItem, seq uint64) {
	select {
	case out <- clusterItem{seq: seq}:
	default:
	}
}

// clusterHeartbeat is a heartbeat in cluster mode: last_sequence is the
// stream's position (every record up to it was sent or had nothing for the
// filter; resume after it to miss nothing), drops reported by the log
// (gaps of a best-effort stream, batches nodes could not publish), and the
// node's link to the log when it is degraded.
func (st *Stream) clusterHeartbeat(notice Notice) *pb.StreamMetricsResponse {
	msg := notice.Message
	if status := st.cl.log.Status(); !status.Healthy {
		degraded := "cluster degraded: " + status.Message
		if msg != "" {
			msg += "; " + degraded
		} else {
			msg = degraded
		}
	}
	return &pb.StreamMetricsResponse{Payload: &pb.StreamMetricsResponse_Heartbeat{Heartbeat: &pb.Heartbeat{
		ServerTime:        timestamppb.New(st.hub.now()),
		LastSequence:      st.lastSent,
		DroppedBatches:    st.cl.dropBatches.Swap(0),
		DroppedDatapoints: st.cl.dropPoints.Swap(0),
		Compression:       notice.Compression,
		Message:           msg,
		SubscriptionId:    st.sub.id,
	}}}
}
