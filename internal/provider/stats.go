package provider

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const (
	ringSeconds     = 300
	topCapacity     = 100
	latencyAccuracy = 0.01
	latencyPeriod   = time.Minute
)

// secondRing holds one value per second for the last ringSeconds seconds.
type secondRing struct {
	secs [ringSeconds]int64
	vals [ringSeconds]float64
}

func (r *secondRing) add(sec int64, v float64) {
	i := sec % ringSeconds
	if r.secs[i] != sec {
		r.secs[i], r.vals[i] = sec, 0
	}
	r.vals[i] += v
}

func (r *secondRing) get(sec int64) float64 {
	i := sec % ringSeconds
	if r.secs[i] != sec {
		return 0
	}
	return r.vals[i]
}

// sum returns the total over the seconds (to-n, to].
func (r *secondRing) sum(to int64, n int64) float64 {
	var s float64
	for sec := to - n + 1; sec <= to; sec++ {
		s += r.get(sec)
	}
	return s
}

// Stats are the statistics and health of one provider. The counters are
// atomics; the windows, sketches and health are behind mu, taken once per
// export (a batch), never per data point.
type Stats struct {
	now     func() time.Time
	log     *zap.Logger
	started time.Time

	sent, failed, dropped, exportErrors, bytesSent atomic.Uint64
	lastExport                                     atomic.Int64
	health                                         atomic.Int32

	// failedAttempts counts failed export attempts, retries included.
	failedAttempts atomic.Uint64

	mu            sync.Mutex
	lastError     string
	lastErrorTime time.Time
	reasons       map[string]uint64
	points        secondRing // data points sent per second
	okExp         secondRing
	failExp       secondRing
	latSum        secondRing // seconds of export latency per second
	latCur        *ddsketch.DDSketch
	latPrev       *ddsketch.DDSketch
	latRotate     time.Time
	top           *topK
	tracker       healthTracker
	anomalies     anomalyDetector
	lastTick      int64
	// tel is the provider's internal telemetry (nil: none).
	tel *providerTel
}

// lastErr returns the last error and its time.
func (s *Stats) lastErr() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError, s.lastErrorTime
}

func newStats(h *pb.HealthCheckSettings, now func() time.Time, log *zap.Logger) *Stats {
	cur, _ := ddsketch.NewDefaultDDSketch(latencyAccuracy)
	prev, _ := ddsketch.NewDefaultDDSketch(latencyAccuracy)
	t := now()
	return &Stats{
		now: now, log: log, started: t, latCur: cur, latPrev: prev, latRotate: t,
		top: newTopK(topCapacity), tracker: healthTracker{cfg: healthConfigOf(h)}, anomalies: newAnomalyDetector(), lastTick: t.Unix(),
	}
}

// setHealthConfig applies new health rules (after an update).
func (s *Stats) setHealthConfig(h *pb.HealthCheckSettings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := healthConfigOf(h)
	if cfg.window != s.tracker.cfg.window {
		s.tracker.slots = [healthSlots]healthSlot{}
	}
	s.tracker.cfg = cfg
}

// Health returns the current health (lock-free).
func (s *Stats) Health() pb.HealthStatus { return pb.HealthStatus(s.health.Load()) }

// addDropped counts data points dropped by limits, a full queue or a stop.
func (s *Stats) addDropped(n int) {
	s.dropped.Add(uint64(n))
	s.tel.dropped(n)
}

// recordExport counts one export of md (points data points, bytes bytes).
func (s *Stats) recordExport(md pmetric.Metrics, points, bytes int, latency time.Duration, err error, countFailed bool) {
	now := s.now()
	sec := now.Unix()
	s.tel.export(latency.Seconds(), points, err != nil, countFailed)
	if err == nil {
		s.sent.Add(uint64(points))
		s.bytesSent.Add(uint64(bytes))
		s.lastExport.Store(now.UnixNano())
	} else {
		s.exportErrors.Add(1)
		if countFailed {
			s.failed.Add(uint64(points))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.points.add(sec, float64(points))
		s.okExp.add(sec, 1)
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					s.top.add(ms.At(k).Name(), uint64(pointCount(ms.At(k))))
				}
			}
		}
	} else {
		s.failExp.add(sec, 1)
		s.noteErrorLocked(now, err)
	}
	s.latSum.add(sec, latency.Seconds())
	if now.Sub(s.latRotate) >= latencyPeriod {
		s.latPrev, s.latCur = s.latCur, s.latPrev
		s.latCur.Clear()
		s.latRotate = now
	}
	_ = s.latCur.Add(max(latency.Seconds(), 1e-9))
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.changed(s.tracker.record(now, err == nil, msg))
}

// recordAttempt counts one failed export attempt that the exporter retries
// (seen through its retry log entry, before the retries are exhausted): it
// counts like a failed export for health, with its reason and time.
func (s *Stats) recordAttempt(err error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failExp.add(now.Unix(), 1)
	s.noteErrorLocked(now, err)
	s.changed(s.tracker.record(now, false, err.Error()))
}

// setLoop marks (err != nil) or clears the destination as this collector's
// own endpoint: the provider is UNHEALTHY with reason loop.
func (s *Stats) setLoop(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
		if s.tracker.loop == "" {
			s.noteErrorLocked(s.now(), err)
		}
	}
	s.tracker.loop = msg
	s.changed(s.tracker.evaluate(s.now(), ""))
}

// noteErrorLocked records a failed attempt: count, reason, last error and time.
func (s *Stats) noteErrorLocked(now time.Time, err error) {
	s.failedAttempts.Add(1)
	if s.reasons == nil {
		s.reasons = map[string]uint64{}
	}
	reason := failureReason(err)
	s.reasons[reason]++
	s.lastError, s.lastErrorTime = err.Error(), now
	s.tel.failure(reason)
}

// reportStatus takes a component status event of the provider's exporter.
func (s *Stats) reportStatus(ev *componentstatus.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Status() {
	case componentstatus.StatusRecoverableError:
		s.tracker.status, s.tracker.statusReason = pb.HealthStatus_HEALTH_STATUS_DEGRADED, "exporter reports a recoverable error: "+errText(ev.Err())
	case componentstatus.StatusPermanentError, componentstatus.StatusFatalError:
		s.tracker.status, s.tracker.statusReason = pb.HealthStatus_HEALTH_STATUS_UNHEALTHY, "exporter reports "+ev.Status().String()+": "+errText(ev.Err())
		s.lastError, s.lastErrorTime = errText(ev.Err()), s.now()
	case componentstatus.StatusOK:
		s.tracker.status, s.tracker.statusReason = pb.HealthStatus_HEALTH_STATUS_UNSPECIFIED, ""
	default:
		return
	}
	s.changed(s.tracker.evaluate(s.now(), ""))
}

func errText(err error) string {
	if err == nil {
		return "no error given"
	}
	return err.Error()
}

// setPressure sets or clears a condition that degrades health (full queue,
// stalled export) and re-evaluates.
func (s *Stats) setPressure(on bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracker.pressure, s.tracker.pressureReason = on, reason
	s.changed(s.tracker.evaluate(s.now(), ""))
}

// note adds a health history entry that is not a transition.
func (s *Stats) note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracker.note(s.now(), msg)
}

// tick feeds each second completed since the last tick to the anomaly
// detector and lets health age its window.
func (s *Stats) tick() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	last := now.Unix() - 1
	from := max(s.lastTick+1, last-ringSeconds+1)
	for sec := from; sec <= last; sec++ {
		ok, fail := s.okExp.get(sec), s.failExp.get(sec)
		exports := ok + fail
		var errRate, lat float64
		if exports > 0 {
			errRate = fail / exports
			lat = s.latSum.get(sec) / exports
		}
		s.anomalies.observe(time.Unix(sec+1, 0), s.points.get(sec), errRate, lat, uint64(exports))
	}
	if last > s.lastTick {
		s.lastTick = last
	}
	s.changed(s.tracker.evaluate(now, ""))
}

// changed publishes the health for the hot path and logs a transition.
// Callers hold mu.
func (s *Stats) changed(transition bool) {
	s.health.Store(int32(s.tracker.state))
	if !transition || s.log == nil {
		return
	}
	fields := []zap.Field{zap.String("health", s.tracker.state.String()), zap.String("reason", s.tracker.reason)}
	if s.tracker.state == pb.HealthStatus_HEALTH_STATUS_HEALTHY {
		s.log.Info("Provider health changed", fields...)
	} else {
		s.log.Warn("Provider health changed", fields...)
	}
}

// StatsOptions select the optional parts of a snapshot.
type StatsOptions struct {
	HealthHistory bool
	TopMetrics    bool
	TopN          int
}

// queueInfo is what the sender knows about its queue.
type queueInfo struct {
	size, capacity int
	bytes          int64
	// disk is the size of the provider's spool (0: off).
	disk int64
}

// snapshot returns the API form of the statistics.
func (s *Stats) snapshot(q queueInfo, opts StatsOptions) (*pb.ProviderStats, []*pb.HealthEvent, []*pb.MetricCount, []*pb.Anomaly) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	uptime := now.Sub(s.started)
	sec := now.Unix()
	rate := func(n int64) float64 {
		span := min(float64(n), max(uptime.Seconds(), 1))
		return s.points.sum(sec, n) / span
	}
	st := &pb.ProviderStats{
		DatapointsSent:    s.sent.Load(),
		DatapointsFailed:  s.failed.Load(),
		DatapointsDropped: s.dropped.Load(),
		Throughput_1M:     rate(60),
		Throughput_5M:     rate(ringSeconds),
		QueueSize:         uint32(q.size),
		QueueCapacity:     uint32(q.capacity),
		BytesSent:         s.bytesSent.Load(),
		Resources: &pb.ResourceUsage{
			QueueMemoryBytes: uint64(max(q.bytes, 0)),
			DiskBytes:        uint64(max(q.disk, 0)),
			NetworkBytesSent: s.bytesSent.Load(),
		},
		LastError:      s.lastError,
		Uptime:         durationpb.New(uptime),
		ExportErrors:   s.exportErrors.Load(),
		FailedAttempts: s.failedAttempts.Load(),
	}
	if !s.lastErrorTime.IsZero() {
		st.LastErrorTime = timestamppb.New(s.lastErrorTime)
	}
	if len(s.reasons) > 0 {
		st.FailuresByReason = maps.Clone(s.reasons)
	}
	if t := s.lastExport.Load(); t > 0 {
		st.LastExport = timestamppb.New(time.Unix(0, t))
	}
	merged := s.latPrev.Copy()
	_ = merged.MergeWith(s.latCur)
	if !merged.IsEmpty() {
		qs, err := merged.GetValuesAtQuantiles([]float64{0.5, 0.9, 0.99})
		if err == nil {
			st.ExportLatency = &pb.LatencyStats{P50: durationpb.New(secs(qs[0])), P90: durationpb.New(secs(qs[1])), P99: durationpb.New(secs(qs[2]))}
		}
	}
	var hist []*pb.HealthEvent
	if opts.HealthHistory {
		hist = append(hist, s.tracker.history...)
	}
	var top []*pb.MetricCount
	if opts.TopMetrics {
		n := opts.TopN
		if n <= 0 {
			n = 10
		}
		top = s.top.top(min(n, topCapacity))
	}
	anomalies := append([]*pb.Anomaly(nil), s.anomalies.found...)
	return st, hist, top, anomalies
}
