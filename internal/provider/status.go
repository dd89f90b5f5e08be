package provider

import (
	"sort"
	"time"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// StatusSeconds is how many seconds of throughput Status returns.
const StatusSeconds = 120

// ProviderStatus is what a status page shows of one provider.
type ProviderStatus struct {
	ID, Name, ExporterID  string
	Type                  pb.ProviderType
	State                 pb.ProviderState
	Health                pb.HealthStatus
	Version, Generation   uint64
	LastError             string
	LastErrorTime         time.Time
	Sent, Failed, Dropped uint64
	FailedAttempts        uint64
	QueueSize, QueueCap   int
	Throughput1m          float64
	// Throughput is data points exported per second and Failures failed
	// attempts per second, over the last StatusSeconds seconds, oldest first.
	Throughput, Failures []float64
	// HealthHistory is the health transitions, oldest first.
	HealthHistory []*pb.HealthEvent
	Operation     *pb.ProviderOperation
}

// Status returns every provider's status, sorted by id, at now.
func (e *Engine) Status() []ProviderStatus {
	e.mu.Lock()
	type item struct {
		ps *providerState
		p  *pb.Provider
		q  queueInfo
	}
	items := make([]item, 0, len(e.providers))
	for _, ps := range e.providers {
		if ps.removed {
			continue
		}
		it := item{ps: ps, p: e.toProviderLocked(ps), q: queueLocked(ps)}
		items = append(items, it)
	}
	e.mu.Unlock()
	out := make([]ProviderStatus, 0, len(items))
	for _, it := range items {
		st, hist, _, _ := it.ps.stats.snapshot(it.q, StatsOptions{HealthHistory: true})
		s := ProviderStatus{
			ID: it.p.GetConfig().GetProviderId(), Name: it.p.GetConfig().GetName(), ExporterID: it.p.GetExporterId(),
			Type: it.p.GetConfig().GetType(), State: it.p.GetState(), Health: it.p.GetHealth(),
			Version: it.p.GetVersion(), Generation: it.p.GetGeneration(), LastError: it.p.GetLastError(),
			Sent: st.GetDatapointsSent(), Failed: st.GetDatapointsFailed(), Dropped: st.GetDatapointsDropped(),
			FailedAttempts: st.GetFailedAttempts(), QueueSize: int(st.GetQueueSize()), QueueCap: int(st.GetQueueCapacity()),
			Throughput1m: st.GetThroughput_1M(), HealthHistory: hist, Operation: it.p.GetOperation(),
		}
		if t := it.p.GetLastErrorTime(); t != nil {
			s.LastErrorTime = t.AsTime()
		}
		s.Throughput, s.Failures = it.ps.stats.series(StatusSeconds)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// series returns the data points exported and the failed attempts per
// second over the last n completed seconds, oldest first.
func (s *Stats) series(n int) (points, failures []float64) {
	now := s.now().Unix() - 1
	s.mu.Lock()
	defer s.mu.Unlock()
	points, failures = make([]float64, n), make([]float64, n)
	for i := range n {
		sec := now - int64(n-1-i)
		points[i], failures[i] = s.points.get(sec), s.failExp.get(sec)
	}
	return points, failures
}
