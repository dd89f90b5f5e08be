package stream

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// On-disk replay logs: replay.directory/<subscription_id>/ holds meta.json
// and segment files named by their first sequence (%020d.log). A segment is
// a sequence of records:
//
//	u32 body length | u32 CRC-32C of the rest | u64 sequence | i64 created (unix ns) | u32 data points | body
//
// where body is the encoded MetricBatch. One flusher goroutine writes the
// batches that ingest closed (ingest never waits for the disk) and syncs
// each log it wrote to. Streams read only written batches, so a crash loses
// at most batches that no stream has seen, and after a restart sequences
// continue from the last written one.

const (
	recordHeader  = 28
	maxRecordBody = 256 << 20
	metaFile      = "meta.json"
	segmentSuffix = ".log"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// diskStore owns the flusher and the logs under one directory.
type diskStore struct {
	hub  *Hub
	root string
	wake chan struct{}

	mu   sync.Mutex
	logs map[*diskLog]struct{}
	bg   sync.WaitGroup // removals of expired logs
}

func openDiskStore(h *Hub, root string) (*diskStore, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("replay.directory: %w", err)
	}
	return &diskStore{hub: h, root: root, wake: make(chan struct{}, 1), logs: make(map[*diskLog]struct{})}, nil
}

func (d *diskStore) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run is the flusher: it writes what ingest closed, and trims by size and
// age, until done.
func (d *diskStore) run(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-d.wake:
		case <-t.C:
		}
		d.mu.Lock()
		logs := make([]*diskLog, 0, len(d.logs))
		for l := range d.logs {
			logs = append(logs, l)
		}
		d.mu.Unlock()
		for _, l := range logs {
			if err := l.flush(d.hub.now(), true); err != nil {
				d.hub.logger.Warn("Cannot write a replay log", zap.String("subscription_id", l.sub.id), zap.Error(err))
			}
		}
	}
}

// close waits for background removals.
func (d *diskStore) close() { d.bg.Wait() }

// meta is what a restart needs to know about a subscription.
type meta struct {
	SubscriptionID string `json:"subscription_id"`
	QoS            int32  `json:"qos"`
	Filter         string `json:"filter"` // base64 of the encoded MetricFilter
	BatchSize      int    `json:"batch_size"`
	NextSequence   uint64 `json:"next_sequence"`
}

// segment is one file of a log. first, path and f are fixed; offsets, size
// and newest are guarded by the log's imu; next and wsize belong to the
// flusher.
type segment struct {
	first   uint64
	path    string
	f       *os.File
	offsets []int64 // record offset of batch first+i
	size    int64   // bytes published
	newest  int64   // created of its newest batch
	next    uint64  // sequence of the next record
	wsize   int64   // bytes written
}

func (g *segment) last() uint64 { return g.first + uint64(len(g.offsets)) - 1 }

// diskLog is a replay log on disk.
type diskLog struct {
	store  *diskStore
	sub    *subscription
	meta   meta // fixed at creation; NextSequence is set on each write
	dir    string
	segMax int64

	goneTo atomic.Uint64

	qmu       sync.Mutex
	unflushed deque  // closed, not written yet
	appended  uint64 // highest sequence appended

	imu       sync.RWMutex
	segs      []*segment
	diskBytes int64
	closed    bool

	wbuf []byte // flusher only
}

var _ replayLog = (*diskLog)(nil)

// newLog returns the replay log of a new subscription.
func (h *Hub) newLog(s *subscription) (replayLog, error) {
	if h.disk == nil {
		return &memLog{hub: h}, nil
	}
	dir := filepath.Join(h.disk.root, s.id)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear replay log of %q: %w", s.id, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create replay log of %q: %w", s.id, err)
	}
	l := h.disk.newDiskLog(s, dir)
	if err := l.writeMeta(s.nextSeq); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return l, nil
}

func (d *diskStore) newDiskLog(s *subscription, dir string) *diskLog {
	segMax := min(max(d.hub.cfg.Replay.MaxBytes/8, 64<<10), 16<<20)
	l := &diskLog{store: d, sub: s, dir: dir, segMax: segMax, meta: meta{
		SubscriptionID: s.id, QoS: int32(s.qos), BatchSize: s.batchSize,
	}}
	if spec, err := s.spec.MarshalVT(); err == nil {
		l.meta.Filter = base64.StdEncoding.EncodeToString(spec)
	}
	d.mu.Lock()
	d.logs[l] = struct{}{}
	d.mu.Unlock()
	return l
}

// writeMeta saves the metadata; the flusher and close call it, one at a
// time.
func (l *diskLog) writeMeta(next uint64) error {
	m := l.meta
	m.NextSequence = next
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.dir, metaFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("write replay log metadata: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, metaFile)); err != nil {
		return fmt.Errorf("write replay log metadata: %w", err)
	}
	return nil
}

// append queues b for the flusher. When the flusher is behind by more than
// max_buffer_bytes, the oldest queued batches are dropped (and with them
// everything before: the log's history stays gap free).
func (l *diskLog) append(b *batch) {
	h := l.store.hub
	l.qmu.Lock()
	l.unflushed.push(b)
	l.appended = b.seq
	h.mem.Add(int64(b.size))
	for l.unflushed.len() > 1 && (l.unflushed.bytes > h.cfg.MaxBufferBytes || h.mem.Load() > h.cfg.MaxTotalBytes) {
		d := l.unflushed.pop()
		h.mem.Add(-int64(d.size))
		l.setGone(d.seq)
	}
	l.qmu.Unlock()
	l.store.signal()
}

func (l *diskLog) setGone(seq uint64) {
	for {
		g := l.goneTo.Load()
		if seq <= g || l.goneTo.CompareAndSwap(g, seq) {
			return
		}
	}
}

func (l *diskLog) gone() uint64 { return l.goneTo.Load() }

// trim is the flusher's job (it runs on each wake).
func (l *diskLog) trim(time.Time) { l.store.signal() }

// lookup finds a written batch; batches not written yet are past the end.
func (l *diskLog) lookup(seq uint64) (logEntry, bool) {
	l.imu.RLock()
	defer l.imu.RUnlock()
	i, ok := slices.BinarySearchFunc(l.segs, seq, func(g *segment, seq uint64) int {
		switch {
		case g.last() < seq:
			return -1
		case g.first > seq:
			return 1
		default:
			return 0
		}
	})
	if !ok {
		return logEntry{}, false
	}
	g := l.segs[i]
	off := g.offsets[seq-g.first]
	f := g.f
	return logEntry{seq: seq, read: func() (Message, error) { return readRecord(f, off, seq) }}, true
}

func readRecord(f *os.File, off int64, seq uint64) (Message, error) {
	var hdr [recordHeader]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return nil, fmt.Errorf("read replay log: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	if n > maxRecordBody {
		return nil, fmt.Errorf("read replay log: record of %d bytes at offset %d", n, off)
	}
	buf := make([]byte, recordHeader+int(n))
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read replay log: %w", err)
	}
	if crc32.Checksum(buf[8:], castagnoli) != binary.LittleEndian.Uint32(buf[4:]) {
		return nil, fmt.Errorf("read replay log: checksum mismatch at offset %d", off)
	}
	if got := binary.LittleEndian.Uint64(buf[8:]); got != seq {
		return nil, fmt.Errorf("read replay log: record at offset %d is sequence %d, want %d", off, got, seq)
	}
	return encodedMessage{body: buf[recordHeader:]}, nil
}

// flush writes the queued batches, syncs, publishes them to lookups, wakes
// the stream (unless the caller holds the subscription lock), and trims.
func (l *diskLog) flush(now time.Time, wake bool) error {
	l.imu.RLock()
	closed := l.closed
	l.imu.RUnlock()
	if closed {
		return nil
	}
	l.qmu.Lock()
	pending := make([]*batch, 0, l.unflushed.len())
	for i := 0; i < l.unflushed.len(); i++ {
		pending = append(pending, l.unflushed.at(i))
	}
	l.qmu.Unlock()

	var err error
	if len(pending) > 0 {
		var written uint64
		written, err = l.write(pending)
		if written > 0 {
			h := l.store.hub
			l.qmu.Lock()
			for l.unflushed.len() > 0 && l.unflushed.at(0).seq <= written {
				h.mem.Add(-int64(l.unflushed.pop().size))
			}
			l.qmu.Unlock()
			if wake {
				l.sub.wake()
			}
		}
	}
	return errors.Join(err, l.trimDisk(now))
}

// segUpdate is what one flush adds to a segment.
type segUpdate struct {
	g       *segment
	offsets []int64
	newest  int64
}

// write appends pending to the segments, syncs them and publishes the records
// to lookups. It returns the last sequence written.
func (l *diskLog) write(pending []*batch) (uint64, error) {
	l.imu.RLock()
	closed := l.closed
	var active *segment
	if n := len(l.segs); n > 0 {
		active = l.segs[n-1]
	}
	l.imu.RUnlock()
	if closed {
		return 0, nil
	}
	var (
		written uint64
		updates []segUpdate
		err     error
	)
	for _, b := range pending {
		if b.seq <= l.gone() {
			continue // dropped while queued
		}
		if active == nil || active.wsize >= l.segMax || active.next != b.seq {
			if active, err = l.newSegment(b.seq); err != nil {
				break
			}
		}
		if len(updates) == 0 || updates[len(updates)-1].g != active {
			updates = append(updates, segUpdate{g: active})
		}
		l.wbuf = appendRecord(l.wbuf[:0], b)
		if _, err = active.f.WriteAt(l.wbuf, active.wsize); err != nil {
			err = fmt.Errorf("write replay log: %w", err)
			break
		}
		u := &updates[len(updates)-1]
		u.offsets = append(u.offsets, active.wsize)
		u.newest = b.created
		active.wsize += int64(len(l.wbuf))
		active.next = b.seq + 1
		written = b.seq
	}
	for _, u := range updates {
		if serr := u.g.f.Sync(); serr != nil {
			return 0, errors.Join(err, fmt.Errorf("sync replay log: %w", serr))
		}
	}
	l.imu.Lock()
	for _, u := range updates {
		u.g.offsets = append(u.g.offsets, u.offsets...)
		l.diskBytes += u.g.wsize - u.g.size
		u.g.size = u.g.wsize
		u.g.newest = u.newest
	}
	l.imu.Unlock()
	if cap(l.wbuf) > 4<<20 {
		l.wbuf = nil
	}
	return written, err
}

func appendRecord(dst []byte, b *batch) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recordHeader)...)
	dst = b.appendBody(dst)
	rec := dst[start:]
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(rec)-recordHeader))
	binary.LittleEndian.PutUint64(rec[8:], b.seq)
	binary.LittleEndian.PutUint64(rec[16:], uint64(b.created))
	binary.LittleEndian.PutUint32(rec[24:], uint32(b.points))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(rec[8:], castagnoli))
	return dst
}

// newSegment starts a segment at first and publishes it (empty).
func (l *diskLog) newSegment(first uint64) (*segment, error) {
	path := filepath.Join(l.dir, fmt.Sprintf("%020d%s", first, segmentSuffix))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create replay log segment: %w", err)
	}
	g := &segment{first: first, next: first, path: path, f: f}
	l.imu.Lock()
	l.segs = append(l.segs, g)
	l.imu.Unlock()
	return g, nil
}

// trimDisk drops the oldest segments while the log is over
// replay.max_bytes, their batches are older than replay.max_age, or they
// hold only sequences dropped from the queue.
func (l *diskLog) trimDisk(now time.Time) error {
	cfg := &l.store.hub.cfg
	cutoff := now.Add(-cfg.Replay.MaxAge).UnixNano()
	l.qmu.Lock()
	queued := l.unflushed.bytes
	appended := l.appended
	l.qmu.Unlock()
	var drop []*segment
	l.imu.Lock()
	for len(l.segs) > 0 {
		g := l.segs[0]
		empty := len(g.offsets) == 0
		over := l.diskBytes+queued > cfg.Replay.MaxBytes && (len(l.segs) > 1 || queued > 0)
		old := !empty && g.newest < cutoff
		gone := !empty && g.last() <= l.gone()
		if empty || !(over || old || gone) {
			break
		}
		l.setGone(g.last())
		l.segs = l.segs[1:]
		l.diskBytes -= g.size
		drop = append(drop, g)
	}
	l.imu.Unlock()
	if len(drop) == 0 {
		return nil
	}
	var errs []error
	for _, g := range drop {
		_ = g.f.Close()
		if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// sequences must not restart below what streams have seen
	errs = append(errs, l.writeMeta(appended+1))
	return errors.Join(errs...)
}

// close flushes what is queued (the flusher has stopped when the hub
// closes), closes the files and, with remove, deletes the log.
func (l *diskLog) close(remove bool) {
	h := l.store.hub
	l.store.mu.Lock()
	delete(l.store.logs, l)
	l.store.mu.Unlock()
	if remove {
		l.imu.Lock()
		l.closed = true
		segs := l.segs
		l.segs = nil
		l.imu.Unlock()
		l.qmu.Lock()
		h.mem.Add(-l.unflushed.bytes)
		l.unflushed.clear()
		l.qmu.Unlock()
		// off the caller's locks: removing files may take a while
		l.store.bg.Go(func() {
			for _, g := range segs {
				_ = g.f.Close()
			}
			if err := os.RemoveAll(l.dir); err != nil {
				h.logger.Warn("Cannot remove an expired replay log", zap.String("dir", l.dir), zap.Error(err))
			}
		})
		return
	}
	err := l.flush(h.now(), false)
	l.qmu.Lock()
	appended := l.appended
	h.mem.Add(-l.unflushed.bytes)
	l.unflushed.clear()
	l.qmu.Unlock()
	l.imu.Lock()
	l.closed = true
	for _, g := range l.segs {
		_ = g.f.Close()
	}
	l.segs = nil
	l.imu.Unlock()
	err = errors.Join(err, l.writeMeta(appended+1))
	if err != nil {
		h.logger.Warn("Cannot close a replay log cleanly", zap.String("subscription_id", l.sub.id), zap.Error(err))
	}
}

// recoverLocked reopens the subscriptions of the logs in the directory,
// detached: a client resumes them within replay.idle_ttl.
func (h *Hub) recoverLocked() error {
	entries, err := os.ReadDir(h.disk.root)
	if err != nil {
		return fmt.Errorf("read replay.directory: %w", err)
	}
	now := h.now()
	for _, e := range entries {
		if !e.IsDir() || !subscriptionIDPattern.MatchString(e.Name()) {
			continue
		}
		dir := filepath.Join(h.disk.root, e.Name())
		s, err := h.recoverSubscription(dir, now)
		if err != nil {
			h.logger.Warn("Dropping a replay log that cannot be recovered", zap.String("dir", dir), zap.Error(err))
			_ = os.RemoveAll(dir)
			continue
		}
		if len(h.subs) >= h.cfg.MaxSubscribers {
			s.log.close(false)
			h.logger.Warn("Not recovering a replay log: stream.max_subscribers reached", zap.String("dir", dir))
			continue
		}
		h.subs[s.id] = s
		h.logger.Info("Recovered a subscription from its replay log", zap.String("subscription_id", s.id),
			zap.Uint64("next_sequence", s.nextSeq), zap.Uint64("oldest_kept", s.log.gone()+1))
	}
	h.rebuildLocked()
	return nil
}

func (h *Hub) recoverSubscription(dir string, now time.Time) (*subscription, error) {
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	if m.SubscriptionID != filepath.Base(dir) {
		return nil, fmt.Errorf("%s names subscription %q", metaFile, m.SubscriptionID)
	}
	spec := &pb.MetricFilter{}
	b, err := base64.StdEncoding.DecodeString(m.Filter)
	if err == nil {
		err = spec.UnmarshalVT(b)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: filter: %w", metaFile, err)
	}
	filter, err := CompileFilter(spec)
	if err != nil {
		return nil, err
	}
	s := &subscription{
		hub: h, id: m.SubscriptionID, filter: filter, spec: spec, replay: true,
		qos: pb.QualityOfService(m.QoS), batchSize: max(m.BatchSize, 1), batchTimeout: defaultBatchTimeout,
		nextSeq: max(m.NextSequence, 1), detachedAt: now,
	}
	l := h.disk.newDiskLog(s, dir)
	s.log = l
	if err := l.recoverSegments(); err != nil {
		l.close(false)
		return nil, err
	}
	if n := len(l.segs); n > 0 && l.segs[n-1].last()+1 >= s.nextSeq {
		s.nextSeq = l.segs[n-1].last() + 1
		l.setGone(l.segs[0].first - 1)
	} else {
		// no batches, or the newest ones are damaged: the log's history
		// must stay gap free, so what is left is dropped too
		if n > 0 {
			h.logger.Warn("A replay log lost its newest batches; dropping it", zap.String("subscription_id", s.id),
				zap.Uint64("last_intact", l.segs[n-1].last()), zap.Uint64("next_sequence", s.nextSeq))
		}
		for _, g := range l.segs {
			_ = g.f.Close()
			_ = os.Remove(g.path)
		}
		l.segs, l.diskBytes = nil, 0
		l.setGone(s.nextSeq - 1)
	}
	l.appended = s.nextSeq - 1
	s.lastSent = s.nextSeq - 1
	return s, nil
}

// recoverSegments reads the segments back, truncating a torn tail.
func (l *diskLog) recoverSegments() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), segmentSuffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for i, name := range names {
		path := filepath.Join(l.dir, name)
		g, complete, err := readSegment(path)
		if err != nil {
			return err
		}
		if g != nil && len(l.segs) > 0 && g.first != l.segs[len(l.segs)-1].next {
			// a gap (batches dropped before they were written): keep the newer part
			for _, old := range l.segs {
				_ = old.f.Close()
				_ = os.Remove(old.path)
			}
			l.segs, l.diskBytes = nil, 0
		}
		if g != nil {
			l.segs = append(l.segs, g)
			l.diskBytes += g.size
		}
		if !complete {
			for _, rest := range names[i+1:] {
				_ = os.Remove(filepath.Join(l.dir, rest))
			}
			break
		}
	}
	return nil
}

// readSegment indexes a segment file; complete is false when it ended in a
// torn or corrupt record (the file is truncated there). An empty file is
// removed and returns nil.
func readSegment(path string) (*segment, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, false, err
	}
	g := &segment{path: path, f: f}
	var hdr [recordHeader]byte
	var buf []byte
	complete := true
	for {
		if n, err := f.ReadAt(hdr[:], g.size); err != nil {
			// a clean end is no byte at all; part of a header is a torn write
			if n > 0 || !errors.Is(err, io.EOF) {
				complete = false
			}
			break
		}
		n := binary.LittleEndian.Uint32(hdr[0:])
		seq := binary.LittleEndian.Uint64(hdr[8:])
		// sequences start at 1; a body past the end of the file is torn (and
		// must not be allocated: the length may be garbage)
		if n > maxRecordBody || int64(n) > st.Size()-g.size-recordHeader || seq == 0 ||
			(len(g.offsets) > 0 && seq != g.next) {
			complete = false
			break
		}
		buf = append(buf[:0], make([]byte, recordHeader+int(n))...)
		if _, err := f.ReadAt(buf, g.size); err != nil ||
			crc32.Checksum(buf[8:], castagnoli) != binary.LittleEndian.Uint32(buf[4:]) {
			complete = false
			break
		}
		if len(g.offsets) == 0 {
			g.first = seq
		}
		g.offsets = append(g.offsets, g.size)
		g.newest = int64(binary.LittleEndian.Uint64(hdr[16:]))
		g.next = seq + 1
		g.size += int64(len(buf))
	}
	if !complete {
		if err := f.Truncate(g.size); err != nil {
			_ = f.Close()
			return nil, false, err
		}
	}
	if len(g.offsets) == 0 {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, complete, nil
	}
	g.wsize = g.size
	return g, complete, nil
}
