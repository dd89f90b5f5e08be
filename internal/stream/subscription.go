package stream

import (
	"sync"
	"time"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// subscription is a named selection of data points and what it holds for
// its stream: the open batch, then either a best-effort queue or a replay
// log. Ingest (publish) and the stream (next) meet under mu, briefly; the
// stream sends outside it.
type subscription struct {
	hub    *Hub
	id     string
	filter *Filter
	spec   *pb.MetricFilter // as requested, to compare on resume
	replay bool             // at least once / exactly once
	qos    pb.QualityOfService

	mu           sync.Mutex
	batchSize    int
	batchTimeout time.Duration
	pending      [][]byte // the open batch
	pendingSince time.Time
	nextSeq      uint64
	lastSent     uint64 // highest sequence handed to a stream

	// best effort
	queue        deque
	maxBatches   int
	dropBatches  uint64 // since the last heartbeat
	dropPoints   uint64
	totalDropped uint64

	// at least once
	log replayLog

	att        *attachment // the stream, nil while detached
	detachedAt time.Time
	removed    bool
}

// attachment is the link between a subscription and its current stream.
type attachment struct {
	notify chan struct{} // something to send (cap 1)
	kicked chan struct{} // closed when a newer stream took over
	cursor uint64        // replay: next sequence to send
}

// publish appends matched data points to the open batch and closes batches
// that reach the batch size. It never blocks on the stream.
func (s *subscription) publish(items [][]byte, now time.Time) {
	s.mu.Lock()
	if s.removed {
		s.mu.Unlock()
		return
	}
	wake := false
	for len(items) > 0 {
		if len(s.pending) >= s.batchSize { // the batch size shrank on a takeover
			s.cutLocked(now)
			wake = true
		}
		if len(s.pending) == 0 {
			s.pendingSince = now
			wake = true // the stream arms the batch timeout
			if len(items) >= s.batchSize {
				// a whole batch: it keeps a piece of items (never written to)
				s.pending = items[:s.batchSize:s.batchSize]
				items = items[s.batchSize:]
				s.cutLocked(now)
				continue
			}
		}
		n := min(s.batchSize-len(s.pending), len(items))
		s.pending = append(s.pending, items[:n]...)
		items = items[n:]
		if len(s.pending) >= s.batchSize {
			s.cutLocked(now)
		}
	}
	var notify chan struct{}
	if wake && s.att != nil {
		notify = s.att.notify
	}
	s.mu.Unlock()
	if notify != nil {
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

// cutLocked closes the open batch, numbers it and queues or logs it.
func (s *subscription) cutLocked(now time.Time) {
	b := newBatch(s.nextSeq, now, s.pending)
	s.nextSeq++
	s.pending = nil
	h := s.hub
	if s.replay {
		s.log.append(b)
		s.log.trim(now)
		return
	}
	s.queue.push(b)
	h.mem.Add(int64(b.size))
	for s.queue.len() > s.maxBatches ||
		(s.queue.len() > 1 && (s.queue.bytes > h.cfg.MaxBufferBytes || h.mem.Load() > h.cfg.MaxTotalBytes)) {
		d := s.queue.pop()
		h.mem.Add(-int64(d.size))
		s.dropBatches++
		s.dropPoints += uint64(d.points)
		s.totalDropped++
	}
}

// next returns what the stream sends next: a batch, or nothing and when the
// open batch times out (zero: no open batch).
func (s *subscription) next(att *attachment, now time.Time) (logEntry, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 && !now.Before(s.pendingSince.Add(s.batchTimeout)) {
		s.cutLocked(now)
	}
	var deadline time.Time
	if len(s.pending) > 0 {
		deadline = s.pendingSince.Add(s.batchTimeout)
	}
	if s.replay {
		if gone := s.log.gone(); att.cursor <= gone {
			return logEntry{}, deadline, &DataLossError{SubscriptionID: s.id, From: att.cursor, To: gone}
		}
		e, ok := s.log.lookup(att.cursor)
		if ok {
			att.cursor++
		}
		return e, deadline, nil
	}
	if s.queue.len() == 0 {
		return logEntry{}, deadline, nil
	}
	b := s.queue.pop()
	s.hub.mem.Add(-int64(b.size))
	return logEntry{b: b, seq: b.seq}, deadline, nil
}

// sent records that seq went out.
func (s *subscription) sent(seq uint64) {
	s.mu.Lock()
	s.lastSent = max(s.lastSent, seq)
	s.mu.Unlock()
}

// takeDrops returns and resets the drop counts since the last heartbeat.
func (s *subscription) takeDrops() (batches, points uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batches, points = s.dropBatches, s.dropPoints
	s.dropBatches, s.dropPoints = 0, 0
	return batches, points
}

// releaseLocked frees what the subscription holds and closes its replay
// log (remove: delete it from disk).
func (s *subscription) releaseLocked(remove bool) {
	s.removed = true
	h := s.hub
	h.mem.Add(-s.queue.bytes)
	s.queue.clear()
	if s.log != nil {
		s.log.close(remove)
	}
	s.pending = nil
}

// wake tells the attached stream that there may be something to send.
func (s *subscription) wake() {
	s.mu.Lock()
	var notify chan struct{}
	if s.att != nil {
		notify = s.att.notify
	}
	s.mu.Unlock()
	if notify != nil {
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}
