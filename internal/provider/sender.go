package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
)

// Defaults of ResourceLimits.
const (
	defaultQueueSize   = 1000
	defaultConcurrency = 10
	defaultStallAfter  = 30 * time.Second
	shutdownTimeout    = 10 * time.Second
)

var sizer = &pmetric.ProtoMarshaler{}

// itemKind says where a queued batch comes from.
type itemKind uint8

const (
	// kindNormal is the provider's own traffic.
	kindNormal itemKind = iota
	// kindProbe is a copy of traffic delivered to the failover provider,
	// sent to test recovery: a failure is not re-routed and its data points
	// are not counted as failed.
	kindProbe
	// kindFailover is another provider's traffic: a failure is not re-routed again.
	kindFailover
)

// item is one queued batch.
type item struct {
	md     pmetric.Metrics
	points int
	bytes  int
	// shared batches are referenced by other providers too (no copy was made).
	shared bool
	kind   itemKind
	// spooled is the batch's record when it came from the provider's
	// spool (sp): it is acked when its export is done, released when a
	// stop cuts it short.
	spooled *spoolEntry
	sp      *spool
}

// senderConfig is what a sender is built from.
type senderConfig struct {
	providerID string
	version    uint64
	id         component.ID
	exp        exporter.Metrics
	filter     *filter
	rate       float64
	maxBatch   int
	queueSize  int
	maxBytes   int64
	workers    int
	stallAfter time.Duration
	// scrub removes the config's secrets from export errors.
	scrub *scrubber
}

// sender is one running exporter of a provider with its wrapper: filter →
// rate limit → split to max batch → bounded queue (batches and bytes) →
// workers (concurrency) → exporter, counting every outcome into stats. The
// pipeline never waits for a destination: a full queue drops and counts.
type sender struct {
	cfg     senderConfig
	log     *zap.Logger
	now     func() time.Time
	limiter *rateLimiter
	mutates bool

	stats    atomic.Pointer[Stats]
	failover atomic.Pointer[func(*item) bool]

	// mu guards closed and the send side of queue: consume holds it shared,
	// retire exclusively, so that after retire no batch can enter.
	mu     sync.RWMutex
	closed bool
	queue  chan *item
	// spool is the provider's durable queue while this sender is (or was)
	// the provider's primary and the spool is on; nil otherwise. wake
	// tells the workers that the spool has batches.
	spool atomic.Pointer[spool]
	wake  chan struct{}

	queuedBytes   atomic.Int64
	sized         atomic.Uint64
	bytesPerPoint atomic.Uint64 // float64 bits
	accepted      atomic.Uint64
	sentPoints    atomic.Uint64
	dropPoints    atomic.Uint64

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped atomic.Bool
	// unrouted is set when the sender was taken out of the routing table
	// ahead of stop; sentAtUnroute and dropAtUnroute are its counters then,
	// from which stop counts what it drained and dropped.
	unrouted      atomic.Bool
	sentAtUnroute atomic.Uint64
	dropAtUnroute atomic.Uint64
	inflight      []atomic.Int64
	pressure      bool
}

func newSender(cfg senderConfig, stats *Stats, log *zap.Logger, now func() time.Time) *sender {
	if cfg.queueSize <= 0 {
		cfg.queueSize = defaultQueueSize
	}
	if cfg.workers <= 0 {
		cfg.workers = defaultConcurrency
	}
	if cfg.stallAfter <= 0 {
		cfg.stallAfter = defaultStallAfter
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		cfg: cfg, log: log, now: now,
		limiter:  newRateLimiter(cfg.rate, now),
		mutates:  cfg.exp.Capabilities().MutatesData,
		queue:    make(chan *item, cfg.queueSize),
		wake:     make(chan struct{}, cfg.workers),
		ctx:      ctx,
		cancel:   cancel,
		inflight: make([]atomic.Int64, cfg.workers),
	}
	s.stats.Store(stats)
	return s
}

// start starts the exporter and the workers.
func (s *sender) start(ctx context.Context, host component.Host) error {
	if err := s.cfg.exp.Start(ctx, host); err != nil {
		return fmt.Errorf("start exporter %s: %w", s.cfg.id, err)
	}
	s.started = true
	for i := range s.cfg.workers {
		s.wg.Go(func() { s.work(i) })
	}
	return nil
}

// consume filters md and queues what passes. It returns false only when the
// sender is retired (the caller then routes md to the sender that replaced
// it); drops by limits are counted, not returned.
func (s *sender) consume(md pmetric.Metrics) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	out, ok := s.cfg.filter.apply(md)
	if !ok {
		return true
	}
	s.enqueueLocked(out, s.cfg.filter == nil, kindNormal)
	return true
}

// enqueue queues md as it is (already filtered: failover traffic and probes).
func (s *sender) enqueue(md pmetric.Metrics, shared bool, kind itemKind) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.enqueueLocked(md, shared, kind)
	return true
}

func (s *sender) enqueueLocked(md pmetric.Metrics, shared bool, kind itemKind) {
	st := s.stats.Load()
	n := md.DataPointCount()
	if !s.limiter.allow(n) {
		st.addDropped(n)
		s.dropPoints.Add(uint64(n))
		return
	}
	parts := split(md, s.cfg.maxBatch)
	shared = shared && len(parts) == 1
	sp := s.spool.Load()
	for _, part := range parts {
		points := part.DataPointCount()
		if sp != nil && kind != kindProbe {
			if err := sp.append(part, points, shared, kind); err != nil {
				st.addDropped(points)
				s.dropPoints.Add(uint64(points))
				continue
			}
			s.accepted.Add(uint64(points))
			continue
		}
		it := &item{md: part, points: points, bytes: s.sizeOf(part, points), shared: shared, kind: kind}
		if s.cfg.maxBytes > 0 && s.queuedBytes.Load()+int64(it.bytes) > s.cfg.maxBytes {
			st.addDropped(it.points)
			s.dropPoints.Add(uint64(it.points))
			continue
		}
		select {
		case s.queue <- it:
			s.queuedBytes.Add(int64(it.bytes))
			s.accepted.Add(uint64(it.points))
		default:
			st.addDropped(it.points)
			s.dropPoints.Add(uint64(it.points))
		}
	}
}

// sizeEvery is how often the exact size of a batch is measured; the others
// are estimated from the bytes per data point measured last.
const sizeEvery = 16

// sizeOf returns the OTLP protobuf size of md, measured on one batch in
// sizeEvery and estimated from the data points on the others: measuring
// walks every data point, which would cost the hot path a few percent.
func (s *sender) sizeOf(md pmetric.Metrics, points int) int {
	bpp := math.Float64frombits(s.bytesPerPoint.Load())
	if s.sized.Add(1)%sizeEvery == 1 || bpp == 0 || points == 0 {
		n := sizer.MetricsSize(md)
		if points > 0 {
			s.bytesPerPoint.Store(math.Float64bits(float64(n) / float64(points)))
		}
		return n
	}
	return int(bpp * float64(points))
}

// work exports the queued batches and, while the sender is its
// provider's spool consumer, the spooled ones. When the queue is closed
// (the sender stops) it still drains the spool it consumes, until the stop
// cancels it.
func (s *sender) work(worker int) {
	for {
		if it := s.takeSpooled(); it != nil {
			s.export(worker, it)
			continue
		}
		select {
		case it, ok := <-s.queue:
			if !ok {
				for it := s.takeSpooled(); it != nil; it = s.takeSpooled() {
					s.export(worker, it)
				}
				return
			}
			s.export(worker, it)
		case <-s.wake:
		}
	}
}

// takeSpooled returns the next batch of the spool this sender consumes.
func (s *sender) takeSpooled() *item {
	sp := s.spool.Load()
	if sp == nil {
		return nil
	}
	return sp.take(s, s.drop)
}

func (s *sender) drop(points int) {
	s.stats.Load().addDropped(points)
	s.dropPoints.Add(uint64(points))
}

func (s *sender) export(worker int, it *item) {
	if it.spooled == nil {
		s.queuedBytes.Add(-int64(it.bytes))
	}
	st := s.stats.Load()
	if s.ctx.Err() != nil {
		if it.spooled != nil {
			it.sp.release(it.spooled) // sent by the next consumer or after the restart
			return
		}
		st.addDropped(it.points)
		s.dropPoints.Add(uint64(it.points))
		return
	}
	md := it.md
	if s.mutates && it.shared {
		md = pmetric.NewMetrics()
		it.md.CopyTo(md)
	}
	start := s.now()
	s.inflight[worker].Store(start.UnixNano())
	err := s.cfg.scrub.err(s.cfg.exp.ConsumeMetrics(s.ctx, md))
	s.inflight[worker].Store(0)
	latency := s.now().Sub(start)
	if err != nil && s.ctx.Err() != nil {
		if it.spooled != nil {
			it.sp.release(it.spooled)
			return
		}
		// Stopped while exporting: the batch is dropped, not failed.
		st.addDropped(it.points)
		s.dropPoints.Add(uint64(it.points))
		return
	}
	countFailed := err != nil && it.kind != kindProbe
	if countFailed && it.kind == kindNormal {
		if fo := s.failover.Load(); fo != nil && (*fo)(it) {
			countFailed = false
		}
	}
	if err == nil {
		s.sentPoints.Add(uint64(it.points))
	}
	st.recordExport(md, it.points, it.bytes, latency, err, countFailed)
	if it.spooled != nil {
		it.sp.ack(it.spooled) // exported, failed for good, or handed to the failover provider
	}
}

// queueInfo reports the queue's fill.
func (s *sender) queueInfo() queueInfo {
	return queueInfo{size: len(s.queue), capacity: cap(s.queue), bytes: s.queuedBytes.Load()}
}

// tick checks the queue fill and stalled exports once a second.
func (s *sender) tick() {
	st := s.stats.Load()
	var reason string
	if q := s.queueInfo(); float64(q.size) >= queueDegradedFill*float64(q.capacity) {
		reason = fmt.Sprintf("queue %d/%d batches full", q.size, q.capacity)
	}
	if sp := s.spool.Load(); sp != nil {
		sp.tick()
		if ss := sp.stats(); float64(ss.diskBytes) >= queueDegradedFill*float64(ss.maxBytes) {
			reason = fmt.Sprintf("spool %d/%d bytes full (spool.max_bytes)", ss.diskBytes, ss.maxBytes)
		}
	}
	now := s.now()
	for i := range s.inflight {
		if t := s.inflight[i].Load(); t > 0 && now.Sub(time.Unix(0, t)) > s.cfg.stallAfter {
			reason = fmt.Sprintf("an export has been running for %s (retrying?)", now.Sub(time.Unix(0, t)).Round(time.Second))
			break
		}
	}
	if on := reason != ""; on != s.pressure || on {
		s.pressure = on
		st.setPressure(on, reason)
	}
	st.tick()
}

// retire stops taking data. When it returns, no consume or enqueue is in
// progress and none will succeed.
func (s *sender) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
}

// markUnrouted notes that s no longer receives data (it left the routing
// table): what it exports or drops from now on is its drain, even when stop
// is called later.
func (s *sender) markUnrouted() {
	if s == nil {
		return
	}
	sent, drop := s.sentPoints.Load(), s.dropPoints.Load()
	if s.unrouted.CompareAndSwap(false, true) {
		s.sentAtUnroute.Store(sent)
		s.dropAtUnroute.Store(drop)
	}
}

// stop retires the sender, lets the workers drain the queue until ctx ends
// (at once when !graceful), drops and counts what is left, and shuts the
// exporter down. It returns the data points exported and dropped from the
// moment it was called. Only the first call does anything.
func (s *sender) stop(ctx context.Context, graceful bool) (drained, dropped uint64, err error) {
	if !s.stopped.CompareAndSwap(false, true) {
		return 0, 0, nil // stopped already
	}
	sentBefore, dropBefore := s.sentPoints.Load(), s.dropPoints.Load()
	if s.unrouted.Load() {
		sentBefore, dropBefore = s.sentAtUnroute.Load(), s.dropAtUnroute.Load()
	}
	s.retire()
	if !graceful {
		s.cancel()
	}
	if s.started {
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.cancel()
			<-done
		}
	} else {
		for it := range s.queue {
			s.stats.Load().addDropped(it.points)
			s.dropPoints.Add(uint64(it.points))
		}
	}
	s.cancel()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if serr := s.cfg.exp.Shutdown(sctx); serr != nil && !errors.Is(serr, context.Canceled) {
		err = fmt.Errorf("shut down exporter %s: %w", s.cfg.id, serr)
	}
	return s.sentPoints.Load() - sentBefore, s.dropPoints.Load() - dropBefore, err
}
