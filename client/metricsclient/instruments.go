package metricsclient

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// InstrumentOption configures an instrument.
type InstrumentOption func(*instrumentConfig)

type instrumentConfig struct {
	labels      []string
	constLabels map[string]string
	unit        string
	description string
}

// WithLabels names the instrument's labels; With takes their values in
// this order.
func WithLabels(names ...string) InstrumentOption {
	return func(c *instrumentConfig) { c.labels = append(c.labels, names...) }
}

// WithConstLabels adds labels with fixed values to every series.
func WithConstLabels(labels map[string]string) InstrumentOption {
	return func(c *instrumentConfig) { c.constLabels = labels }
}

// WithUnit sets the unit (UCUM, e.g. "s", "By").
func WithUnit(unit string) InstrumentOption { return func(c *instrumentConfig) { c.unit = unit } }

// WithDescription sets the help text.
func WithDescription(d string) InstrumentOption {
	return func(c *instrumentConfig) { c.description = d }
}

// maxObservationsPerItem bounds the observations of one batch item.
const maxObservationsPerItem = 10_000

// family is one instrument: a name, a type and its series by label values.
type family struct {
	c    *Client
	name string
	typ  pb.MetricType
	cfg  instrumentConfig

	mu     sync.RWMutex
	series map[uint64][]*series
	list   []*series
}

// series is one label set of a family. Counters keep a pending increment,
// gauges a pending value, observed kinds a list of observations.
type series struct {
	f      *family
	values []string
	labels map[string]string

	bits  atomic.Uint64 // counter: pending increment; gauge: value
	dirty atomic.Bool   // gauge: set since the last flush

	mu  sync.Mutex
	obs []float64
}

func (c *Client) family(name string, typ pb.MetricType, opts []InstrumentOption) *family {
	var cfg instrumentConfig
	for _, o := range opts {
		o(&cfg)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.families[name]; ok {
		if f.typ != typ || !slices.Equal(f.cfg.labels, cfg.labels) {
			panic(fmt.Sprintf("metricsclient: %s is already a %s with labels %v; it cannot also be a %s with labels %v",
				name, f.typ, f.cfg.labels, typ, cfg.labels))
		}
		return f
	}
	f := &family{c: c, name: name, typ: typ, cfg: cfg, series: map[uint64][]*series{}}
	c.families[name] = f
	c.order = append(c.order, f)
	return f
}

// hashValues hashes label values without allocating.
func hashValues(values []string) uint64 {
	var d xxhash.Digest
	d.Reset()
	for _, v := range values {
		_, _ = d.WriteString(v)
		_, _ = d.Write([]byte{0xff})
	}
	return d.Sum64()
}

// with returns the series of values, creating it on first use.
func (f *family) with(values []string) *series {
	if len(values) != len(f.cfg.labels) {
		// a copy, so that values does not escape (With's variadic slice stays on the stack)
		f.wrongCount(append([]string(nil), values...))
	}
	h := hashValues(values)
	f.mu.RLock()
	for _, s := range f.series[h] {
		if slices.Equal(s.values, values) {
			f.mu.RUnlock()
			return s
		}
	}
	f.mu.RUnlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.series[h] {
		if slices.Equal(s.values, values) {
			return s
		}
	}
	labels := maps.Clone(f.cfg.constLabels)
	if labels == nil && len(values) > 0 {
		labels = make(map[string]string, len(values))
	}
	for i, n := range f.cfg.labels {
		labels[n] = values[i]
	}
	s := &series{f: f, values: slices.Clone(values), labels: labels}
	f.series[h] = append(f.series[h], s)
	f.list = append(f.list, s)
	return s
}

func (f *family) wrongCount(values []string) {
	panic(fmt.Sprintf("metricsclient: %s has labels %v: With needs %d values, got %d (%q)",
		f.name, f.cfg.labels, len(f.cfg.labels), len(values), values))
}

// collect appends the family's pending items, up to limit in all.
func (f *family) collect(items []*pb.MetricData, limit int) ([]*pb.MetricData, int64) {
	f.mu.RLock()
	list := f.list
	f.mu.RUnlock()
	var units int64
	for _, s := range list {
		if len(items) >= limit {
			break
		}
		switch f.typ {
		case pb.MetricType_METRIC_TYPE_COUNTER:
			if s.bits.Load() == 0 {
				continue
			}
			v := math.Float64frombits(s.bits.Swap(0))
			if v == 0 {
				continue
			}
			items = append(items, f.item(s, v, nil))
		case pb.MetricType_METRIC_TYPE_GAUGE:
			if !s.dirty.Swap(false) {
				continue
			}
			items = append(items, f.item(s, math.Float64frombits(s.bits.Load()), nil))
		default:
			s.mu.Lock()
			if len(s.obs) == 0 {
				s.mu.Unlock()
				continue
			}
			n := min(len(s.obs), maxObservationsPerItem)
			obs := slices.Clone(s.obs[:n])
			if n == len(s.obs) {
				s.obs = s.obs[:0]
			} else {
				s.obs = append(s.obs[:0], s.obs[n:]...)
			}
			s.mu.Unlock()
			units += int64(n)
			items = append(items, f.item(s, 0, obs))
		}
	}
	return items, units
}

func (f *family) item(s *series, v float64, obs []float64) *pb.MetricData {
	return &pb.MetricData{Name: f.name, Type: f.typ, Value: v, Observations: obs, Labels: s.labels, Unit: f.cfg.unit, Description: f.cfg.description}
}

func addFloat(a *atomic.Uint64, v float64) {
	for {
		old := a.Load()
		if a.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (s *series) observe(v float64) {
	if !s.f.c.reserve() {
		return
	}
	s.mu.Lock()
	s.obs = append(s.obs, v)
	s.mu.Unlock()
}

func (s *series) String() string {
	parts := make([]string, len(s.values))
	for i, v := range s.values {
		parts[i] = s.f.cfg.labels[i] + "=" + v
	}
	return s.f.name + "{" + strings.Join(parts, ",") + "}"
}

// Counter is a monotonic counter with a label set.
type Counter struct{ f *family }

// BoundCounter is one series of a Counter.
type BoundCounter struct{ s *series }

// Counter returns the counter name (the same one on every call with that
// name). It panics when name is already another kind of instrument or has
// other labels.
func (c *Client) Counter(name string, opts ...InstrumentOption) *Counter {
	return &Counter{f: c.family(name, pb.MetricType_METRIC_TYPE_COUNTER, opts)}
}

// With returns the series of the label values, in WithLabels order. It
// panics on a wrong number of values.
func (c *Counter) With(values ...string) BoundCounter { return BoundCounter{c.f.with(values)} }

// Add adds v (not negative) to the counter without labels.
func (c *Counter) Add(v float64) { c.With().Add(v) }

// Inc adds 1 to the counter without labels.
func (c *Counter) Inc() { c.With().Add(1) }

// Add adds v; a negative v is ignored (counters only go up).
func (b BoundCounter) Add(v float64) {
	if v <= 0 || math.IsNaN(v) {
		return
	}
	addFloat(&b.s.bits, v)
}

// Inc adds 1.
func (b BoundCounter) Inc() { addFloat(&b.s.bits, 1) }

// Gauge is a value that goes up and down, with a label set.
type Gauge struct{ f *family }

// BoundGauge is one series of a Gauge.
type BoundGauge struct{ s *series }

// Gauge returns the gauge name; see Counter.
func (c *Client) Gauge(name string, opts ...InstrumentOption) *Gauge {
	return &Gauge{f: c.family(name, pb.MetricType_METRIC_TYPE_GAUGE, opts)}
}

// With returns the series of the label values; see Counter.With.
func (g *Gauge) With(values ...string) BoundGauge { return BoundGauge{g.f.with(values)} }

// Set sets the gauge without labels.
func (g *Gauge) Set(v float64) { g.With().Set(v) }

// Set sets the value; the last value before a flush is sent.
func (b BoundGauge) Set(v float64) {
	b.s.bits.Store(math.Float64bits(v))
	b.s.dirty.Store(true)
}

// Add adds v (may be negative).
func (b BoundGauge) Add(v float64) {
	addFloat(&b.s.bits, v)
	b.s.dirty.Store(true)
}

// Inc adds 1.
func (b BoundGauge) Inc() { b.Add(1) }

// Dec subtracts 1.
func (b BoundGauge) Dec() { b.Add(-1) }

// Histogram aggregates observations into buckets on the server (the
// buckets of the metric's definition, or the server's default).
type Histogram struct{ f *family }

// Summary aggregates observations into quantiles on the server.
type Summary struct{ f *family }

// BoundObserver is one series of a Histogram or Summary.
type BoundObserver struct{ s *series }

// Histogram returns the histogram name; see Counter.
func (c *Client) Histogram(name string, opts ...InstrumentOption) *Histogram {
	return &Histogram{f: c.family(name, pb.MetricType_METRIC_TYPE_HISTOGRAM, opts)}
}

// With returns the series of the label values; see Counter.With.
func (h *Histogram) With(values ...string) BoundObserver { return BoundObserver{h.f.with(values)} }

// Observe records one observation of the histogram without labels.
func (h *Histogram) Observe(v float64) { h.With().Observe(v) }

// Summary returns the summary name; see Counter.
func (c *Client) Summary(name string, opts ...InstrumentOption) *Summary {
	return &Summary{f: c.family(name, pb.MetricType_METRIC_TYPE_SUMMARY, opts)}
}

// With returns the series of the label values; see Counter.With.
func (s *Summary) With(values ...string) BoundObserver { return BoundObserver{s.f.with(values)} }

// Observe records one observation of the summary without labels.
func (s *Summary) Observe(v float64) { s.With().Observe(v) }

// Observe records one observation. It takes room in the buffer: on a full
// buffer it blocks or is dropped, by the client's backpressure choice.
func (b BoundObserver) Observe(v float64) { b.s.observe(v) }

// Timer is a histogram of durations, recorded in seconds.
type Timer struct{ f *family }

// BoundTimer is one series of a Timer.
type BoundTimer struct{ s *series }

// Timer returns the timer name; see Counter. Its unit is seconds.
func (c *Client) Timer(name string, opts ...InstrumentOption) *Timer {
	return &Timer{f: c.family(name, pb.MetricType_METRIC_TYPE_TIMER, opts)}
}

// With returns the series of the label values; see Counter.With.
func (t *Timer) With(values ...string) BoundTimer { return BoundTimer{t.f.with(values)} }

// Observe records a duration of the timer without labels.
func (t *Timer) Observe(d time.Duration) { t.With().Observe(d) }

// Observe records a duration.
func (b BoundTimer) Observe(d time.Duration) { b.s.observe(d.Seconds()) }

// ObserveSince records the time since start: defer t.ObserveSince(time.Now()).
func (b BoundTimer) ObserveSince(start time.Time) { b.s.observe(time.Since(start).Seconds()) }
