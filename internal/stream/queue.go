package stream

import "time"

// deque is a FIFO of batches with their total encoded size.
type deque struct {
	items []*batch
	head  int
	bytes int64
}

func (d *deque) len() int { return len(d.items) - d.head }

func (d *deque) push(b *batch) {
	d.items = append(d.items, b)
	d.bytes += int64(b.size)
}

func (d *deque) at(i int) *batch { return d.items[d.head+i] }

func (d *deque) pop() *batch {
	b := d.items[d.head]
	d.items[d.head] = nil
	d.head++
	d.bytes -= int64(b.size)
	if d.head == len(d.items) {
		d.items, d.head = d.items[:0], 0
	} else if d.head >= 64 && 2*d.head >= len(d.items) {
		n := copy(d.items, d.items[d.head:])
		clear(d.items[n:])
		d.items, d.head = d.items[:n], 0
	}
	return b
}

func (d *deque) clear() {
	clear(d.items)
	d.items, d.head, d.bytes = d.items[:0], 0, 0
}

// replayLog keeps the closed batches of an at-least-once subscription. Its
// methods run under the subscription's lock and must not block on I/O. A
// log accounts its memory in the hub's counter itself.
type replayLog interface {
	// append adds the next batch.
	append(b *batch)
	// trim drops the oldest batches while the log is over replay.max_bytes
	// or replay.max_age, or the hub over max_total_bytes.
	trim(now time.Time)
	// gone returns the highest sequence dropped from the log (0: none).
	gone() uint64
	// lookup returns the entry of seq, false when seq is past the end.
	// seq must be above gone().
	lookup(seq uint64) (logEntry, bool)
	// close releases the log; remove deletes what it persisted.
	close(remove bool)
}

// logEntry is a batch of a log: in memory (b), or on disk (read, to call
// outside the subscription lock).
type logEntry struct {
	b    *batch
	read func() (Message, error)
	seq  uint64
}

// memLog is a replay log in memory.
type memLog struct {
	hub    *Hub
	d      deque
	goneTo uint64
}

func (l *memLog) append(b *batch) {
	l.d.push(b)
	l.hub.mem.Add(int64(b.size))
}

func (l *memLog) gone() uint64 { return l.goneTo }

func (l *memLog) trim(now time.Time) {
	cfg := &l.hub.cfg
	minCreated := now.Add(-cfg.Replay.MaxAge).UnixNano()
	for l.d.len() > 0 {
		over := l.d.len() > 1 && (l.d.bytes > cfg.Replay.MaxBytes || l.hub.mem.Load() > cfg.MaxTotalBytes)
		if !over && l.d.at(0).created >= minCreated {
			return
		}
		b := l.d.pop()
		l.goneTo = b.seq
		l.hub.mem.Add(-int64(b.size))
	}
}

func (l *memLog) lookup(seq uint64) (logEntry, bool) {
	if l.d.len() == 0 {
		return logEntry{}, false
	}
	i := seq - l.d.at(0).seq
	if i >= uint64(l.d.len()) {
		return logEntry{}, false
	}
	b := l.d.at(int(i))
	return logEntry{b: b, seq: b.seq}, true
}

func (l *memLog) close(bool) {
	l.hub.mem.Add(-l.d.bytes)
	l.d.clear()
}
