package convert

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// nameInfo is what the accumulator knows about one metric name: its type
// (first record wins; a record of another type is refused) and how many
// series of it hold state.
type nameInfo struct {
	typ    pb.MetricType
	series atomic.Int64
}

// nameTable maps metric names to their nameInfo. Reads are lock free.
type nameTable struct {
	m     sync.Map // string -> *nameInfo
	count atomic.Int64
}

// lookup returns the info of name, creating it with typ when absent. It
// returns nil when creating would pass max names (0 = unlimited).
func (t *nameTable) lookup(name string, typ pb.MetricType, maxNames int) *nameInfo {
	if v, ok := t.m.Load(name); ok {
		return v.(*nameInfo)
	}
	if maxNames > 0 && t.count.Load() >= int64(maxNames) {
		return nil
	}
	v, loaded := t.m.LoadOrStore(name, &nameInfo{typ: typ})
	if !loaded {
		t.count.Add(1)
	}
	return v.(*nameInfo)
}

// hasher computes series keys without allocating: one per goroutine.
type hasher struct {
	d    xxhash.Digest
	keys []string
	b    [8]byte
}

var hasherPool = sync.Pool{New: func() any { return &hasher{keys: make([]string, 0, 16)} }}

const (
	sepName  = 0xff
	sepLabel = 0xfe
)

// sortedKeys returns the keys of m in order, in the hasher's scratch slice.
func (h *hasher) sortedKeys(m map[string]string) []string {
	h.keys = h.keys[:0]
	for k := range m {
		h.keys = append(h.keys, k)
	}
	if len(h.keys) <= 12 {
		// insertion sort: small label sets are the common case
		for i := 1; i < len(h.keys); i++ {
			for j := i; j > 0 && h.keys[j] < h.keys[j-1]; j-- {
				h.keys[j], h.keys[j-1] = h.keys[j-1], h.keys[j]
			}
		}
	} else {
		slices.Sort(h.keys)
	}
	return h.keys
}

func (h *hasher) writeMap(m map[string]string) {
	for _, k := range h.sortedKeys(m) {
		_, _ = h.d.WriteString(k)
		h.b[0] = sepLabel
		_, _ = h.d.Write(h.b[:1])
		_, _ = h.d.WriteString(m[k])
		h.b[0] = sepName
		_, _ = h.d.Write(h.b[:1])
	}
}

// resourceKey hashes resource attributes.
func (h *hasher) resourceKey(attrs map[string]string) uint64 {
	h.d.Reset()
	h.writeMap(attrs)
	return h.d.Sum64()
}

// seriesKey hashes (resource, name, type, labels).
func (h *hasher) seriesKey(resKey uint64, m *pb.MetricData) uint64 {
	h.d.Reset()
	for i := 0; i < 8; i++ {
		h.b[i] = byte(resKey >> (8 * i))
	}
	_, _ = h.d.Write(h.b[:8])
	_, _ = h.d.WriteString(m.Name)
	h.b[0] = sepName
	h.b[1] = byte(m.Type)
	_, _ = h.d.Write(h.b[:2])
	h.writeMap(m.Labels)
	return h.d.Sum64()
}

// Names returns the metric names seen, with the type each was first recorded as.
func (a *Accumulator) Names() map[string]pb.MetricType {
	out := map[string]pb.MetricType{}
	a.names.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*nameInfo).typ
		return true
	})
	return out
}
