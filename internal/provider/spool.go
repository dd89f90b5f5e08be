package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// SpoolSync says when the spool's appends reach the disk.
type SpoolSync string

const (
	// SpoolSyncBatch writes every batch to its segment file before the
	// pipeline's answer (it survives the collector's process being killed,
	// kill -9 or OOM) and fsyncs a segment when it is full and at shutdown:
	// a crash of the machine may lose the batches of the last segment.
	SpoolSyncBatch SpoolSync = "batch"
	// SpoolSyncAlways fsyncs every batch before the pipeline's answer: it
	// survives a crash of the machine too, at the cost of one fsync per
	// batch and provider.
	SpoolSyncAlways SpoolSync = "always"
)

// DefaultSpoolMaxBytes is the default bound of a provider's spool.
const DefaultSpoolMaxBytes = 1 << 30

// SpoolConfig configures the durable provider queue: each provider keeps
// the batches it accepted in segment files under Directory/<provider_id>
// until they are exported (or failed for good), so that batches accepted
// before a crash are sent after the restart.
type SpoolConfig struct {
	// Directory holds one sub-directory per provider.
	Directory string
	// MaxBytes bounds the segment files of one provider; a batch that does
	// not fit is dropped and counted like a full queue.
	MaxBytes int64
	// Sync is SpoolSyncBatch (the default) or SpoolSyncAlways.
	Sync SpoolSync
}

// Validate checks the config; messages name the field of the providers
// exporter's spool block.
func (c SpoolConfig) Validate() error {
	switch {
	case c.Directory == "":
		return errors.New("spool.directory: must be set to the directory that keeps the providers' spools")
	case c.MaxBytes < 0:
		return fmt.Errorf("spool.max_bytes: %d is negative; set the bound of a provider's spool in bytes, e.g. 1073741824", c.MaxBytes)
	case c.Sync != "" && c.Sync != SpoolSyncBatch && c.Sync != SpoolSyncAlways:
		return fmt.Errorf("spool.sync: %q is not one of batch, always", c.Sync)
	}
	return nil
}

func (c SpoolConfig) withDefaults() SpoolConfig {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultSpoolMaxBytes
	}
	if c.Sync == "" {
		c.Sync = SpoolSyncBatch
	}
	return c
}

var (
	// errSpoolFull is a batch that does not fit under spool.max_bytes.
	errSpoolFull = errors.New("spool full")
	// errSpoolClosed is a batch offered after the spool was closed.
	errSpoolClosed = errors.New("spool closed")
)

const (
	segmentSuffix  = ".seg"
	minSegmentSize = 64 << 10
	maxSegmentSize = 16 << 20
	// replayLogEvery is how often the progress of a replay is logged.
	replayLogEvery = 5 * time.Second
)

// segment is one file of a spool.
type segment struct {
	idx  uint64
	path string
	f    *os.File
	size int64
	// data and acked count the data records in this file and those acked.
	data, acked int
}

// spoolEntry is a data record that is not acknowledged yet.
type spoolEntry struct {
	seq    uint64
	seg    *segment
	off    int64 // of the frame
	frame  int   // framed length
	points int
	bytes  int // payload length
	kind   itemKind
	// md is kept in memory while the spool's cache has room; otherwise the
	// batch is read back from its segment when sent.
	md       pmetric.Metrics
	cached   bool
	shared   bool
	replayed bool
}

// spool is the durable queue of one provider: an append-only log of
// segment files with data and ack records. Batches are appended before the
// pipeline's answer; the provider's current sender (the consumer) takes
// them, and acks or releases each. Fully acknowledged segments at the
// head are deleted.
type spool struct {
	id      string
	dir     string
	cfg     SpoolConfig
	segSize int64
	log     *zap.Logger
	// seq issues the sequence numbers of data records.
	seq atomic.Uint64

	mu       sync.Mutex
	closed   bool
	segs     []*segment // oldest first; the last is written
	nextSeg  uint64
	bytes    int64 // on disk, all segments
	pending  []*spoolEntry
	head     int
	inflight int
	// pendingPoints are the data points of pending and in-flight entries.
	pendingPoints int64
	cachedN       int
	cachedBytes   int64
	cacheN        int
	cacheBytes    int64
	consumer      *sender
	// draining is the sender an update replaced while it drains: it alone
	// takes the drainLeft batches at the head (those pending when it was
	// replaced), and the consumer waits for them, so that the old
	// destination gets what it would have got without a spool and the new
	// one does not get again what a BLUE_GREEN candidate already had a copy
	// of. endDrain ends it (what the old sender released goes to the
	// consumer then).
	draining  *sender
	drainLeft int
	ackBuf    []byte
	// truncated counts the torn or corrupt records cut at open.
	truncated int
	replay    struct {
		total, left int
		start, last time.Time
	}
	// writeErrLogged rate-limits the log of failing writes.
	writeErrLogged time.Time
}

// spoolStats are a spool's numbers for the provider's stats.
type spoolStats struct {
	batches   int
	diskBytes int64
	memBytes  int64
	maxBytes  int64
}

// openSpool opens (creating it when missing) the spool of provider id in
// cfg.Directory and replays it: records after a torn or corrupt one are cut
// off (logged and counted), and the data records without an ack become the
// pending batches, sent first. cacheN and cacheBytes bound the batches kept
// in memory (0 bytes: no bound by bytes).
func openSpool(cfg SpoolConfig, id string, cacheN int, cacheBytes int64, log *zap.Logger) (*spool, error) {
	cfg = cfg.withDefaults()
	sp := &spool{
		id: id, dir: filepath.Join(cfg.Directory, id), cfg: cfg, log: log,
		segSize: min(max(cfg.MaxBytes/8, minSegmentSize), maxSegmentSize, max(cfg.MaxBytes/2, 1)),
		cacheN:  cacheN, cacheBytes: cacheBytes,
	}
	if err := os.MkdirAll(sp.dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool of provider %q: %w", id, err)
	}
	if err := sp.load(); err != nil {
		sp.closeFiles()
		return nil, fmt.Errorf("spool of provider %q: %w", id, err)
	}
	if err := sp.rotateLocked(true); err != nil {
		sp.closeFiles()
		return nil, fmt.Errorf("spool of provider %q: %w", id, err)
	}
	sp.deletePrefixLocked()
	if n := len(sp.pending); n > 0 || sp.truncated > 0 {
		sp.replay.total, sp.replay.left, sp.replay.start, sp.replay.last = n, n, time.Now(), time.Now()
		sp.log.Info("Replaying the provider's spool: batches accepted before the last stop are sent again",
			zap.String("directory", sp.dir), zap.Int("batches", n), zap.Int64("datapoints", sp.pendingPoints),
			zap.Int64("bytes", sp.bytes), zap.Int("segments", len(sp.segs)), zap.Int("truncated_records", sp.truncated))
	}
	return sp, nil
}

// segmentIndexes returns the indexes of the segment files in dir, sorted.
func segmentIndexes(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var idx []uint64
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		idx = append(idx, n)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	return idx, nil
}

func (sp *spool) segmentPath(idx uint64) string {
	return filepath.Join(sp.dir, fmt.Sprintf("%020d%s", idx, segmentSuffix))
}

// load reads every segment: data records, acks, and the tail to cut.
func (sp *spool) load() error {
	idxs, err := segmentIndexes(sp.dir)
	if err != nil {
		return err
	}
	acked := map[uint64]bool{}
	var order []*spoolEntry
	var maxSeq uint64
	for _, idx := range idxs {
		sp.nextSeg = idx + 1
		path := sp.segmentPath(idx)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(raw) < len(segmentMagic) || string(raw[:len(segmentMagic)]) != segmentMagic {
			sp.log.Warn("Removing a spool segment without a valid header (cut by a crash while it was created, or not a spool file)",
				zap.String("file", path), zap.Int("bytes", len(raw)))
			sp.truncated++
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		seg := &segment{idx: idx, path: path}
		off := len(segmentMagic)
		for off < len(raw) {
			rec, n, derr := decodeSpoolRecord(raw[off:])
			if derr != nil {
				sp.truncated++
				sp.log.Warn("Cutting the spool segment at a torn or corrupt record (the tail written when the collector died)",
					zap.String("file", path), zap.Int("offset", off), zap.Int("bytes_cut", len(raw)-off), zap.Error(derr))
				if err := os.Truncate(path, int64(off)); err != nil {
					return err
				}
				break
			}
			maxSeq = max(maxSeq, rec.seq)
			switch rec.typ {
			case recData:
				e := &spoolEntry{seq: rec.seq, seg: seg, off: int64(off), frame: n, points: rec.points, bytes: len(rec.payload), kind: rec.kind, replayed: true}
				order = append(order, e)
				seg.data++
			case recAck:
				acked[rec.seq] = true
			}
			off += n
		}
		seg.size = int64(off)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		seg.f = f
		sp.segs = append(sp.segs, seg)
		sp.bytes += seg.size
	}
	for _, e := range order {
		if acked[e.seq] {
			e.seg.acked++
			continue
		}
		sp.pending = append(sp.pending, e)
		sp.pendingPoints += int64(e.points)
	}
	sp.seq.Store(maxSeq)
	sp.deletePrefixLocked()
	return nil
}

// rotateLocked starts a new segment, fsyncing the one it replaces when
// syncOld (not when that one is fully acknowledged and about to go).
func (sp *spool) rotateLocked(syncOld bool) error {
	if n := len(sp.segs); n > 0 && syncOld {
		if err := sp.segs[n-1].f.Sync(); err != nil {
			return err
		}
	}
	seg := &segment{idx: sp.nextSeg, path: sp.segmentPath(sp.nextSeg)}
	f, err := os.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte(segmentMagic)); err != nil {
		_ = f.Close()
		_ = os.Remove(seg.path)
		return err
	}
	if sp.cfg.Sync == SpoolSyncAlways {
		_ = f.Sync()
		syncDir(sp.dir)
	}
	sp.nextSeg++
	seg.f, seg.size = f, int64(len(segmentMagic))
	sp.segs = append(sp.segs, seg)
	sp.bytes += seg.size
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// active returns the segment written to.
func (sp *spool) active() *segment { return sp.segs[len(sp.segs)-1] }

// deletePrefixLocked deletes the fully acknowledged segments at the head,
// and starts a new segment when the written one is fully acknowledged and
// large (or has any record, when force: the spool is full) so that an idle
// spool shrinks to a header.
func (sp *spool) deletePrefixLocked() { sp.deletePrefix(false) }

func (sp *spool) deletePrefix(force bool) {
	for len(sp.segs) > 0 {
		seg := sp.segs[0]
		if seg.data != seg.acked {
			return
		}
		if len(sp.segs) == 1 {
			small := seg.size < sp.segSize && !(force && seg.size > int64(len(segmentMagic)))
			if sp.closed || small || sp.rotateLocked(false) != nil {
				return
			}
		}
		_ = seg.f.Close()
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			sp.log.Warn("Could not remove an acknowledged spool segment", zap.String("file", seg.path), zap.Error(err))
		}
		sp.bytes -= seg.size
		sp.segs = sp.segs[1:]
	}
}

var spoolBufPool = sync.Pool{New: func() any { return new([]byte) }}

// append writes md to the spool and queues it for the consumer. It returns
// errSpoolFull when the record does not fit under max_bytes.
func (sp *spool) append(md pmetric.Metrics, points int, shared bool, kind itemKind) error {
	payload, err := sizer.MarshalMetrics(md)
	if err != nil {
		return err
	}
	seq := sp.seq.Add(1)
	bp := spoolBufPool.Get().(*[]byte)
	frame := appendDataRecord((*bp)[:0], seq, kind, points, payload)
	defer func() {
		*bp = frame
		spoolBufPool.Put(bp)
	}()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return errSpoolClosed
	}
	if sp.bytes+int64(len(frame)) > sp.cfg.MaxBytes {
		sp.deletePrefix(true)
		if sp.bytes+int64(len(frame)) > sp.cfg.MaxBytes {
			return errSpoolFull
		}
	}
	if sp.active().size >= sp.segSize {
		if err := sp.rotateLocked(true); err != nil {
			return sp.writeFailedLocked(err)
		}
	}
	seg := sp.active()
	if _, err := seg.f.WriteAt(frame, seg.size); err != nil {
		_ = seg.f.Truncate(seg.size)
		return sp.writeFailedLocked(err)
	}
	if sp.cfg.Sync == SpoolSyncAlways {
		if err := seg.f.Sync(); err != nil {
			return sp.writeFailedLocked(err)
		}
	}
	e := &spoolEntry{seq: seq, seg: seg, off: seg.size, frame: len(frame), points: points, bytes: len(payload), kind: kind, shared: shared}
	seg.size += int64(len(frame))
	seg.data++
	sp.bytes += int64(len(frame))
	if sp.cachedN < sp.cacheN && (sp.cacheBytes <= 0 || sp.cachedBytes+int64(e.bytes) <= sp.cacheBytes) {
		e.md, e.cached = md, true
		sp.cachedN++
		sp.cachedBytes += int64(e.bytes)
	}
	sp.pending = append(sp.pending, e)
	sp.pendingPoints += int64(points)
	sp.wakeLocked(1)
	return nil
}

func (sp *spool) writeFailedLocked(err error) error {
	if now := time.Now(); now.Sub(sp.writeErrLogged) > time.Minute {
		sp.writeErrLogged = now
		sp.log.Error("Writing to the provider's spool failed; the batch is dropped and counted", zap.String("directory", sp.dir), zap.Error(err))
	}
	return fmt.Errorf("write spool: %w", err)
}

// wakeLocked tells up to n of the consumer's workers that batches wait.
func (sp *spool) wakeLocked(n int) {
	c := sp.consumer
	if c == nil {
		return
	}
	for range n {
		select {
		case c.wake <- struct{}{}:
		default:
			return
		}
	}
}

// setConsumer makes s the sender whose workers take the pending batches
// (nil: none, at shutdown).
func (sp *spool) setConsumer(s *sender) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.consumer = s
	if s != nil {
		sp.wakeLocked(min(len(sp.pending)-sp.head, cap(s.wake)))
	}
}

// handOver makes next the consumer while old, the sender it replaces, still
// sends the batches pending now (see draining) until endDrain.
func (sp *spool) handOver(old, next *sender) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.consumer = next
	if n := len(sp.pending) - sp.head; old != nil && old != next && n > 0 {
		sp.draining, sp.drainLeft = old, n
		for range min(n, cap(old.wake)) {
			select {
			case old.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	sp.wakeLocked(min(len(sp.pending)-sp.head, cap(next.wake)))
}

// endDrain ends old's drain: the consumer takes every pending batch again.
func (sp *spool) endDrain(old *sender) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.draining != old || old == nil {
		return
	}
	sp.draining, sp.drainLeft = nil, 0
	sp.wakeLocked(len(sp.pending) - sp.head)
}

// mayTakeLocked says whether s may take the batch at the head.
func (sp *spool) mayTakeLocked(s *sender) bool {
	switch {
	case sp.draining != nil && s == sp.draining:
		return sp.drainLeft > 0
	case s == sp.consumer:
		return sp.draining == nil
	}
	return false
}

// take hands the oldest pending batch to a worker of s; nil when there is
// none or s is not the consumer. A batch that cannot be read back is
// dropped and counted (through drop) and the next one is tried.
func (sp *spool) take(s *sender, drop func(points int)) *item {
	for {
		sp.mu.Lock()
		if sp.closed || sp.head == len(sp.pending) || s.ctx.Err() != nil || !sp.mayTakeLocked(s) {
			sp.mu.Unlock()
			return nil
		}
		e := sp.pending[sp.head]
		sp.pending[sp.head] = nil
		sp.head++
		if s == sp.draining {
			if sp.drainLeft--; sp.drainLeft == 0 {
				sp.draining = nil // the rest is the consumer's
				sp.wakeLocked(len(sp.pending) - sp.head)
			}
		}
		if sp.head == len(sp.pending) {
			sp.pending, sp.head = sp.pending[:0], 0
		} else if sp.head > 1024 && sp.head > len(sp.pending)/2 {
			sp.pending = append(sp.pending[:0], sp.pending[sp.head:]...)
			sp.head = 0
		}
		sp.inflight++
		md, cached := e.md, e.cached
		if cached {
			e.md, e.cached = pmetric.Metrics{}, false
			sp.cachedN--
			sp.cachedBytes -= int64(e.bytes)
		}
		sp.mu.Unlock()
		if !cached {
			var err error
			if md, err = sp.read(e); err != nil {
				sp.log.Error("A spooled batch cannot be read back; it is dropped and counted", zap.String("file", e.seg.path),
					zap.Int64("offset", e.off), zap.Error(err))
				drop(e.points)
				sp.ack(e)
				continue
			}
		}
		return &item{md: md, points: e.points, bytes: e.bytes, shared: e.shared && cached, kind: e.kind, spooled: e, sp: sp}
	}
}

// read reads the batch of e back from its segment.
func (sp *spool) read(e *spoolEntry) (pmetric.Metrics, error) {
	buf := make([]byte, e.frame)
	if _, err := e.seg.f.ReadAt(buf, e.off); err != nil {
		return pmetric.Metrics{}, err
	}
	rec, _, err := decodeSpoolRecord(buf)
	if err != nil {
		return pmetric.Metrics{}, err
	}
	if rec.typ != recData || rec.seq != e.seq {
		return pmetric.Metrics{}, fmt.Errorf("%w: expected data record %d", errCorruptRecord, e.seq)
	}
	return (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(rec.payload)
}

// ack records that the batch of e is done: exported, or failed for good.
func (sp *spool) ack(e *spoolEntry) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return
	}
	sp.inflight--
	sp.pendingPoints -= int64(e.points)
	seg := sp.active()
	sp.ackBuf = appendAckRecord(sp.ackBuf[:0], e.seq)
	if _, err := seg.f.WriteAt(sp.ackBuf, seg.size); err != nil {
		// Not fatal: the batch is sent again after a restart.
		_ = seg.f.Truncate(seg.size)
		_ = sp.writeFailedLocked(err)
	} else {
		seg.size += int64(len(sp.ackBuf))
		sp.bytes += int64(len(sp.ackBuf))
	}
	e.seg.acked++
	if e.replayed && sp.replay.left > 0 {
		sp.replay.left--
		if sp.replay.left == 0 {
			sp.log.Info("Spool replay done: every batch accepted before the last stop was sent or failed for good",
				zap.Int("batches", sp.replay.total), zap.Duration("took", time.Since(sp.replay.start).Round(time.Millisecond)))
		}
	}
	sp.deletePrefixLocked()
}

// release puts a batch a worker took back at the head (its export was cut
// short by a stop): the consumer sends it, or the next start does.
func (sp *spool) release(e *spoolEntry) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return
	}
	sp.inflight--
	if sp.head > 0 {
		sp.head--
		sp.pending[sp.head] = e
	} else {
		sp.pending = append([]*spoolEntry{e}, sp.pending...)
	}
	if sp.draining != nil {
		sp.drainLeft++ // the old sender's again while it drains
	}
	sp.wakeLocked(1)
}

// tick logs the progress of a replay now and then.
func (sp *spool) tick() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.replay.left == 0 || time.Since(sp.replay.last) < replayLogEvery {
		return
	}
	sp.replay.last = time.Now()
	sp.log.Info("Spool replay in progress", zap.Int("batches_done", sp.replay.total-sp.replay.left),
		zap.Int("batches", sp.replay.total), zap.Duration("elapsed", time.Since(sp.replay.start).Round(time.Second)))
}

// stats returns the spool's numbers.
func (sp *spool) stats() spoolStats {
	if sp == nil {
		return spoolStats{}
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return spoolStats{batches: len(sp.pending) - sp.head + sp.inflight, diskBytes: sp.bytes, memBytes: sp.cachedBytes, maxBytes: sp.cfg.MaxBytes}
}

// pointsPending returns the data points of the pending and in-flight batches.
func (sp *spool) pointsPending() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.pendingPoints
}

// close syncs and closes the files; what is pending stays for the next
// start. It returns the batches left.
func (sp *spool) close() (batches int, points int64) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return 0, 0
	}
	sp.closed = true
	if len(sp.segs) > 0 {
		_ = sp.active().f.Sync()
	}
	sp.closeFiles()
	return len(sp.pending) - sp.head + sp.inflight, sp.pendingPoints
}

// discard closes the spool and removes its directory (the provider was
// deleted). It returns the data points that were still pending.
func (sp *spool) discard() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	points := sp.pendingPoints
	if sp.closed {
		points = 0
	}
	sp.closed = true
	sp.closeFiles()
	if err := os.RemoveAll(sp.dir); err != nil {
		sp.log.Warn("Could not remove the spool of a deleted provider", zap.String("directory", sp.dir), zap.Error(err))
	}
	return points
}

func (sp *spool) closeFiles() {
	for _, seg := range sp.segs {
		if seg.f != nil {
			_ = seg.f.Close()
		}
	}
}
