package convert

import (
	"reflect"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Building pdata through its public API allocates three objects per number
// data point plus one per label: the point, its value, its attribute array
// and one string value per label (pcommon.Map.PutStr, which also searches
// the map for the key first). That was the largest share of the receiver's
// CPU. A pointArena instead allocates the points, attribute arrays and
// values of a request together, in chunks, and writes them in place, with
// no key search (the labels of a record are unique and sorted). The result is the same pdata, element for
// element: every point, attribute and value is still its own element, so
// downstream components may read, modify, move or copy it as usual.
//
// This writes pdata's internal structs, whose layout is not part of its
// API. fastPdata checks that layout with reflection once, against mirror
// types declared here; when anything differs (another pdata version) the
// arena is off and build uses the public API. TestPdataLayoutChecked fails
// then, so an upgrade that disables the fast path does not go unnoticed.

// pdataKV mirrors pdata's internal KeyValue (an attribute).
type pdataKV struct {
	Value       any // internal.AnyValue{Value any}: *AnyValue_StringValue for a string
	Key         string
	KeyStrindex int32
}

// pdataNumberPoint mirrors pdata's internal NumberDataPoint.
type pdataNumberPoint struct {
	Value             any // *NumberDataPoint_AsDouble for a double
	Attributes        []pdataKV
	Exemplars         []unsafe.Pointer // never written here
	StartTimeUnixNano uint64
	TimeUnixNano      uint64
	Flags             uint32
}

// pdataStr mirrors internal.AnyValue_StringValue; pdataDouble mirrors
// internal.NumberDataPoint_AsDouble.
type (
	pdataStr    struct{ StringValue string }
	pdataDouble struct{ AsDouble float64 }
)

// wrapperHeader mirrors the public wrappers pcommon.Map and
// pmetric.NumberDataPointSlice: a pointer to the internal slice and the
// state.
type wrapperHeader struct {
	orig  unsafe.Pointer
	state unsafe.Pointer
}

// fastPdata holds the type words of pdata's string and double values when
// the layout checks passed (ok).
var fastPdata = checkPdataLayout()

type pdataTypes struct {
	ok        bool
	strType   unsafe.Pointer // type word of *internal.AnyValue_StringValue
	floatType unsafe.Pointer // type word of *internal.NumberDataPoint_AsDouble
}

// checkPdataLayout compares pdata's internal types with the mirrors above
// and takes the type words of its value wrappers from values built with the
// public API.
func checkPdataLayout() pdataTypes {
	mapT := reflect.TypeFor[pcommon.Map]()
	sliceT := reflect.TypeFor[pmetric.NumberDataPointSlice]()
	if !sameWrapper(mapT) || !sameWrapper(sliceT) {
		return pdataTypes{}
	}
	kvT := mapT.Field(0).Type.Elem() // []internal.KeyValue
	if kvT.Kind() != reflect.Slice || !sameLayout(kvT.Elem(), reflect.TypeFor[pdataKV]()) {
		return pdataTypes{}
	}
	dpsT := sliceT.Field(0).Type.Elem() // []*internal.NumberDataPoint
	if dpsT.Kind() != reflect.Slice || dpsT.Elem().Kind() != reflect.Pointer ||
		!sameLayout(dpsT.Elem().Elem(), reflect.TypeFor[pdataNumberPoint]()) {
		return pdataTypes{}
	}
	if f, ok := dpsT.Elem().Elem().FieldByName("Attributes"); !ok || f.Type != kvT {
		return pdataTypes{}
	}

	// The value wrappers, from a point built through the API.
	dps := pmetric.NewNumberDataPointSlice()
	dp := dps.AppendEmpty()
	dp.SetDoubleValue(1.5)
	dp.Attributes().PutStr("k", "v")
	p := (*(*[]*pdataNumberPoint)(header(&dps).orig))[0]
	if len(p.Attributes) != 1 || p.Attributes[0].Key != "k" {
		return pdataTypes{}
	}
	sv, fv := p.Attributes[0].Value, p.Value
	if !pointsTo(sv, reflect.TypeFor[pdataStr]()) || !pointsTo(fv, reflect.TypeFor[pdataDouble]()) {
		return pdataTypes{}
	}
	if (*pdataStr)(dataWord(sv)).StringValue != "v" || (*pdataDouble)(dataWord(fv)).AsDouble != 1.5 {
		return pdataTypes{}
	}
	return pdataTypes{ok: true, strType: typeWord(sv), floatType: typeWord(fv)}
}

// sameWrapper reports whether t is a public wrapper: a pointer to the
// internal value, then the state pointer.
func sameWrapper(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.NumField() == 2 && t.Size() == unsafe.Sizeof(wrapperHeader{}) &&
		t.Field(0).Type.Kind() == reflect.Pointer && t.Field(1).Type.Kind() == reflect.Pointer &&
		t.Field(1).Offset == unsafe.Offsetof(wrapperHeader{}.state)
}

// sameLayout reports whether struct types t (pdata's) and m (its mirror)
// have the same fields: names, offsets, sizes and kinds, and for slices of
// structs the same element layout.
func sameLayout(t, m reflect.Type) bool {
	if t.Kind() != reflect.Struct || m.Kind() != reflect.Struct || t.Size() != m.Size() || t.NumField() != m.NumField() {
		return false
	}
	for i := range t.NumField() {
		tf, mf := t.Field(i), m.Field(i)
		if tf.Name != mf.Name || tf.Offset != mf.Offset || tf.Type.Size() != mf.Type.Size() {
			return false
		}
		tk, mk := tf.Type.Kind(), mf.Type.Kind()
		switch {
		case tk == reflect.Struct && mk == reflect.Interface:
			// internal.AnyValue{Value any} mirrored as any
			if tf.Type.NumField() != 1 || tf.Type.Field(0).Type != mf.Type {
				return false
			}
		case tk != mk:
			return false
		case tk == reflect.Interface && tf.Type != mf.Type: // any, not an interface with methods
			return false
		case tk == reflect.Slice && mf.Type.Elem().Kind() == reflect.Struct:
			if !sameLayout(tf.Type.Elem(), mf.Type.Elem()) {
				return false
			}
		}
	}
	return true
}

// pointsTo reports whether v holds a pointer to a struct laid out as m.
func pointsTo(v any, m reflect.Type) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Pointer && sameLayout(t.Elem(), m)
}

func header[T pcommon.Map | pmetric.NumberDataPointSlice](w *T) *wrapperHeader {
	return (*wrapperHeader)(unsafe.Pointer(w))
}

// eface is the layout of an interface value (any).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }
func dataWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).data }

// setAny sets *dst to the value of dynamic type typ pointing at data.
func setAny(dst *any, typ, data unsafe.Pointer) {
	e := (*eface)(unsafe.Pointer(dst))
	e.data = data
	e.typ = typ
}

// pointArena hands out the number data points, attribute arrays and values
// of one build (see above), from chunks of about 8 KiB: small objects,
// which the Go heap reuses without the fragmentation large ones cause. The
// zero value is off: build then uses the public API.
type pointArena struct {
	on   bool
	dps  []pdataNumberPoint
	kvs  []pdataKV
	strs []pdataStr
	dbls []pdataDouble
}

// chunk sizes (elements) of about 8 KiB
const (
	arenaPoints = 8192 / int(unsafe.Sizeof(pdataNumberPoint{}))
	arenaKVs    = 8192 / int(unsafe.Sizeof(pdataKV{}))
	arenaStrs   = 8192 / int(unsafe.Sizeof(pdataStr{}))
	arenaDbls   = 8192 / int(unsafe.Sizeof(pdataDouble{}))
)

// reset empties the arena and turns it on, unless the fast path is off.
func (ar *pointArena) reset(on bool) {
	*ar = pointArena{on: on && fastPdata.ok}
}

// numberPoint appends a double data point with labels to dps (with labels
// nil, those of the cache entry cs when not nil); ok is false when the arena
// is off (the caller then uses the public API).
func (ar *pointArena) numberPoint(dps pmetric.NumberDataPointSlice, ts, start pcommon.Timestamp, v float64, labels []kv, cs *cachedSeries) bool {
	if !ar.on {
		return false
	}
	if len(ar.dps) == cap(ar.dps) {
		ar.dps = make([]pdataNumberPoint, 0, arenaPoints)
	}
	if len(ar.dbls) == cap(ar.dbls) {
		ar.dbls = make([]pdataDouble, 0, arenaDbls)
	}
	ar.dps = ar.dps[:len(ar.dps)+1]
	p := &ar.dps[len(ar.dps)-1]
	p.TimeUnixNano = uint64(ts)
	p.StartTimeUnixNano = uint64(start)
	ar.dbls = ar.dbls[:len(ar.dbls)+1]
	d := &ar.dbls[len(ar.dbls)-1]
	d.AsDouble = v
	setAny(&p.Value, fastPdata.floatType, unsafe.Pointer(d))
	n := len(labels)
	fromCache := labels == nil && cs != nil
	if fromCache {
		n = int(cs.nl)
	}
	if n > 0 {
		if cap(ar.kvs)-len(ar.kvs) < n {
			ar.kvs = make([]pdataKV, 0, max(n, arenaKVs))
		}
		if cap(ar.strs)-len(ar.strs) < n {
			ar.strs = make([]pdataStr, 0, max(n, arenaStrs))
		}
		lo, slo := len(ar.kvs), len(ar.strs)
		ar.kvs = ar.kvs[:lo+n]
		ar.strs = ar.strs[:slo+n]
		attrs := ar.kvs[lo : lo+n : lo+n]
		for i := range n {
			var l kv
			if fromCache {
				l = cs.label(i)
			} else {
				l = labels[i]
			}
			s := &ar.strs[slo+i]
			s.StringValue = l.v
			attrs[i].Key = l.k
			setAny(&attrs[i].Value, fastPdata.strType, unsafe.Pointer(s))
		}
		p.Attributes = attrs
	}
	orig := (*[]*pdataNumberPoint)(header(&dps).orig)
	*orig = append(*orig, p)
	return true
}
