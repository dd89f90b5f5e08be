package stream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Hub fans accepted batches out to subscriptions. It is safe for concurrent
// use.
type Hub struct {
	cfg    Config
	logger *zap.Logger
	now    func() time.Time

	mu     sync.Mutex
	subs   map[string]*subscription
	closed bool
	routes atomic.Pointer[routing]
	mem    atomic.Int64 // bytes of batches held in memory
	active atomic.Int64 // running streams

	done     chan struct{}
	doneOnce sync.Once
	wg       sync.WaitGroup
	started  bool
	disk     *diskStore

	// cluster mode (WithCluster): streams read the cluster log
	cluster        ClusterLog
	clusterStreams map[string]*attachment // running streams by subscription id
}

// Option configures a Hub.
type Option func(*Hub)

// WithCluster puts the hub in cluster mode over log: Stage/Commit publish
// each committed batch to log instead of delivering it, and every stream
// reads log (so it carries the batches of every node, in the log's one
// order, numbered by the log's sequences).
func WithCluster(log ClusterLog) Option {
	return func(h *Hub) { h.cluster = log }
}

// routing is the immutable set of subscriptions that Stage routes to, with
// a cache of the name and type part of their filters per metric.
type routing struct {
	subs  []*subscription
	cache sync.Map // routeKey -> *route
}

type routeKey struct {
	name string
	typ  pb.MetricType
	unit string
}

// route lists, by index in routing.subs, the subscriptions a metric goes to:
// all its data points, or those that pass the label matchers. Subscriptions
// with an equality matcher are indexed by it, so that a point is checked
// only against the subscriptions that want its value of that label; the
// others are checked one by one.
type route struct {
	all     []int32
	labeled []int32
	indexes []labelIndex
}

// labelIndex maps values of one label to the subscriptions that want them.
type labelIndex struct {
	name string
	subs map[string][]int32
}

func (rt *route) empty() bool {
	return len(rt.all) == 0 && len(rt.labeled) == 0 && len(rt.indexes) == 0
}

func (rt *route) index(name, value string, sub int32) {
	for i := range rt.indexes {
		if rt.indexes[i].name == name {
			rt.indexes[i].subs[value] = append(rt.indexes[i].subs[value], sub)
			return
		}
	}
	rt.indexes = append(rt.indexes, labelIndex{name: name, subs: map[string][]int32{value: {sub}}})
}

func (r *routing) route(m pmetric.Metric, typ pb.MetricType) *route {
	k := routeKey{name: m.Name(), typ: typ}
	if typ == pb.MetricType_METRIC_TYPE_HISTOGRAM {
		k.unit = m.Unit() // a TIMER filter matches histograms in seconds
	}
	if v, ok := r.cache.Load(k); ok {
		return v.(*route)
	}
	rt := &route{}
	for i, s := range r.subs {
		if !s.filter.MatchMetric(k.name, typ, m.Unit()) {
			continue
		}
		switch name, value, indexed := s.filter.indexLabel(); {
		case indexed:
			rt.index(name, value, int32(i))
		case s.filter.HasLabelMatchers():
			rt.labeled = append(rt.labeled, int32(i))
		default:
			rt.all = append(rt.all, int32(i))
		}
	}
	v, _ := r.cache.LoadOrStore(k, rt)
	return v.(*route)
}

// NewHub returns a hub; cfg must be valid. Start it before use.
func NewHub(cfg Config, logger *zap.Logger, opts ...Option) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, logger: logger, now: time.Now, subs: make(map[string]*subscription), done: make(chan struct{})}
	h.routes.Store(&routing{})
	for _, o := range opts {
		o(h)
	}
	if h.cluster != nil {
		if cfg.Replay.Directory != "" {
			return nil, errors.New("replay.directory: not used in cluster mode (the JetStream stream is the replay log); remove it")
		}
		h.clusterStreams = make(map[string]*attachment)
	}
	return h, nil
}

// Start opens the disk logs (recovering the subscriptions they hold) and
// starts the janitor that expires idle subscriptions and old batches.
func (h *Hub) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.started {
		return nil
	}
	h.started = true
	if h.cfg.Replay.Directory != "" {
		d, err := openDiskStore(h, h.cfg.Replay.Directory)
		if err != nil {
			return err
		}
		h.disk = d
		if err := h.recoverLocked(); err != nil {
			return err
		}
		h.wg.Go(func() { d.run(h.done) })
	}
	h.wg.Go(h.janitor)
	return nil
}

// Close ends every stream with ErrClosed and releases the subscriptions.
// Disk logs are kept (with the open batches closed into them) for a restart.
// It is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	subs := h.subs
	h.subs = nil
	h.routes.Store(&routing{})
	h.mu.Unlock()
	h.doneOnce.Do(func() { close(h.done) })
	h.wg.Wait()
	now := h.now()
	for _, s := range subs {
		s.mu.Lock()
		if s.replay && len(s.pending) > 0 && h.disk != nil {
			s.cutLocked(now)
		}
		s.releaseLocked(false)
		s.mu.Unlock()
	}
	if h.disk != nil {
		h.disk.close()
	}
}

// Subscriptions returns the number of subscriptions (streaming or kept for
// a resume; in cluster mode, streaming: nothing else is kept on the node).
func (h *Hub) Subscriptions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) + len(h.clusterStreams)
}

// Streams returns the number of running streams.
func (h *Hub) Streams() int { return int(h.active.Load()) }

// MemoryBytes returns the bytes of batches held in memory.
func (h *Hub) MemoryBytes() int64 { return h.mem.Load() }

// rebuildLocked publishes a new routing after the subscriptions changed.
func (h *Hub) rebuildLocked() {
	r := &routing{subs: make([]*subscription, 0, len(h.subs))}
	for _, s := range h.subs {
		r.subs = append(r.subs, s)
	}
	h.routes.Store(r)
}

// Staged holds the data points of one accepted-to-be batch, per
// subscription, until the pipeline answered. A nil *Staged (nothing
// matched) is valid.
type Staged struct {
	r      *routing
	per    [][][]byte
	points int // in the batch: the most any subscription gets

	cluster ClusterLog // cluster mode: publish payload on Commit
	payload []byte
}

// Stage picks out of md the data points some subscription selects and
// encodes each of them once. It runs on the ingest path, inside the
// receiver's per-series locks: with no subscriptions it costs one atomic
// load; otherwise one cache lookup per metric, the label matchers of the
// subscriptions that have them per data point, and the encoding of matched
// data points only. md is only read.
func (h *Hub) Stage(md pmetric.Metrics) *Staged {
	if h.cluster != nil {
		return h.stageCluster(md)
	}
	r := h.routes.Load()
	if len(r.subs) == 0 {
		return nil
	}
	return stage(r, md)
}

// stage routes md through r.
func stage(r *routing, md pmetric.Metrics) *Staged {
	var st *Staged
	var enc *encoder
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		resourceSet := false
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				typ := streamType(m)
				if typ == pb.MetricType_METRIC_TYPE_UNSPECIFIED {
					continue
				}
				rt := r.route(m, typ)
				if rt.empty() {
					continue
				}
				if enc == nil {
					enc = encoders.Get().(*encoder)
				}
				if !resourceSet {
					enc.setResource(rm.Resource().Attributes())
					resourceSet = true
				}
				if st == nil {
					st = &Staged{r: r, per: make([][][]byte, len(r.subs)), points: md.DataPointCount()}
				}
				st.metric(enc, rt, m, typ)
			}
		}
	}
	if enc != nil {
		encoders.Put(enc)
	}
	return st
}

// metric routes the data points of one metric.
func (st *Staged) metric(enc *encoder, rt *route, m pmetric.Metric, typ pb.MetricType) {
	mt := &metric{m: m, typ: typ}
	if m.Type() == pmetric.MetricTypeSum {
		mt.cumulative = m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
	}
	enc.setMetric(mt)
	switch m.Type() {
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		routePoints(st, enc, rt, dps.Len(), dps.At, enc.number)
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		routePoints(st, enc, rt, dps.Len(), dps.At, enc.number)
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		routePoints(st, enc, rt, dps.Len(), dps.At, enc.histogram)
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		routePoints(st, enc, rt, dps.Len(), dps.At, enc.exponential)
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		routePoints(st, enc, rt, dps.Len(), dps.At, enc.summary)
	}
}

// routePoints adds each data point to the subscriptions it goes to. A point
// is encoded once, on its first match, and shared by all its subscriptions.
// When no subscription of the metric has label matchers, every point goes
// to the same subscriptions, and the points share one allocation (they are
// queued, sent and dropped together).
func routePoints[D interface{ Attributes() pcommon.Map }](st *Staged, enc *encoder, rt *route, n int, at func(int) D, encode func(D)) {
	if len(rt.labeled) == 0 && len(rt.indexes) == 0 {
		enc.reset()
		for i := 0; i < n; i++ {
			encode(at(i))
		}
		items := enc.copyOut()
		for _, si := range rt.all {
			st.add(si, items)
		}
		return
	}
	for i := 0; i < n; i++ {
		dp := at(i)
		var item []byte
		if len(rt.all) > 0 {
			item = encodeOne(enc, dp, encode)
			for _, si := range rt.all {
				st.per[si] = append(st.per[si], item)
			}
		}
		attrs := dp.Attributes()
		for _, si := range rt.labeled {
			if !st.r.subs[si].filter.MatchLabels(attrs) {
				continue
			}
			if item == nil {
				item = encodeOne(enc, dp, encode)
			}
			st.per[si] = append(st.per[si], item)
		}
		for i := range rt.indexes {
			idx := &rt.indexes[i]
			v, ok := attrs.Get(idx.name)
			if !ok {
				continue
			}
			var want []int32
			if v.Type() == pcommon.ValueTypeStr {
				want = idx.subs[v.Str()]
			} else {
				want = idx.subs[v.AsString()]
			}
			for _, si := range want {
				if !st.r.subs[si].filter.MatchLabels(attrs) {
					continue
				}
				if item == nil {
					item = encodeOne(enc, dp, encode)
				}
				st.per[si] = append(st.per[si], item)
			}
		}
	}
}

// add appends items to the points of subscription si.
func (st *Staged) add(si int32, items [][]byte) {
	cur := st.per[si]
	switch {
	case len(cur) == 0:
		st.per[si] = items // shared: len == cap, so a later append copies
	case cap(cur)-len(cur) >= len(items):
		st.per[si] = append(cur, items...)
	default:
		grown := make([][]byte, len(cur), max(st.points, len(cur)+len(items)))
		copy(grown, cur)
		st.per[si] = append(grown, items...)
	}
}

// encodeOne encodes one point into its own allocation.
func encodeOne[D any](enc *encoder, dp D, encode func(D)) []byte {
	enc.reset()
	encode(dp)
	return append([]byte(nil), enc.buf...)
}

// Commit hands the staged data points to their subscriptions. It does not
// block on any stream.
func (st *Staged) Commit() error {
	if st == nil {
		return nil
	}
	if st.cluster != nil {
		st.cluster.Publish(st.payload, st.points)
		st.payload = nil
		return nil
	}
	var now time.Time
	for i, items := range st.per {
		if len(items) == 0 {
			continue
		}
		if now.IsZero() {
			now = st.r.subs[i].hub.now()
		}
		st.r.subs[i].publish(items, now)
	}
	st.per = nil
	return nil
}

// Rollback discards the staged data points.
func (st *Staged) Rollback() {
	if st != nil {
		st.per = nil
		st.payload = nil
	}
}

// janitor expires batches past replay.max_age and subscriptions idle past
// replay.idle_ttl.
func (h *Hub) janitor() {
	every := min(h.cfg.Replay.IdleTTL, h.cfg.Replay.MaxAge) / 4
	every = min(max(every, 10*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
			h.sweep(h.now())
		}
	}
}

// sweep runs one janitor pass.
func (h *Hub) sweep(now time.Time) {
	h.mu.Lock()
	subs := make([]*subscription, 0, len(h.subs))
	for _, s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		expired := s.att == nil && now.Sub(s.detachedAt) > h.cfg.Replay.IdleTTL
		if s.replay && !s.removed {
			s.log.trim(now)
		}
		s.mu.Unlock()
		if expired {
			if h.remove(s, true) {
				h.logger.Info("Subscription expired without a stream", zap.String("subscription_id", s.id),
					zap.Duration("idle_ttl", h.cfg.Replay.IdleTTL))
			}
		}
	}
}

// reclaimLocked frees the slot of the subscription idle the longest among
// the resumable ones (a replay log, no stream attached), so that idle
// subscriptions cannot hold every slot for replay.idle_ttl. A later resume of
// it is answered like one of an expired subscription. It reports whether it
// freed a slot. h.mu is held.
func (h *Hub) reclaimLocked() bool {
	var oldest *subscription
	var since time.Time
	for _, s := range h.subs {
		s.mu.Lock()
		idle := s.replay && s.att == nil && !s.removed
		at := s.detachedAt
		s.mu.Unlock()
		if idle && (oldest == nil || at.Before(since)) {
			oldest, since = s, at
		}
	}
	if oldest == nil {
		return false
	}
	oldest.mu.Lock()
	defer oldest.mu.Unlock()
	if oldest.att != nil || oldest.removed {
		return false
	}
	delete(h.subs, oldest.id)
	h.rebuildLocked()
	oldest.releaseLocked(true)
	h.logger.Info("Subscription reclaimed for a new one: stream.max_subscribers reached",
		zap.String("subscription_id", oldest.id), zap.Duration("idle", h.now().Sub(since)),
		zap.Int("max_subscribers", h.cfg.MaxSubscribers))
	return true
}

// remove deletes s unless a stream is attached to it again; it reports
// whether it did.
func (h *Hub) remove(s *subscription, deleteLog bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.att != nil || s.removed || h.subs[s.id] != s {
		return false
	}
	delete(h.subs, s.id)
	h.rebuildLocked()
	s.releaseLocked(deleteLog)
	return true
}

var subscriptionIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// newSubscriptionID returns a random id for a stream that named none.
func newSubscriptionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "sub-" + hex.EncodeToString(b[:])
}

// params are a stream's validated options.
type params struct {
	id           string
	qos          pb.QualityOfService
	replay       bool
	batchSize    int
	batchTimeout time.Duration
	heartbeat    time.Duration
	buffer       int
	resume       *uint64
}

func (h *Hub) params(o *pb.StreamOptions) (params, error) {
	p := params{
		id:           o.GetSubscriptionId(),
		qos:          o.GetQos(),
		batchSize:    defaultBatchSize,
		batchTimeout: defaultBatchTimeout,
		heartbeat:    defaultHeartbeat,
		buffer:       h.cfg.BufferSize,
	}
	if o == nil {
		p.qos = pb.QualityOfService_QUALITY_OF_SERVICE_BEST_EFFORT
		return p, nil
	}
	if o.ResumeAfterSequence != nil {
		v := *o.ResumeAfterSequence
		p.resume = &v
	}
	switch p.qos {
	case pb.QualityOfService_QUALITY_OF_SERVICE_UNSPECIFIED, pb.QualityOfService_QUALITY_OF_SERVICE_BEST_EFFORT:
		p.qos = pb.QualityOfService_QUALITY_OF_SERVICE_BEST_EFFORT
		if p.resume != nil {
			return p, invalid("options.resume_after_sequence: a best-effort stream cannot resume (it keeps no replay log); use qos QUALITY_OF_SERVICE_AT_LEAST_ONCE")
		}
	case pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE, pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE:
		p.replay = true
	default:
		return p, invalid("options.qos: %d is not a quality of service", p.qos)
	}
	if p.id != "" && !subscriptionIDPattern.MatchString(p.id) {
		return p, invalid("options.subscription_id: %q must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", p.id)
	}
	if o.BatchSize > 0 {
		if int(o.BatchSize) > h.cfg.MaxBatchSize {
			return p, invalid("options.batch_size: %d is more than the server's limit %d", o.BatchSize, h.cfg.MaxBatchSize)
		}
		p.batchSize = int(o.BatchSize)
	}
	if o.BatchTimeoutMs > 0 {
		p.batchTimeout = time.Duration(o.BatchTimeoutMs) * time.Millisecond
		if p.batchTimeout > maxBatchTimeout {
			return p, invalid("options.batch_timeout_ms: %d is more than %d", o.BatchTimeoutMs, maxBatchTimeout.Milliseconds())
		}
	}
	if o.HeartbeatIntervalMs > 0 {
		p.heartbeat = time.Duration(o.HeartbeatIntervalMs) * time.Millisecond
		if p.heartbeat < minHeartbeat {
			return p, invalid("options.heartbeat_interval_ms: %d is less than %d", o.HeartbeatIntervalMs, minHeartbeat.Milliseconds())
		}
	}
	if o.BufferSize > 0 {
		if int(o.BufferSize) > h.cfg.MaxBufferSize {
			return p, invalid("options.buffer_size: %d is more than the server's limit %d", o.BufferSize, h.cfg.MaxBufferSize)
		}
		p.buffer = int(o.BufferSize)
	}
	return p, nil
}

// Subscribe opens a stream: it creates the subscription, or resumes or
// takes over the one named by subscription_id. Errors: ErrInvalidRequest,
// ErrTooManySubscribers, ErrSubscriptionMismatch, ErrResumeAhead,
// *DataLossError, ErrClosed.
func (h *Hub) Subscribe(req *pb.StreamMetricsRequest) (*Stream, error) {
	p, err := h.params(req.GetOptions())
	if err != nil {
		return nil, err
	}
	spec := req.GetFilter().CloneVT()
	if spec == nil {
		spec = &pb.MetricFilter{}
	}
	filter, err := CompileFilter(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if h.cluster != nil {
		return h.subscribeCluster(p, filter)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if p.id == "" {
		p.id = newSubscriptionID()
	}
	s := h.subs[p.id]
	created := false
	if s == nil {
		if p.resume != nil && *p.resume > 0 {
			return nil, &DataLossError{SubscriptionID: p.id, From: *p.resume + 1, Unknown: true}
		}
		if len(h.subs) >= h.cfg.MaxSubscribers && !h.reclaimLocked() {
			return nil, fmt.Errorf("%w: the server holds stream.max_subscribers (%d) subscriptions, each with a live stream (fix: retry later, or raise stream.max_subscribers)", ErrTooManySubscribers, h.cfg.MaxSubscribers)
		}
		s = &subscription{
			hub: h, id: p.id, filter: filter, spec: spec, replay: p.replay, qos: p.qos, nextSeq: 1,
			batchSize: p.batchSize, batchTimeout: p.batchTimeout, maxBatches: p.buffer,
		}
		if p.replay {
			if s.log, err = h.newLog(s); err != nil {
				return nil, err
			}
		}
		created = true
	} else if s.replay != p.replay || !s.spec.EqualVT(spec) {
		return nil, fmt.Errorf("%w: subscription %q (open it with the same filter and qos, or use another subscription_id)", ErrSubscriptionMismatch, p.id)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	att := &attachment{notify: make(chan struct{}, 1), kicked: make(chan struct{})}
	last := s.nextSeq - 1
	resumeFrom := s.lastSent
	if p.resume != nil {
		n := *p.resume
		if n > last {
			return nil, fmt.Errorf("%w: subscription %q has produced up to sequence %d, resume_after_sequence is %d", ErrResumeAhead, p.id, last, n)
		}
		if gone := s.log.gone(); n < gone {
			return nil, &DataLossError{SubscriptionID: p.id, From: n + 1, To: gone}
		}
		resumeFrom = n
	}
	att.cursor = resumeFrom + 1
	if created {
		h.subs[p.id] = s
		h.rebuildLocked()
	}
	if s.att != nil {
		close(s.att.kicked)
	}
	s.att = att
	s.batchSize = p.batchSize
	s.batchTimeout = p.batchTimeout
	s.maxBatches = p.buffer
	h.active.Add(1)
	return &Stream{hub: h, sub: s, att: att, heartbeat: p.heartbeat, lastSent: resumeFrom}, nil
}

// detach unlinks a finished stream; a best-effort subscription ends with
// its stream, a replay subscription waits replay.idle_ttl for a resume.
func (h *Hub) detach(st *Stream) {
	s := st.sub
	s.mu.Lock()
	mine := s.att == st.att
	if mine {
		s.att = nil
		s.detachedAt = h.now()
	}
	s.mu.Unlock()
	if mine && !s.replay {
		h.remove(s, true)
	}
	h.active.Add(-1)
}
