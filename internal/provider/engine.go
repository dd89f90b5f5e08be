package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/service/hostcapabilities"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Settings configure an Engine.
type Settings struct {
	component.TelemetrySettings
	// BuildInfo is passed to the exporters.
	BuildInfo component.BuildInfo
	// MaxProviders bounds the registry.
	MaxProviders int
	// MaxVersions is the config history kept per provider.
	MaxVersions int
	// MaxBackups is the number of backups kept (oldest go first).
	MaxBackups int
	// ShutdownDrainTimeout bounds the drain of the providers' queues on shutdown.
	ShutdownDrainTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Policy says which destinations and files providers may use; the
	// zero value is the safe default.
	Policy DestinationPolicy
	// LookupHost resolves host names for probe_destination and the loop
	// check of a starting provider; nil is the system resolver (tests use
	// an in-process one).
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// Etcd, when set, keeps the registry in etcd (shared by a fleet of
	// collectors) instead of the storage client given to Start.
	Etcd *EtcdConfig
	// OnRegistryHealth is called when the registry becomes degraded or
	// healthy again (etcd only); it must not block.
	OnRegistryHealth func(RegistryHealth)
}

// Defaults of Settings and of the requests.
const (
	DefaultMaxProviders         = 100
	DefaultMaxVersions          = 50
	DefaultMaxBackups           = 200
	DefaultShutdownDrainTimeout = 10 * time.Second
	defaultDrainTimeout         = 30 * time.Second
	defaultVerifyPeriod         = 30 * time.Second
	tickInterval                = time.Second
	verifyPoll                  = 20 * time.Millisecond
)

// Engine is the provider registry: it builds, runs, changes and removes
// providers, persists them, and feeds the Router.
type Engine struct {
	set       Settings
	log       *zap.Logger
	now       func() time.Time
	router    *Router
	host      component.Host
	factories hostcapabilities.ComponentFactory
	store     registryStore
	policy    *policy
	// etcd is the etcd registry (nil: storage client or memory).
	etcd          *etcdStore
	storageBacked bool
	etcdCancel    context.CancelFunc
	etcdDone      chan struct{}

	mu        sync.Mutex
	providers map[string]*providerState
	backups   map[string]*backupRecord
	backupIDs []string // oldest first
	started   bool
	stopping  bool
	seq       atomic.Uint64
	// gen is the last provider generation issued (guarded by mu).
	gen uint64

	baseCtx    context.Context
	baseCancel context.CancelFunc
	// quit is closed when shutdown begins: blue-green verifications end.
	quit     chan struct{}
	quitOnce sync.Once
	bg       sync.WaitGroup
	tickStop chan struct{}
	tickDone chan struct{}
	tel      *telemetry
	// spoolCfg is the durable provider queue's config (nil: off), set once
	// by EnableSpool; guarded by mu.
	spoolCfg *SpoolConfig
}

// providerState is one provider in memory. Its fields are guarded by
// Engine.mu; op serializes the operations on the provider (create, update,
// delete), which do their slow work (start, drain) without Engine.mu.
type providerState struct {
	op        sync.Mutex
	rec       *record
	cfg       *pb.ProviderConfig
	state     pb.ProviderState
	lastError string
	primary   *sender
	shadow    *sender
	// gap is set while a RECREATE update has no exporter: data is dropped and counted.
	gap          bool
	stats        *Stats
	exporterType string
	exporterID   string
	lastProbe    atomic.Int64
	timer        *time.Timer
	removed      bool
	// oper is the update or deletion in progress, or the last one.
	oper *operation
	// generation is issued once per creation of the id, never reused.
	generation uint64
	// spool is the provider's durable queue (nil: off, or not opened yet).
	spool *spool
	// replacing is the running sender an update replaces, set just before
	// runLocked starts its successor: it keeps sending the spooled batches
	// pending at the switch until retireOld ends its drain.
	replacing *sender
	// legacyGen is set when the generation was issued at restore (a record
	// stored before generations): it may differ after the next restart.
	legacyGen bool
}

// NewEngine returns an engine; Start restores and starts the providers.
func NewEngine(set Settings) *Engine {
	if set.MaxProviders <= 0 {
		set.MaxProviders = DefaultMaxProviders
	}
	if set.MaxVersions <= 0 {
		set.MaxVersions = DefaultMaxVersions
	}
	if set.MaxBackups <= 0 {
		set.MaxBackups = DefaultMaxBackups
	}
	if set.ShutdownDrainTimeout <= 0 {
		set.ShutdownDrainTimeout = DefaultShutdownDrainTimeout
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		set: set, log: set.Logger, now: set.Now,
		router:    newRouter(set.Now),
		policy:    newPolicy(set.Policy),
		providers: map[string]*providerState{},
		backups:   map[string]*backupRecord{},
		baseCtx:   ctx, baseCancel: cancel,
		quit: make(chan struct{}),
	}
	e.router.enableSpool = e.EnableSpool
	tel, err := newTelemetry(set.MeterProvider, e)
	if err != nil {
		e.log.Warn("Provider telemetry is off: its instruments could not be created", zap.Error(err))
	} else {
		e.tel = tel
	}
	return e
}

// ComponentFactory returns the host's component factories (after Start;
// nil when the host has none).
func (e *Engine) ComponentFactory() hostcapabilities.ComponentFactory { return e.factories }

// Router returns the routing table the providers exporter consumes through.
func (e *Engine) Router() *Router { return e.router }

// Start restores the persisted providers (client may be nil: in memory
// only), starts those that should run, and starts the once-a-second checks.
// A provider that fails to start is FAILED; it does not fail Start.
func (e *Engine) Start(ctx context.Context, host component.Host, client storage.Client) error {
	e.host = host
	e.factories, _ = host.(hostcapabilities.ComponentFactory)
	if e.factories == nil {
		e.log.Warn("The host does not expose component factories; providers cannot be built")
	}
	if e.set.Etcd != nil {
		st, err := newEtcdStore(*e.set.Etcd, e.log)
		if err != nil {
			return err
		}
		st.e = e
		e.etcd, e.store = st, st
	} else {
		e.store = &persister{client: client}
		e.storageBacked = client != nil
	}
	recs, backups, gen, bad, err := e.store.load(ctx)
	if err != nil {
		if e.etcd != nil {
			_ = e.etcd.close()
		}
		return err
	}
	for _, err := range bad {
		e.log.Error("Skipping an unreadable stored provider", zap.Error(err))
	}
	e.mu.Lock()
	for _, b := range backups {
		e.backups[b.ID] = b
		e.backupIDs = append(e.backupIDs, b.ID)
	}
	sort.Slice(e.backupIDs, func(i, j int) bool {
		return e.backups[e.backupIDs[i]].CreatedAt.Before(e.backups[e.backupIDs[j]].CreatedAt)
	})
	e.gen = gen
	e.started = true
	e.mu.Unlock()

	restored, started := 0, 0
	for _, r := range recs {
		ok, err := e.restore(ctx, r)
		if err != nil {
			e.log.Error("Could not restore provider", zap.String("provider_id", r.ID), zap.Error(err))
			continue
		}
		restored++
		if ok {
			started++
		}
	}
	if len(recs) > 0 {
		e.log.Info("Restored providers", zap.Int("providers", restored), zap.Int("running", started))
	}
	e.tickStop, e.tickDone = make(chan struct{}), make(chan struct{})
	go e.tickLoop()
	if e.etcd != nil {
		wctx, cancel := context.WithCancel(context.Background())
		e.etcdCancel, e.etcdDone = cancel, make(chan struct{})
		go func() {
			defer close(e.etcdDone)
			e.etcd.run(wctx)
		}()
	}
	return nil
}

// restore brings one stored record back; it reports whether it runs.
func (e *Engine) restore(ctx context.Context, r *record) (bool, error) {
	cfg, err := r.current()
	if err != nil {
		return false, err
	}
	if e.etcd == nil && (r.Deleting || (r.DeleteAt != nil && !r.DeleteAt.After(e.now()))) {
		// A deletion was draining or is due: its queue did not survive the restart.
		e.mu.Lock()
		defer e.mu.Unlock()
		return false, e.store.apply(ctx, e.changeLocked(nil, []string{r.ID}, nil, nil))
	}
	ps := &providerState{rec: r, cfg: cfg, state: pb.ProviderState_PROVIDER_STATE_STOPPED}
	ps.stats = newStats(cfg.GetHealthCheck(), e.now, e.providerLogger(r.ID))
	e.mu.Lock()
	if r.Generation == 0 {
		// Stored before generations: issue one (persisted with the next change).
		e.gen++
		r.Generation = e.gen
		ps.legacyGen = true
	}
	ps.generation = r.Generation
	ps.stats.tel = e.tel.forProvider(r.ID, r.Generation)
	if b, err := buildConfig(e.factories, cfg); err == nil {
		ps.exporterType, ps.exporterID = b.exporterType.String(), exporterID(b.exporterType, r.ID, r.Generation, r.Version).String()
	}
	e.providers[r.ID] = ps
	if r.DeleteAt != nil {
		e.scheduleLocked(ps, *r.DeleteAt)
	}
	e.mu.Unlock()
	if !r.Running || r.Deleting {
		return false, nil
	}
	ps.op.Lock()
	defer ps.op.Unlock()
	s, b, err := e.startSender(ctx, cfg, ps.generation, r.Version, ps.stats)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		ps.state, ps.lastError = pb.ProviderState_PROVIDER_STATE_FAILED, err.Error()
		e.log.Error("Provider failed to start", zap.String("provider_id", r.ID), zap.Error(err))
		return false, nil
	}
	e.runLocked(ps, s, b)
	return true, nil
}

// Quiesce makes running blue-green verifications end (rolled back), so
// that management calls in progress finish at once. Shutdown calls it too.
func (e *Engine) Quiesce() {
	e.quitOnce.Do(func() { close(e.quit) })
}

// Shutdown stops taking data, drains the providers' queues (bounded by the
// shutdown drain timeout and ctx), stops their exporters and waits for every
// background task. It is safe without Start and idempotent.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.Quiesce()
	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		return nil
	}
	e.stopping = true
	etcdCancel := e.etcdCancel
	var senders []*sender
	var spools []*spool
	for _, ps := range e.providers {
		if ps.spool != nil {
			// What is spooled stays for the next start: the stopping
			// senders only finish the exports in flight.
			ps.spool.setConsumer(nil)
			spools = append(spools, ps.spool)
		}
		if ps.timer != nil && ps.timer.Stop() {
			e.bg.Done()
		}
		for _, s := range []*sender{ps.primary, ps.shadow} {
			if s != nil {
				senders = append(senders, s)
			}
		}
		ps.primary, ps.shadow = nil, nil
	}
	e.router.publish(nil)
	e.mu.Unlock()
	if e.tickStop != nil {
		close(e.tickStop)
		<-e.tickDone
	}
	if etcdCancel != nil {
		etcdCancel()
		<-e.etcdDone
	}

	dctx, cancel := context.WithTimeout(ctx, e.set.ShutdownDrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(senders))
	for i, s := range senders {
		wg.Go(func() {
			_, dropped, err := s.stop(dctx, true)
			if dropped > 0 {
				e.log.Warn("Dropped queued data points on shutdown", zap.String("provider_id", s.cfg.providerID), zap.Uint64("datapoints", dropped))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, sp := range spools {
		if batches, points := sp.close(); batches > 0 {
			e.log.Info("Kept spooled batches for the next start", zap.String("provider_id", sp.id),
				zap.Int("batches", batches), zap.Int64("datapoints", points))
		}
	}
	// Background deletions get the same deadline, then are cut short.
	done := make(chan struct{})
	go func() {
		e.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-dctx.Done():
		e.baseCancel()
		<-done
	}
	e.baseCancel()
	if e.etcd != nil {
		errs = append(errs, e.etcd.close())
	}
	if e.tel != nil && e.tel.reg != nil {
		errs = append(errs, e.tel.reg.Unregister())
	}
	return errors.Join(errs...)
}

func (e *Engine) tickLoop() {
	defer close(e.tickDone)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-e.tickStop:
			return
		case <-t.C:
			e.tick()
		}
	}
}

// tick runs the once-a-second checks of every provider: queue fill, stalled
// exports, health windows and anomaly detection.
func (e *Engine) tick() {
	e.mu.Lock()
	var senders []*sender
	var idle []*Stats
	for _, ps := range e.providers {
		if ps.primary != nil {
			senders = append(senders, ps.primary)
		} else {
			idle = append(idle, ps.stats)
		}
		if ps.shadow != nil {
			senders = append(senders, ps.shadow)
		}
	}
	e.mu.Unlock()
	for _, s := range senders {
		s.tick()
	}
	for _, st := range idle {
		st.tick()
	}
}

func (e *Engine) providerLogger(id string) *zap.Logger {
	return e.log.With(zap.String("provider_id", id))
}

// startSender builds, creates and starts the exporter of pc with its wrapper.
// The destination policy is checked first (a stored config may predate
// it); every error is scrubbed of the config's secrets.
func (e *Engine) startSender(ctx context.Context, pc *pb.ProviderConfig, gen, version uint64, stats *Stats) (*sender, *built, error) {
	scrub := newScrubber(pc)
	s, b, err := e.startSenderScrubbed(ctx, pc, gen, version, stats, scrub)
	return s, b, scrub.err(err)
}

func (e *Engine) startSenderScrubbed(ctx context.Context, pc *pb.ProviderConfig, gen, version uint64, stats *Stats, scrub *scrubber) (*sender, *built, error) {
	if err := e.checkPolicy(pc); err != nil {
		return nil, nil, err
	}
	b, err := buildConfig(e.factories, pc)
	if err != nil {
		return nil, nil, err
	}
	flt, err := compileFilter(pc.GetFilter())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFailedPrecondition, err)
	}
	id := exporterID(b.exporterType, pc.GetProviderId(), gen, version)
	var self atomic.Pointer[sender]
	onRetry := func(err error) {
		if s := self.Load(); s != nil {
			s.stats.Load().recordAttempt(scrub.err(err))
		}
	}
	exp, err := createExporter(ctx, e.set, b, id, pc.GetProviderId(), scrub, onRetry)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFailedPrecondition, err)
	}
	l := pc.GetLimits()
	workers := int(l.GetConcurrency())
	if workers == 0 {
		workers = b.defaultConcurrency
	}
	var stall time.Duration
	if t := providerTimeout(pc); t > 0 {
		stall = 2 * t
	}
	s := newSender(senderConfig{
		providerID: pc.GetProviderId(),
		version:    version,
		id:         id,
		exp:        exp,
		filter:     flt,
		rate:       l.GetMaxDatapointsPerSecond(),
		maxBatch:   int(l.GetMaxBatchSize()),
		queueSize:  int(l.GetQueueSize()),
		maxBytes:   int64(l.GetMaxQueueMemoryBytes()),
		workers:    workers,
		stallAfter: stall,
		scrub:      scrub,
	}, stats, e.providerLogger(pc.GetProviderId()), e.now)
	self.Store(s)
	if fo := pc.GetFailover().GetFailoverProviderId(); fo != "" {
		fn := e.router.failoverFunc(pc.GetProviderId(), fo)
		s.failover.Store(&fn)
	}
	host := &childHost{Host: e.host, report: func(ev *componentstatus.Event) { s.stats.Load().reportStatus(scrubEvent(ev, scrub)) }}
	if err := s.start(context.WithoutCancel(ctx), host); err != nil {
		_, _, _ = s.stop(ctx, false)
		return nil, nil, fmt.Errorf("%w: %w", ErrFailedPrecondition, err)
	}
	return s, b, nil
}

// providerTimeout is the request timeout a provider's settings give.
func providerTimeout(pc *pb.ProviderConfig) time.Duration {
	s := pc.GetSettings()
	if t := s.GetOpentelemetry().GetTimeout(); t != nil {
		return t.AsDuration()
	}
	if t := s.GetPrometheus().GetTimeout(); t != nil {
		return t.AsDuration()
	}
	return 0
}

// runLocked makes s the provider's running exporter and publishes the table.
func (e *Engine) runLocked(ps *providerState, s *sender, b *built) {
	if e.stopping {
		// Started while the engine shuts down: it never takes data.
		go func() { _, _, _ = s.stop(context.Background(), false) }()
		return
	}
	ps.primary, ps.gap = s, false
	ps.state, ps.lastError = pb.ProviderState_PROVIDER_STATE_RUNNING, ""
	e.attachSpoolLocked(ps, s)
	cfg, st := proto.Clone(ps.cfg).(*pb.ProviderConfig), ps.stats
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		e.checkLoop(cfg, st)
	}()
	ps.exporterType, ps.exporterID = b.exporterType.String(), s.cfg.id.String()
	if ps.rec.DeleteAt != nil {
		ps.state = pb.ProviderState_PROVIDER_STATE_DELETING
	}
	e.publishLocked()
}

// publishLocked publishes the routing table of the current providers.
func (e *Engine) publishLocked() {
	if e.stopping {
		return
	}
	ids := make([]string, 0, len(e.providers))
	for id := range e.providers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var routes []*route
	for _, id := range ids {
		ps := e.providers[id]
		if ps.primary == nil && !ps.gap {
			continue
		}
		rt := &route{
			id: id, primary: ps.primary, shadow: ps.shadow, stats: ps.stats, lastProbe: &ps.lastProbe,
			failover: ps.cfg.GetFailover().GetFailoverProviderId(),
		}
		rt.probeEvery = probeInterval(healthConfigOf(ps.cfg.GetHealthCheck()))
		routes = append(routes, rt)
	}
	e.router.publish(routes)
}

// changeLocked describes a storage transaction with the index after it.
func (e *Engine) changeLocked(set []*record, del []string, setB []*backupRecord, delB []string) change {
	c := change{setProviders: set, delProviders: del, setBackups: setB, delBackups: delB, generation: e.gen}
	gone := map[string]bool{}
	for _, id := range del {
		gone[id] = true
	}
	for id, ps := range e.providers {
		if !gone[id] && !ps.removed {
			c.providers = append(c.providers, id)
		}
	}
	for _, r := range set {
		if _, ok := e.providers[r.ID]; !ok {
			c.providers = append(c.providers, r.ID)
		}
	}
	c.backups = append(c.backups, e.backupIDs...)
	return c
}

// scheduleLocked arms the scheduled deletion of ps at t.
func (e *Engine) scheduleLocked(ps *providerState, t time.Time) {
	if ps.timer != nil && ps.timer.Stop() {
		e.bg.Done()
	}
	if e.stopping {
		return
	}
	id := ps.rec.ID
	e.bg.Add(1)
	ps.timer = time.AfterFunc(max(t.Sub(e.now()), 0), func() {
		defer e.bg.Done()
		e.runScheduledDelete(id)
	})
}

func (e *Engine) ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.stopping {
		return fmt.Errorf("%w: the provider registry is not running", ErrUnavailable)
	}
	return nil
}

func (e *Engine) get(id string) (*providerState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ps := e.providers[id]
	if ps == nil || ps.removed {
		return nil, fmt.Errorf("%w: provider %q", ErrNotFound, id)
	}
	return ps, nil
}
