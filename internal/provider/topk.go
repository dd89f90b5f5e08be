package provider

import (
	"sort"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// topK counts data points per metric name in bounded memory with the
// Space-Saving algorithm (Metwally et al.): at most capacity names are kept;
// a new name replaces the smallest and inherits its count as possible
// over-estimate. Every name with more than total/capacity points is kept.
type topK struct {
	capacity int
	counts   map[string]*topEntry
}

type topEntry struct {
	count uint64
	// overestimate is the count inherited on replacement.
	overestimate uint64
}

func newTopK(capacity int) *topK {
	return &topK{capacity: capacity, counts: make(map[string]*topEntry, capacity)}
}

// add counts n points of name.
func (t *topK) add(name string, n uint64) {
	if e, ok := t.counts[name]; ok {
		e.count += n
		return
	}
	if len(t.counts) < t.capacity {
		t.counts[name] = &topEntry{count: n}
		return
	}
	var minName string
	var minEntry *topEntry
	for k, e := range t.counts {
		if minEntry == nil || e.count < minEntry.count || (e.count == minEntry.count && k > minName) {
			minName, minEntry = k, e
		}
	}
	delete(t.counts, minName)
	t.counts[name] = &topEntry{count: minEntry.count + n, overestimate: minEntry.count}
}

// top returns the n largest counts, largest first (ties by name).
func (t *topK) top(n int) []*pb.MetricCount {
	out := make([]*pb.MetricCount, 0, len(t.counts))
	for k, e := range t.counts {
		out = append(out, &pb.MetricCount{Name: k, Datapoints: e.count})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Datapoints != out[j].Datapoints {
			return out[i].Datapoints > out[j].Datapoints
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
