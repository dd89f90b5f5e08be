package store

import (
	"sort"
	"sync"
	"time"
)

// statsMinutes is how many minutes of per-minute ingest counts are kept.
const statsMinutes = 180

// IngestStats counts stored data points per minute, in total and per metric
// family, for ingest rates, top-by-rate lists and trends, and the samples
// stored since start (a classic histogram point is many samples).
type IngestStats struct {
	mu       sync.Mutex
	now      func() time.Time
	started  time.Time
	buckets  [statsMinutes]minuteBucket
	lastSeen map[string]time.Time
	points   int64
	samples  int64
}

type minuteBucket struct {
	minute   int64
	total    int64
	byFamily map[string]int64
	resets   map[string]int64 // counter resets per family
}

// NewIngestStats returns empty statistics read with the clock now.
func NewIngestStats(now func() time.Time) *IngestStats {
	return &IngestStats{now: now, started: now(), lastSeen: map[string]time.Time{}}
}

// Add counts one committed batch: its data points per family (the rates)
// and the samples it stored.
func (s *IngestStats) Add(pointsByFamily map[string]int, samples int) {
	if samples == 0 && len(pointsByFamily) == 0 {
		return
	}
	now := s.now()
	minute := now.Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[minute%statsMinutes]
	if b.minute != minute {
		*b = minuteBucket{minute: minute, byFamily: make(map[string]int64, len(b.byFamily))}
	}
	for f, n := range pointsByFamily {
		b.total += int64(n)
		b.byFamily[f] += int64(n)
		s.points += int64(n)
		s.lastSeen[f] = now
	}
	s.samples += int64(samples)
}

// AddResets counts the counter resets of one committed batch.
func (s *IngestStats) AddResets(byFamily map[string]int) {
	if len(byFamily) == 0 {
		return
	}
	minute := s.now().Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[minute%statsMinutes]
	if b.minute != minute {
		*b = minuteBucket{minute: minute, byFamily: make(map[string]int64, len(b.byFamily))}
	}
	if b.resets == nil {
		b.resets = map[string]int64{}
	}
	for f, n := range byFamily {
		b.resets[f] += int64(n)
	}
}

// Resets returns the counter resets per family counted in the last span
// (whole minutes, including the current one).
func (s *IngestStats) Resets(span time.Duration) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	endMin := s.now().Unix() / 60
	out := map[string]int64{}
	for m := endMin - int64(span/time.Minute) + 1; m <= endMin; m++ {
		b := &s.buckets[((m%statsMinutes)+statsMinutes)%statsMinutes]
		if b.minute != m {
			continue
		}
		for f, n := range b.resets {
			out[f] += n
		}
	}
	return out
}

// Total returns the samples stored since start.
func (s *IngestStats) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// Points returns the data points stored since start (see Add).
func (s *IngestStats) Points() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.points
}

// window returns the data points counted in the minutes (end-span, end] and the
// seconds that window covers (clipped to the time since start); per family
// only when families is set (nil otherwise).
func (s *IngestStats) window(end time.Time, span time.Duration, families bool) (total int64, byFamily map[string]int64, seconds float64) {
	endMin := end.Unix() / 60
	minutes := int64(span / time.Minute)
	for m := endMin - minutes + 1; m <= endMin; m++ {
		b := &s.buckets[((m%statsMinutes)+statsMinutes)%statsMinutes]
		if b.minute != m {
			continue
		}
		total += b.total
		if !families {
			continue
		}
		if byFamily == nil {
			byFamily = make(map[string]int64, len(b.byFamily))
		}
		for f, n := range b.byFamily {
			byFamily[f] += n
		}
	}
	from := time.Unix((endMin-minutes+1)*60, 0)
	if s.started.After(from) {
		from = s.started
	}
	seconds = end.Sub(from).Seconds()
	if seconds < 1 {
		seconds = 1
	}
	return total, byFamily, seconds
}

// Rate returns data points per second over the last span (whole minutes,
// including the current one).
func (s *IngestStats) Rate(span time.Duration) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	total, _, secs := s.window(s.now(), span, false)
	return float64(total) / secs
}

// FamilyRate is the ingest rate of one metric family.
type FamilyRate struct {
	Family string
	Rate   float64
}

// FamilyRates returns the rate of every family over the last span, highest first.
func (s *IngestStats) FamilyRates(span time.Duration) []FamilyRate {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, by, secs := s.window(s.now(), span, true)
	out := make([]FamilyRate, 0, len(by))
	for f, n := range by {
		out = append(out, FamilyRate{Family: f, Rate: float64(n) / secs})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rate != out[j].Rate {
			return out[i].Rate > out[j].Rate
		}
		return out[i].Family < out[j].Family
	})
	return out
}

// Trend returns the total rate and per-family rates in the window that ends
// now and in the window before it.
func (s *IngestStats) Trend(span time.Duration) (now, before float64, famNow, famBefore map[string]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.now()
	t1, b1, sec1 := s.window(end, span, true)
	t0, b0, sec0 := s.window(end.Add(-span), span, true)
	famNow, famBefore = make(map[string]float64, len(b1)), make(map[string]float64, len(b0))
	for f, n := range b1 {
		famNow[f] = float64(n) / sec1
	}
	for f, n := range b0 {
		famBefore[f] = float64(n) / sec0
	}
	if end.Add(-span).Before(s.started) {
		t0, sec0 = 0, 1
	}
	return float64(t1) / sec1, float64(t0) / sec0, famNow, famBefore
}

// LastSeen returns when each family last received samples.
func (s *IngestStats) LastSeen() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]time.Time, len(s.lastSeen))
	for f, t := range s.lastSeen {
		out[f] = t
	}
	return out
}
