package convert

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// DefaultSeriesCacheSize is the default of Config.SeriesCacheSize.
const DefaultSeriesCacheSize = 50_000

// CachingValidator is a Validator whose series-level checks (labels against
// the definition) can be remembered per series. The accumulator's series
// cache is used with a Validator only when it implements this interface.
type CachingValidator interface {
	Validator
	// DefinitionsToken identifies the definitions in force: it changes
	// (compares unequal with ==) whenever a definition changes, and a cached
	// series is then checked again on its next record.
	DefinitionsToken() any
	// ValidateValues runs the checks of Validate that depend on the record's
	// values, not on its series (constraints such as min, max, NaN), for a
	// record whose series passed Validate under the current token.
	ValidateValues(m *pb.MetricData) *Issue
}

// seriesCache remembers, for series already seen, everything Prepare derives
// from a record's name, type and raw label bytes: the labels validated,
// normalized (registry defaults added) and sorted, the series key, the name
// entry and a pdata attribute template. It is keyed by a hash of those bytes
// and checks the bytes themselves on a hit, so a hit is exact. It holds at
// most max entries: a full shard forgets an arbitrary entry for a new one.
//
// It also remembers, per request resource, the entries of the last batch by
// position (hints): a client that sends the same series in the same order
// finds each record's entry without hashing or a table lookup.
type seriesCache struct {
	shards [cacheShards]cacheShard
	max    int // per shard
	hits   atomic.Uint64
	misses atomic.Uint64

	hintsMu  sync.RWMutex
	hints    map[uint64][]*cachedSeries // request resource key -> entries by position
	hinted   int                        // positions in hints
	maxHints int                        // most positions: 2x the cache size
}

// cacheCounts are the hits and misses of a part of a batch.
type cacheCounts struct{ hits, misses uint64 }

const cacheShards = 16

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]*cachedSeries // by rawKey
	// byKey holds the same entries by series key: a client that sends a
	// series' labels in another order (a Go map's order is random) finds
	// its entry once the labels are sorted.
	byKey map[uint64]*cachedSeries
}

// cachedSeries is one remembered series. It is immutable once published.
//
// Its labels are not a []kv (a 16-byte header per string, eight pointers
// for four labels, all scanned by the garbage collector) but offsets into
// blk, one pointer-free string: the raw label entries as received, then the
// bytes of labels that are not in them (defaults added by the Validator),
// then per label four little-endian uint16s (name offset, name length,
// value offset, value length). An entry is about half the size it was.
type cachedSeries struct {
	blk    string // raw label entries, other label bytes, label offsets
	rawLen uint32 // the raw label entries are blk[:rawLen]
	nl     uint16 // labels
	resKey uint64
	token  any // CachingValidator.DefinitionsToken when checked

	key uint64
	ni  *nameInfo // the name and type of the series
	// gauge is the gauge series' mark in Accumulator.gauges once admitted
	// (read and written with gaugeSeries.mu held).
	gauge atomic.Pointer[gaugeMark]
	// ser is the state of a stateful series once created (read and written
	// with its accumulator shard locked).
	ser atomic.Pointer[series]
	// admitted is the series' last pass of SeriesAdmitter.AdmitSeries.
	admitted atomic.Pointer[admitMark]
}

// maxEntryBytes bounds blk without its offsets (they are uint16s): a
// series with more label bytes is not cached.
const maxEntryBytes = 0xFFFF

// raw returns the raw label entries the entry was made from.
func (e *cachedSeries) raw() string { return e.blk[:e.rawLen] }

// label returns label i (sorted by name) of e. (blk was built by
// newCachedSeries, so the offsets are in range: no bounds checks.)
func (e *cachedSeries) label(i int) kv {
	base := unsafe.StringData(e.blk)
	o := binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(base), len(e.blk)-8*(int(e.nl)-i))), 8))
	ko, kl := int(uint16(o)), int(uint16(o>>16))
	vo, vl := int(uint16(o>>32)), int(uint16(o>>48))
	return kv{
		unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(base), ko)), kl),
		unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(base), vo)), vl),
	}
}

// appendLabels appends the labels of e, sorted by name, to dst.
func (e *cachedSeries) appendLabels(dst []kv) []kv {
	for i := range int(e.nl) {
		dst = append(dst, e.label(i))
	}
	return dst
}

// admitMark records a pass of SeriesAdmitter.AdmitSeries: the admitter's
// Generation read before the check and the unit checked (a record's unit
// is not part of its cache key).
type admitMark struct {
	gen  uint64
	unit string
}

// state returns the series state e points to (nil for a nil e).
func (e *cachedSeries) state() *series {
	if e == nil {
		return nil
	}
	return e.ser.Load()
}

// gaugeMark returns the gauge mark of e (nil for a nil e).
func (e *cachedSeries) gaugeMark() *gaugeMark {
	if e == nil {
		return nil
	}
	return e.gauge.Load()
}

func newSeriesCache(size int) *seriesCache {
	if size <= 0 {
		return nil
	}
	c := &seriesCache{max: max(1, (size+cacheShards-1)/cacheShards), hints: map[uint64][]*cachedSeries{}, maxHints: 2 * size}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*cachedSeries)
		c.shards[i].byKey = make(map[uint64]*cachedSeries)
	}
	return c
}

// rawKey hashes what identifies a cached series: the request resource, the
// name, the type and the raw label bytes.
func (h *hasher) rawKey(resKey uint64, m *pb.MetricData, raw []byte) uint64 {
	h.buf = binary.LittleEndian.AppendUint64(h.buf[:0], resKey)
	h.buf = append(h.buf, m.Name...)
	h.buf = append(h.buf, sepName, byte(m.Type))
	h.buf = append(h.buf, raw...)
	return xxhash.Sum64(h.buf)
}

// is reports whether e is the cached entry of this record's series under
// token (false for a nil e).
func (e *cachedSeries) is(m *pb.MetricData, raw []byte, resKey uint64, token any) bool {
	return e != nil && e.ni.typ == m.Type && e.resKey == resKey && e.token == token && e.ni.name == m.Name && e.raw() == string(raw)
}

// hintsFor returns the entries of the last batch of resource reqKey (read
// only).
func (c *seriesCache) hintsFor(reqKey uint64) []*cachedSeries {
	c.hintsMu.RLock()
	h := c.hints[reqKey]
	c.hintsMu.RUnlock()
	return h
}

// updateHints remembers the entries of recs as the last batch of reqKey,
// unless they are those of prev already.
func (c *seriesCache) updateHints(reqKey uint64, prev []*cachedSeries, recs []record) {
	same := len(prev) == len(recs)
	for i := 0; same && i < len(recs); i++ {
		same = prev[i] == recs[i].cs
	}
	if same {
		return
	}
	next := make([]*cachedSeries, len(recs))
	for i := range recs {
		next[i] = recs[i].cs
	}
	c.hintsMu.Lock()
	c.hinted += len(next) - len(c.hints[reqKey])
	if c.hinted > c.maxHints {
		// (hints hold entries, also evicted ones: their memory is bounded)
		clear(c.hints)
		c.hinted = len(next)
	}
	c.hints[reqKey] = next
	c.hintsMu.Unlock()
}

// get returns the entry of hk if it is exactly this series under token.
func (c *seriesCache) get(hk uint64, m *pb.MetricData, raw []byte, resKey uint64, token any) *cachedSeries {
	sh := &c.shards[hk%cacheShards]
	sh.mu.RLock()
	e := sh.m[hk]
	sh.mu.RUnlock()
	if !e.is(m, raw, resKey, token) {
		return nil
	}
	return e
}

// getByKey returns the entry of series key if it is this series (labels
// sorted by name, as appendRawLabels gives them) under token.
func (c *seriesCache) getByKey(key uint64, m *pb.MetricData, labels []kv, resKey uint64, token any) *cachedSeries {
	sh := &c.shards[key%cacheShards]
	sh.mu.RLock()
	e := sh.byKey[key]
	sh.mu.RUnlock()
	if e == nil || e.ni.typ != m.Type || e.resKey != resKey || e.token != token || e.ni.name != m.Name || int(e.nl) != len(labels) {
		return nil
	}
	for i := range labels {
		if e.label(i) != labels[i] {
			return nil
		}
	}
	return e
}

// put publishes e under hk (and, with byKey, under its series key),
// evicting an arbitrary entry from a full shard.
func (c *seriesCache) put(hk uint64, e *cachedSeries, byKey bool) {
	sh := &c.shards[hk%cacheShards]
	sh.mu.Lock()
	if _, ok := sh.m[hk]; !ok && len(sh.m) >= c.max {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[hk] = e
	sh.mu.Unlock()
	if !byKey {
		return
	}
	sh = &c.shards[e.key%cacheShards]
	sh.mu.Lock()
	if _, ok := sh.byKey[e.key]; !ok && len(sh.byKey) >= c.max {
		for k := range sh.byKey {
			delete(sh.byKey, k)
			break
		}
	}
	sh.byKey[e.key] = e
	sh.mu.Unlock()
}

func (c *seriesCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// newCachedSeries builds the entry of a series that passed every
// series-level check, or returns nil when its labels are too large to
// cache (maxEntryBytes). raw and labels may point into a request buffer:
// the entry keeps one copy of raw, and labels that were decoded from raw
// are offsets into that copy (others, e.g. defaults added by the Validator,
// are copied after it).
func newCachedSeries(raw []byte, m *pb.MetricData, resKey uint64, token any, labels []kv, key uint64, ni *nameInfo) *cachedSeries {
	if len(raw) > maxEntryBytes || len(labels) > 0xFFFF {
		return nil
	}
	size := len(raw)
	for _, l := range labels {
		if !inside(raw, l.k) {
			size += len(l.k)
		}
		if !inside(raw, l.v) {
			size += len(l.v)
		}
	}
	if size > maxEntryBytes {
		return nil
	}
	blk := make([]byte, size, size+8*len(labels))
	copy(blk, raw)
	extra := len(raw)
	place := func(s string) (off int) {
		if len(s) == 0 {
			return 0
		}
		if inside(raw, s) {
			return int(uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(raw))))
		}
		off = extra
		extra += copy(blk[extra:], s)
		return off
	}
	for _, l := range labels {
		ko, vo := place(l.k), place(l.v)
		blk = binary.LittleEndian.AppendUint16(blk, uint16(ko))
		blk = binary.LittleEndian.AppendUint16(blk, uint16(len(l.k)))
		blk = binary.LittleEndian.AppendUint16(blk, uint16(vo))
		blk = binary.LittleEndian.AppendUint16(blk, uint16(len(l.v)))
	}
	return &cachedSeries{
		blk: unsafe.String(unsafe.SliceData(blk), len(blk)), rawLen: uint32(len(raw)), nl: uint16(len(labels)),
		resKey: resKey, token: token, key: key, ni: ni,
	}
}

// inside reports whether s, not empty, lies inside raw's memory.
func inside(raw []byte, s string) bool {
	if len(s) == 0 || len(raw) == 0 {
		return false
	}
	off := uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	return off < uintptr(len(raw)) && off+uintptr(len(s)) <= uintptr(len(raw))
}

// SeriesCacheStats are the series cache's counters.
type SeriesCacheStats struct {
	// Hits are records whose series checks and key came from the cache.
	Hits uint64
	// Misses are records eligible for the cache that were checked in full.
	Misses uint64
	// Size is the number of cached series.
	Size int
}

// SeriesCacheStats returns the series cache's counters (zero when the cache
// is disabled).
func (a *Accumulator) SeriesCacheStats() SeriesCacheStats {
	if a.cache == nil {
		return SeriesCacheStats{}
	}
	return SeriesCacheStats{Hits: a.cache.hits.Load(), Misses: a.cache.misses.Load(), Size: a.cache.len()}
}

// appendRawLabels decodes raw, the protobuf encoding of a record's label
// map entries (field 4 of MetricData, each a key/value entry), appends the
// labels to dst sorted by name (a later entry of the same name wins, as
// when decoding into a map) and returns dst and the appended part. ok is
// false when raw is not such an encoding.
func appendRawLabels(dst []kv, raw []byte) (all, added []kv, ok bool) {
	lo := len(dst)
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 || num != 4 || typ != protowire.BytesType {
			return dst[:lo], nil, false
		}
		raw = raw[n:]
		e, n := protowire.ConsumeBytes(raw)
		if n < 0 {
			return dst[:lo], nil, false
		}
		raw = raw[n:]
		k, v, ok := rawEntry(e)
		if !ok {
			return dst[:lo], nil, false
		}
		dst = append(dst, kv{k, v})
	}
	p := dst[lo:]
	sorted := true
	for i := 1; i < len(p); i++ {
		if p[i].k <= p[i-1].k {
			sorted = false
			break
		}
	}
	if !sorted {
		slices.SortStableFunc(p, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		// keep the last of equal names
		out := p[:0]
		for i := range p {
			if i+1 < len(p) && p[i+1].k == p[i].k {
				continue
			}
			out = append(out, p[i])
		}
		clear(p[len(out):])
		dst = dst[:lo+len(out)]
		p = out
	}
	return dst, p, true
}

// rawEntry decodes one map<string,string> entry made only of its key and
// value fields (a later field of the same number wins).
func rawEntry(b []byte) (k, v string, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || (num != 1 && num != 2) {
			return "", "", false
		}
		b = b[n:]
		s, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", "", false
		}
		b = b[n:]
		if num == 1 {
			k = aliasString(s)
		} else {
			v = aliasString(s)
		}
	}
	return k, v, true
}

// aliasString returns b as a string without copying it.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
