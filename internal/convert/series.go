package convert

import (
	"encoding/binary"
	"slices"
	"strings"
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
	name   string // owned copy
	series atomic.Int64
	// meta holds owned copies of the unit and description last seen on a
	// record of the name (see adopt).
	meta atomic.Pointer[nameMeta]
}

// nameMeta is a unit and a description.
type nameMeta struct{ unit, desc string }

// adopt points m's name, unit and description at owned strings equal to
// them, so that nothing built from m keeps the request's bytes alive (they
// may point into a buffer the server reuses, see Batch.Detached). m's name
// must equal ni's.
func (ni *nameInfo) adopt(m *pb.MetricData) {
	m.Name = ni.name
	if m.Unit == "" && m.Description == "" {
		return
	}
	mt := ni.meta.Load()
	if mt == nil || mt.unit != m.Unit || mt.desc != m.Description {
		mt = &nameMeta{unit: strings.Clone(m.Unit), desc: strings.Clone(m.Description)}
		ni.meta.Store(mt)
	}
	m.Unit, m.Description = mt.unit, mt.desc
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
	// name may point into a request buffer (see internal/grpccodec): keep a
	// copy of its own.
	owned := strings.Clone(name)
	v, loaded := t.m.LoadOrStore(owned, &nameInfo{typ: typ, name: owned})
	if !loaded {
		t.count.Add(1)
	}
	return v.(*nameInfo)
}

// kv is one label: a name and its value.
type kv struct{ k, v string }

// hasher computes series keys without allocating: one per goroutine.
type hasher struct {
	pairs []kv   // scratch for resource attributes
	buf   []byte // the bytes hashed for one key
}

var hasherPool = sync.Pool{New: func() any { return &hasher{pairs: make([]kv, 0, 16), buf: make([]byte, 0, 256)} }}

const (
	sepName  = 0xff
	sepLabel = 0xfe
)

// appendSorted appends the entries of m to dst, sorted by name, and returns
// dst and the appended part.
func appendSorted(dst []kv, m map[string]string) (all, added []kv) {
	lo := len(dst)
	if len(m) <= smallLabels {
		// Sort on the stack, then copy once: swaps in the heap would each
		// pay GC write barriers.
		var tmp [smallLabels]kv
		n := 0
		for k, v := range m {
			tmp[n] = kv{k, v}
			n++
		}
		p := tmp[:n]
		for i := 1; i < len(p); i++ {
			for j := i; j > 0 && p[j].k < p[j-1].k; j-- {
				p[j], p[j-1] = p[j-1], p[j]
			}
		}
		dst = append(dst, p...)
		return dst, dst[lo:]
	}
	for k, v := range m {
		dst = append(dst, kv{k, v})
	}
	p := dst[lo:]
	slices.SortFunc(p, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	return dst, p
}

// smallLabels is the largest label set appendSorted sorts on the stack.
const smallLabels = 12

// appendPairs appends the hashed form of sorted labels to h.buf.
func (h *hasher) appendPairs(p []kv) {
	for _, e := range p {
		h.buf = append(h.buf, e.k...)
		h.buf = append(h.buf, sepLabel)
		h.buf = append(h.buf, e.v...)
		h.buf = append(h.buf, sepName)
	}
}

// resourceKey hashes resource attributes.
func (h *hasher) resourceKey(attrs map[string]string) uint64 {
	var p []kv
	h.pairs, p = appendSorted(h.pairs[:0], attrs)
	h.buf = h.buf[:0]
	h.appendPairs(p)
	clear(p)
	return xxhash.Sum64(h.buf)
}

// seriesKey hashes (resource, name, type, labels).
func (h *hasher) seriesKey(resKey uint64, m *pb.MetricData) uint64 {
	var p []kv
	h.pairs, p = appendSorted(h.pairs[:0], m.Labels)
	k := h.seriesKeySorted(resKey, m, p)
	clear(p)
	return k
}

// seriesKeySorted is seriesKey with m's labels given sorted by name.
func (h *hasher) seriesKeySorted(resKey uint64, m *pb.MetricData, labels []kv) uint64 {
	h.buf = binary.LittleEndian.AppendUint64(h.buf[:0], resKey)
	h.buf = append(h.buf, m.Name...)
	h.buf = append(h.buf, sepName, byte(m.Type))
	h.appendPairs(labels)
	return xxhash.Sum64(h.buf)
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
