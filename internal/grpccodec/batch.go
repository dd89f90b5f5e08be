package grpccodec

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// unmarshalBatch decodes a RecordBatchMetricsRequest from b like
// req.UnmarshalVT, but the strings of the hot fields (metric name, unit,
// description, label names and values) point into b instead of being copied
// one by one. b must not be modified or reused while anything built from
// those strings is in use: a server reuses it only after Recycle.
//
// Only the well-formed common case is decoded here. Other fields go through
// the generated UnmarshalVT: one field at a time where it reads only that
// field, else the rest of the message. So results and errors are those of the
// generated code.
//
// With flat set, the labels of a record are not put in a map: flat.Raw[i]
// is the wire encoding of the label entries of req.Metrics[i] (see
// BatchLabels), unless they are not contiguous or not well formed; then
// they are in the record's map as usual and flat.Raw[i] is nil. The
// records' arrays then come from a pool, and FlatLabels.release gives them
// back once the handler returned.
func unmarshalBatch(b []byte, req *pb.RecordBatchMetricsRequest, flat *FlatLabels) error {
	// The records and their timestamps are allocated in two arrays, one
	// element per record, instead of two objects per record.
	var (
		mds []pb.MetricData
		tss []timestamppb.Timestamp
		sts []timestamppb.Timestamp // start times (pooled only)
		k   int
	)
	if n := countRecords(b); n > 0 {
		if flat != nil {
			arr := getArrays(n)
			flat.arrays = arr
			mds, tss, sts, flat.Raw = arr.mds, arr.tss, arr.sts, arr.raw
			req.Metrics = arr.ptrs
		} else {
			mds = make([]pb.MetricData, n)
			tss = make([]timestamppb.Timestamp, n)
			req.Metrics = make([]*pb.MetricData, 0, n)
		}
	}
	var err error
	for i := 0; i < len(b); {
		start := i
		tag, n := uvarint(b, i)
		if n < 0 {
			return req.UnmarshalVT(b[start:])
		}
		i += n
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if num == 1 && typ == protowire.BytesType {
			v, n := bytesAt(b, i)
			if n < 0 {
				return req.UnmarshalVT(b[start:])
			}
			i += n
			var m *pb.MetricData
			var ts, st *timestamppb.Timestamp
			var raw *[]byte
			if k < len(mds) {
				m, ts = &mds[k], &tss[k]
				if flat != nil {
					raw, st = &flat.Raw[k], &sts[k]
				}
				k++
			} else {
				m = &pb.MetricData{}
			}
			if ts != nil && fastMetric(v, m, ts, st, raw) {
				if flat != nil {
					flat.arrays.fast[k-1] = true
				}
			} else if err := unmarshalMetric(v, m, ts, st, raw); err != nil {
				return err
			}
			req.Metrics = append(req.Metrics, m)
			continue
		}
		if !(typ == protowire.BytesType && (num == 2 || num == 3 || num == 4)) {
			return req.UnmarshalVT(b[start:])
		}
		if i, err = delegate(b, start, i, req.UnmarshalVT); err != nil {
			return err
		}
	}
	return nil
}

// batchArrays are the arrays of one decoded batch: records, their
// timestamps, the record pointers of the request and the raw labels. A
// server reuses them once the handler returned (see FlatLabels.release):
// they are about 250 bytes per record, a third of what a request
// allocates besides the pdata.
type batchArrays struct {
	mds  []pb.MetricData
	tss  []timestamppb.Timestamp
	sts  []timestamppb.Timestamp
	ptrs []*pb.MetricData
	raw  [][]byte
	fast []bool // the record was decoded by fastMetric
}

var arraysPool sync.Pool // *batchArrays, zeroed

// maxPooledRecords bounds the arrays kept for reuse (about 1 MiB): those of
// a larger batch are left to the garbage collector, so one large batch
// does not keep its arrays alive for every later small one.
const maxPooledRecords = 4096

// getArrays returns zeroed arrays for n records (ptrs empty, with room for n).
func getArrays(n int) *batchArrays {
	a, _ := arraysPool.Get().(*batchArrays)
	if a == nil || cap(a.mds) < n {
		return &batchArrays{
			mds: make([]pb.MetricData, n), tss: make([]timestamppb.Timestamp, n), sts: make([]timestamppb.Timestamp, n),
			ptrs: make([]*pb.MetricData, 0, n), raw: make([][]byte, n), fast: make([]bool, n),
		}
	}
	a.mds, a.tss, a.sts, a.ptrs, a.raw, a.fast = a.mds[:n], a.tss[:n], a.sts[:n], a.ptrs[:0], a.raw[:n], a.fast[:n]
	return a
}

// putArrays zeroes a (dropping its references to the request) and pools it
// (up to maxPooledRecords records). (Elements past len were zeroed by an
// earlier putArrays.)
func putArrays(a *batchArrays) {
	if cap(a.mds) > maxPooledRecords {
		return
	}
	for i := range a.mds {
		m := &a.mds[i]
		if a.fast[i] && m.Labels == nil && m.Observations == nil && m.Histogram == nil &&
			m.Summary == nil && m.Resource == nil && m.SampleRate == 0 {
			// Zero only what fastMetric sets (clearing whole records
			// costs a write barrier per pointer while the GC marks).
			if m.Name != "" {
				m.Name = ""
			}
			if m.Unit != "" {
				m.Unit = ""
			}
			if m.Description != "" {
				m.Description = ""
			}
			if m.Timestamp != nil {
				m.Timestamp = nil
			}
			if m.StartTime != nil {
				m.StartTime = nil
			}
			m.Type, m.Value, m.Cumulative = 0, 0, false
			a.tss[i].Seconds, a.tss[i].Nanos = 0, 0
			a.sts[i].Seconds, a.sts[i].Nanos = 0, 0
			a.fast[i] = false
			continue
		}
		a.fast[i] = false
		clear(a.mds[i : i+1])
		clear(a.tss[i : i+1])
		clear(a.sts[i : i+1])
	}
	clear(a.ptrs[:cap(a.ptrs)])
	clear(a.raw)
	arraysPool.Put(a)
}

// delegate decodes the field that starts at start, whose value starts at i,
// with unmarshal (generated code, which merges the field into its message),
// and returns the end of the field. Only for fields that the generated code
// reads within their bounds: strings, bytes, scalars and messages (it may
// read past the end of a malformed packed field or map entry).
func delegate(b []byte, start, i int, unmarshal func([]byte) error) (int, error) {
	tag, _ := protowire.ConsumeVarint(b[start:])
	n := protowire.ConsumeFieldValue(protowire.Number(tag>>3), protowire.Type(tag&7), b[i:])
	if n < 0 {
		return len(b), unmarshal(b[start:])
	}
	return i + n, unmarshal(b[start : i+n])
}

// countRecords returns the number of records (field 1) in a well-formed
// RecordBatchMetricsRequest, stopping at the first malformed field.
func countRecords(b []byte) int {
	n := 0
	for len(b) > 0 {
		if b[0] == 0x0a { // field 1, bytes
			if _, l := bytesAt(b, 1); l >= 0 {
				n++
				b = b[1+l:]
				continue
			}
		}
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			break
		}
		if num == 1 && typ == protowire.BytesType {
			n++
		}
		v := protowire.ConsumeFieldValue(num, typ, b[l:])
		if v < 0 {
			break
		}
		b = b[l+v:]
	}
	return n
}

// unmarshalMetric decodes one MetricData (see unmarshalBatch). ts and st, if
// not nil, are zero Timestamps to decode m's timestamp and start time into.
// raw, if not nil, receives the wire bytes of m's labels instead of m.Labels
// (see unmarshalBatch).
func unmarshalMetric(b []byte, m *pb.MetricData, ts, st *timestamppb.Timestamp, raw *[]byte) error {
	// the contiguous label entries seen so far, while raw is in use
	spanStart, spanEnd := -1, -1
	// toMap puts the entries of the span into m.Labels and stops using raw.
	toMap := func() {
		if raw == nil {
			return
		}
		if spanStart >= 0 {
			labelsToMap(b[spanStart:spanEnd], m)
		}
		raw = nil
	}
	fallback := func(start int) error {
		toMap()
		return m.UnmarshalVT(b[start:])
	}
	for i := 0; i < len(b); {
		start := i
		tag, n := uvarint(b, i)
		if n < 0 {
			return fallback(start)
		}
		i += n
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		switch {
		case typ == protowire.BytesType && (num == 1 || num == 6 || num == 7):
			v, n := bytesAt(b, i)
			if n < 0 {
				return fallback(start)
			}
			i += n
			switch s := alias(v); num {
			case 1:
				m.Name = s
			case 6:
				m.Unit = s
			default:
				m.Description = s
			}
			continue
		case typ == protowire.BytesType && num == 4:
			v, n := bytesAt(b, i)
			if n < 0 {
				return fallback(start)
			}
			if raw != nil && (spanStart < 0 || spanEnd == start) {
				// raw labels: only check that the entry is well formed
				if validEntry(v) {
					i += n
					if spanStart < 0 {
						spanStart = start
					}
					spanEnd = i
					continue
				}
			} else if k, val, ok := mapEntry(v); ok {
				i += n
				toMap() // labels not in one run: a map after all
				if m.Labels == nil {
					m.Labels = make(map[string]string)
				}
				m.Labels[k] = val
				continue
			}
			// The generated code reads a malformed entry up to the end of
			// the message, not of the entry: let it decode the rest.
			return fallback(start)
		case typ == protowire.VarintType && num == 2:
			v, n := uvarint(b, i)
			if n < 0 {
				return fallback(start)
			}
			i += n
			m.Type = pb.MetricType(int32(v))
			continue
		case typ == protowire.Fixed64Type && num == 3:
			if len(b)-i < 8 {
				return fallback(start)
			}
			m.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[i:]))
			i += 8
			continue
		}
		if num == 5 && typ == protowire.BytesType && m.Timestamp == nil && ts != nil {
			if v, n := bytesAt(b, i); n >= 0 {
				if sec, nanos, ok := timestampFields(v); ok {
					ts.Seconds, ts.Nanos = sec, nanos
					m.Timestamp = ts
					i += n
					continue
				}
			}
			// the generated code decodes into a timestamp already set
			m.Timestamp = ts
		}
		if num == 9 && typ == protowire.BytesType && m.StartTime == nil && st != nil {
			if v, n := bytesAt(b, i); n >= 0 {
				if sec, nanos, ok := timestampFields(v); ok {
					st.Seconds, st.Nanos = sec, nanos
					m.StartTime = st
					i += n
					continue
				}
			}
		}
		switch {
		case typ == protowire.BytesType && (num == 5 || num == 9 || num == 11 || num == 12 || num == 13),
			typ == protowire.VarintType && num == 8,
			typ == protowire.Fixed64Type && num == 14:
			var err error
			if i, err = delegate(b, start, i, m.UnmarshalVT); err != nil {
				toMap()
				return err
			}
		default:
			// observations, unknown fields, wrong wire types
			return fallback(start)
		}
	}
	if raw != nil {
		if spanStart >= 0 {
			*raw = b[spanStart:spanEnd:spanEnd]
		} else {
			*raw = b[:0:0] // no labels
		}
	}
	return nil
}

// fastMetric decodes b into m, which is zero, the way unmarshalMetric does,
// when b is a record in the usual encoding: fields with one-byte tags
// and lengths (below 128), name, type, value, labels in one run, one
// timestamp and one start time (with st) of seconds and nanos, cumulative,
// unit and description, in any order. It returns false for anything else,
// after setting m, *ts and *st back to zero (raw is set only on success):
// the caller then decodes b with unmarshalMetric.
func fastMetric(b []byte, m *pb.MetricData, ts, st *timestamppb.Timestamp, raw *[]byte) bool {
	spanStart, spanEnd := -1, -1
	for i := 0; i < len(b); {
		tag := b[i]
		i++
		switch tag {
		case 0x0a, 0x32, 0x3a: // name, unit, description
			if i >= len(b) || b[i] >= 0x80 || int(b[i]) >= len(b)-i {
				return fastFail(m, ts, st)
			}
			l := int(b[i])
			s := alias(b[i+1 : i+1+l])
			i += 1 + l
			switch tag {
			case 0x0a:
				m.Name = s
			case 0x32:
				m.Unit = s
			default:
				m.Description = s
			}
		case 0x10: // type
			if i >= len(b) || b[i] >= 0x80 {
				return fastFail(m, ts, st)
			}
			m.Type = pb.MetricType(b[i])
			i++
		case 0x19: // value
			if len(b)-i < 8 {
				return fastFail(m, ts, st)
			}
			m.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[i:]))
			i += 8
		case 0x22: // a label entry
			if raw == nil || (spanStart >= 0 && spanEnd != i-1) ||
				i >= len(b) || b[i] >= 0x80 || int(b[i]) >= len(b)-i || !validEntry(b[i+1:i+1+int(b[i])]) {
				return fastFail(m, ts, st)
			}
			if spanStart < 0 {
				spanStart = i - 1
			}
			i += 1 + int(b[i])
			spanEnd = i
		case 0x2a, 0x4a: // timestamp, start time
			t := ts
			if tag == 0x4a {
				t = st
			}
			if t == nil || (tag == 0x2a && m.Timestamp != nil) || (tag == 0x4a && m.StartTime != nil) ||
				i >= len(b) || b[i] >= 0x80 || int(b[i]) >= len(b)-i {
				return fastFail(m, ts, st)
			}
			l := int(b[i])
			sec, nanos, ok := timestampFields(b[i+1 : i+1+l])
			if !ok {
				return fastFail(m, ts, st)
			}
			t.Seconds, t.Nanos = sec, nanos
			if tag == 0x2a {
				m.Timestamp = t
			} else {
				m.StartTime = t
			}
			i += 1 + l
		case 0x40: // cumulative
			if i >= len(b) || b[i] >= 0x80 {
				return fastFail(m, ts, st)
			}
			m.Cumulative = b[i] != 0
			i++
		default:
			return fastFail(m, ts, st)
		}
	}
	if raw != nil {
		if spanStart >= 0 {
			*raw = b[spanStart:spanEnd:spanEnd]
		} else {
			*raw = b[:0:0] // no labels
		}
	}
	return true
}

// fastFail undoes what fastMetric set.
func fastFail(m *pb.MetricData, ts, st *timestamppb.Timestamp) bool {
	*m = pb.MetricData{}
	ts.Seconds, ts.Nanos = 0, 0
	if st != nil {
		st.Seconds, st.Nanos = 0, 0
	}
	return false
}

// timestampFields decodes a Timestamp made only of its seconds and nanos
// fields (as the generated code does: a later field wins); ok is false for
// anything else.
func timestampFields(b []byte) (sec int64, nanos int32, ok bool) {
	for len(b) > 0 {
		tag := b[0] // field 1 or 2, varint: one byte
		if tag != 0x08 && tag != 0x10 {
			return 0, 0, false
		}
		v, n := uvarint(b, 1)
		if n < 0 {
			return 0, 0, false
		}
		b = b[1+n:]
		if tag == 0x08 {
			sec = int64(v)
		} else {
			nanos = int32(v)
		}
	}
	return sec, nanos, true
}

// labelsToMap adds the label entries encoded in span (well formed, see
// mapEntry) to m.Labels.
func labelsToMap(span []byte, m *pb.MetricData) {
	for len(span) > 0 {
		_, _, n := protowire.ConsumeTag(span)
		span = span[n:]
		v, n := protowire.ConsumeBytes(span)
		span = span[n:]
		k, val, _ := mapEntry(v)
		if m.Labels == nil {
			m.Labels = make(map[string]string)
		}
		m.Labels[k] = val
	}
}

// mapEntry decodes a map<string,string> entry made only of its key and
// value fields; ok is false for anything else.
func mapEntry(b []byte) (k, v string, ok bool) {
	for i := 0; i < len(b); {
		tag, n := protowire.ConsumeVarint(b[i:])
		if n < 0 {
			return "", "", false
		}
		i += n
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if typ != protowire.BytesType || (num != 1 && num != 2) {
			return "", "", false
		}
		s, n := protowire.ConsumeBytes(b[i:])
		if n < 0 {
			return "", "", false
		}
		i += n
		if num == 1 {
			k = alias(s)
		} else {
			v = alias(s)
		}
	}
	return k, v, true
}

// validEntry reports whether b is a map<string,string> entry made only of
// its key and value fields, as mapEntry does, without decoding it.
func validEntry(b []byte) bool {
	// the usual encoding: key, then value, lengths below 128
	if len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		if j := 2 + int(b[1]); j+2 <= len(b) && b[j] == 0x12 && b[j+1] < 0x80 && j+2+int(b[j+1]) == len(b) {
			return true
		}
	}
	_, _, ok := mapEntry(b)
	return ok
}

// uvarint is protowire.ConsumeVarint(b[i:]), faster for a one-byte varint.
func uvarint(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), 1
	}
	return protowire.ConsumeVarint(b[i:])
}

// bytesAt is protowire.ConsumeBytes(b[i:]), faster for a length below 128.
func bytesAt(b []byte, i int) ([]byte, int) {
	if i < len(b) && b[i] < 0x80 {
		if l := int(b[i]); l < len(b)-i {
			return b[i+1 : i+1+l], 1 + l
		}
	}
	return protowire.ConsumeBytes(b[i:])
}

// alias returns b as a string without copying it.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
