package stream

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Stream is one running stream of a subscription, from Hub.Subscribe.
type Stream struct {
	hub       *Hub
	sub       *subscription
	att       *attachment
	heartbeat time.Duration
	lastSent  uint64
	cl        *clusterStream // cluster mode
}

// SubscriptionID returns the id of the stream's subscription (assigned by
// the hub when the request named none).
func (st *Stream) SubscriptionID() string { return st.sub.id }

// Notice is what the first heartbeat tells the client about the stream.
type Notice struct {
	// Compression actually in use.
	Compression pb.StreamCompression
	// Message, e.g. why the compression fell back to none.
	Message string
}

// Run sends the stream until ctx ends, the hub closes (ErrClosed), a newer
// stream takes the subscription over (ErrTakenOver), the replay log no
// longer holds the next batch (*DataLossError) or send fails. The first
// message is a heartbeat with the subscription id and the notice; later
// heartbeats follow the interval. Run must be called once; it releases the
// stream when it returns.
func (st *Stream) Run(ctx context.Context, send func(Message) error, notice Notice) error {
	if st.cl != nil {
		return st.runCluster(ctx, send, notice)
	}
	defer st.hub.detach(st)
	hb := time.NewTicker(st.heartbeat)
	defer hb.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	if err := send(st.heartbeatMessage(notice.Compression, notice.Message)); err != nil {
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
			if err := send(st.heartbeatMessage(notice.Compression, "")); err != nil {
				return err
			}
		default:
		}
		now := st.hub.now()
		e, deadline, err := st.sub.next(st.att, now)
		if err != nil {
			return err
		}
		if e.b != nil || e.read != nil {
			if err := st.sendEntry(e, send); err != nil {
				return err
			}
			continue
		}
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			timer.Reset(deadline.Sub(now))
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.hub.done:
			return ErrClosed
		case <-st.att.kicked:
			return ErrTakenOver
		case <-hb.C:
			if err := send(st.heartbeatMessage(notice.Compression, "")); err != nil {
				return err
			}
		case <-st.att.notify:
		case <-timeout:
		}
		timer.Stop()
	}
}

func (st *Stream) sendEntry(e logEntry, send func(Message) error) error {
	var msg Message
	if e.b != nil {
		msg = batchMessage{b: e.b}
	} else {
		m, err := e.read()
		if err != nil {
			st.sub.mu.Lock()
			gone := st.sub.log.gone()
			st.sub.mu.Unlock()
			if e.seq <= gone {
				// trimmed while it was read
				return &DataLossError{SubscriptionID: st.sub.id, From: e.seq, To: gone}
			}
			return err
		}
		msg = m
	}
	if err := send(msg); err != nil {
		return err
	}
	st.lastSent = e.seq
	st.sub.sent(e.seq)
	return nil
}

func (st *Stream) heartbeatMessage(c pb.StreamCompression, message string) *pb.StreamMetricsResponse {
	batches, points := st.sub.takeDrops()
	return &pb.StreamMetricsResponse{Payload: &pb.StreamMetricsResponse_Heartbeat{Heartbeat: &pb.Heartbeat{
		ServerTime:        timestamppb.New(st.hub.now()),
		LastSequence:      st.lastSent,
		DroppedBatches:    batches,
		DroppedDatapoints: points,
		Compression:       c,
		Message:           message,
		SubscriptionId:    st.sub.id,
	}}}
}
