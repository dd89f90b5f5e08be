package grpccodec

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// DecodeError is a request body that is not a valid protobuf encoding of the
// method's request message.
type DecodeError struct {
	// Message is the full name of the request message, e.g.
	// metricsmodule.v1.RecordBatchMetricsRequest.
	Message string
	// Err is the decoder's error.
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("request body is not a valid %s: %v", e.Message, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// FieldError is a decoded request whose field holds a value the API does not
// accept: an enum number with no name, or a negative count or duration.
type FieldError struct {
	// Field is the path of the field, e.g. request.options.mode.
	Field string
	// Message says what is wrong and how to fix it.
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// deferredDecode asks Codec.Unmarshal to store its error instead of
// returning it: grpc-go writes INTERNAL to the stream as soon as the codec
// fails (serverStream.RecvMsg), before a handler could choose the code.
type deferredDecode struct {
	v   any
	err error
	// flat, if set, asks for a RecordBatchMetricsRequest's labels as raw
	// bytes (see BatchLabels).
	flat *FlatLabels
}

// FlatLabels are the labels of the records of a RecordBatchMetricsRequest
// as received, not decoded into maps (see BatchLabels).
type FlatLabels struct {
	req *pb.RecordBatchMetricsRequest
	// Raw[i], when not nil, is the protobuf encoding of the label map
	// entries (field 4) of record i, and the record's Labels map is empty;
	// when nil, the record's labels are in its map.
	Raw [][]byte
	// arrays of the request, reused after the handler returned
	arrays *batchArrays
	// buf holds the request's bytes; recycle: it goes back to requestPool
	// after the handler returned (see Recycle)
	buf     mem.Buffer
	recycle bool
}

// release gives the request's arrays back for reuse: the request must not
// be used any more.
func (f *FlatLabels) release() {
	if f.arrays != nil {
		if f.req != nil {
			f.req.Metrics = nil
		}
		putArrays(f.arrays)
		f.arrays, f.Raw = nil, nil
	}
	if f.buf != nil {
		if f.recycle {
			f.buf.Free()
		}
		// else the garbage collector takes the buffer once nothing
		// points into it
		f.buf, f.recycle = nil, false
	}
}

// Recycle tells a StrictService server that nothing built from req, a
// RecordBatchMetricsRequest it decoded, points into req's strings or raw
// labels any more, nor will once the handler has returned (its answer
// included): the buffer they point into is then reused for a later
// request. Without it the buffer is left to the garbage collector. ctx is
// the handler's context.
//
// Call it only when that is certain: a string kept past the call would
// change under its holder. (convert.Batch.Detached says so for a batch.)
func Recycle(ctx context.Context, req *pb.RecordBatchMetricsRequest) {
	if f, ok := ctx.Value(flatKey{}).(*FlatLabels); ok && f.req == req {
		f.recycle = true
	}
}

type flatKey struct{}

// BatchLabels returns the raw labels of req when the server decoded it
// (StrictService with Codec) without label maps, else nil: the records of
// req then hold their labels in their maps. ctx is the handler's context.
// Strings and bytes point into a copy of the request that is reused for a
// later request after Recycle: a caller that calls Recycle must keep none
// of them.
func BatchLabels(ctx context.Context, req *pb.RecordBatchMetricsRequest) [][]byte {
	if f, ok := ctx.Value(flatKey{}).(*FlatLabels); ok && f.req == req {
		return f.Raw
	}
	return nil
}

// StrictService returns a copy of desc whose unary handlers answer
// INVALID_ARGUMENT, naming the message, for a request body that does not
// decode (grpc-go would answer INTERNAL) and, with checkFields, for a request
// with an unknown enum number or a negative signed integer or duration
// anywhere in it (see CheckRequest). Register it with
// grpc.Server.RegisterService on a server that uses Codec
// (grpc.ForceServerCodecV2); streams get the same from
// StrictStreamInterceptor.
func StrictService(desc *grpc.ServiceDesc, checkFields bool) *grpc.ServiceDesc {
	out := *desc
	out.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			flat := &FlatLabels{}
			ctx = context.WithValue(ctx, flatKey{}, flat)
			// A RecordBatchMetrics request and its records are the
			// handler's only until it returns (it keeps no reference to
			// them): then their arrays are reused.
			defer flat.release()
			return h(srv, ctx, func(v any) error { return strictDecode(dec, v, checkFields, flat) }, ic)
		}
		out.Methods[i] = m
	}
	return &out
}

// StrictStreamInterceptor does for the messages a stream receives what
// StrictService does for unary requests. Chain it before any interceptor
// that looks at received messages (it must sit next to the transport's
// stream, below their wrappers).
func StrictStreamInterceptor(checkFields bool) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &strictStream{ServerStream: ss, check: checkFields})
	}
}

type strictStream struct {
	grpc.ServerStream
	check bool
}

func (s *strictStream) RecvMsg(m any) error {
	return strictDecode(s.ServerStream.RecvMsg, m, s.check, nil)
}

func strictDecode(dec func(any) error, v any, check bool, flat *FlatLabels) error {
	d := &deferredDecode{v: v, flat: flat}
	if err := dec(d); err != nil {
		return err
	}
	if d.err != nil {
		return status.Error(codes.InvalidArgument, d.err.Error()+
			" (fix: send a protobuf encoding of the request message; check that the client's proto matches the server's)")
	}
	if !check {
		return nil
	}
	if m, ok := v.(proto.Message); ok {
		if err := CheckRequest(m); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return nil
}

// decodeError wraps a decoder error with the name of the message.
func decodeError(v any, err error) error {
	if err == nil {
		return nil
	}
	name := fmt.Sprintf("%T", v)
	if m, ok := v.(proto.Message); ok {
		name = string(m.ProtoReflect().Descriptor().FullName())
	}
	return &DecodeError{Message: name, Err: err}
}

// CheckRequest refuses, with a *FieldError naming the first offending field,
// an enum field whose number has no name in its enum, a negative int32/int64
// field (page sizes, top_n, limits: sint fields may be negative) and a
// negative or malformed google.protobuf.Duration. Records (MetricData) are
// left to internal/convert.
func CheckRequest(m proto.Message) error {
	r := m.ProtoReflect()
	p := planFor(r.Descriptor())
	if len(p.fields) == 0 {
		return nil
	}
	return p.check(r, "request")
}

type checkKind uint8

const (
	checkEnum checkKind = iota
	checkSigned
	checkDuration
	checkMessage
)

type fieldPlan struct {
	fd   protoreflect.FieldDescriptor
	kind checkKind
	sub  *plan
}

// plan lists the fields of one message type that need a check, so that a
// request with thousands of records checks only what can be wrong.
type plan struct {
	fields []fieldPlan
}

// perRecord are the messages CheckRequest leaves alone: internal/convert
// validates each record, so that a best-effort batch keeps its valid records
// and the refusal names the record's issue.
var perRecord = map[protoreflect.FullName]struct{}{
	"metricsmodule.v1.MetricData": {},
}

// handlerChecked are fields whose handler refuses a negative value with its
// own message (and range): CheckRequest leaves their sign alone.
var handlerChecked = map[protoreflect.FullName]struct{}{
	"metricsmodule.v1.QueryMetricsRequest.step":    {},
	"metricsmodule.v1.QueryLimits.timeout":         {},
	"metricsmodule.v1.QueryLimits.max_samples":     {},
	"metricsmodule.v1.QueryLimits.max_series":      {},
	"metricsmodule.v1.GetMetricsRequest.page_size": {},
	"metricsmodule.v1.Aggregation.step":            {},
	"metricsmodule.v1.Aggregation.range":           {},
}

var plans sync.Map // protoreflect.FullName → *plan

func planFor(md protoreflect.MessageDescriptor) *plan {
	if p, ok := plans.Load(md.FullName()); ok {
		return p.(*plan)
	}
	p := buildPlan(md, map[protoreflect.FullName]*plan{})
	actual, _ := plans.LoadOrStore(md.FullName(), p)
	return actual.(*plan)
}

func buildPlan(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]*plan) *plan {
	if p, ok := building[md.FullName()]; ok {
		return p
	}
	p := &plan{}
	building[md.FullName()] = p
	if _, ok := perRecord[md.FullName()]; ok {
		return p
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		vd := fd
		if fd.IsMap() {
			vd = fd.MapValue()
		}
		switch vd.Kind() {
		case protoreflect.EnumKind:
			if vd.Enum().IsClosed() {
				continue // proto2 enums cannot hold unknown numbers
			}
			p.fields = append(p.fields, fieldPlan{fd: fd, kind: checkEnum})
		case protoreflect.Int32Kind, protoreflect.Int64Kind:
			if _, ok := handlerChecked[fd.FullName()]; !ok {
				p.fields = append(p.fields, fieldPlan{fd: fd, kind: checkSigned})
			}
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if vd.Message().FullName() == "google.protobuf.Duration" {
				if _, ok := handlerChecked[fd.FullName()]; !ok {
					p.fields = append(p.fields, fieldPlan{fd: fd, kind: checkDuration})
				}
				continue
			}
			if vd.Message().FullName().Parent() == "google.protobuf" {
				continue // well-known types: a Timestamp may be before 1970
			}
			sub := buildPlan(vd.Message(), building)
			p.fields = append(p.fields, fieldPlan{fd: fd, kind: checkMessage, sub: sub})
		}
	}
	return p
}

func (p *plan) check(m protoreflect.Message, path string) error {
	for _, f := range p.fields {
		if f.kind == checkMessage && len(f.sub.fields) == 0 {
			continue
		}
		if !m.Has(f.fd) {
			continue
		}
		name := path + "." + string(f.fd.Name())
		v := m.Get(f.fd)
		switch {
		case f.fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if err := f.checkValue(l.Get(i), name+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		case f.fd.IsMap():
			var err error
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = f.checkValue(mv, name+"["+strconv.Quote(k.String())+"]")
				return err == nil
			})
			if err != nil {
				return err
			}
		default:
			if err := f.checkValue(v, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fieldPlan) checkValue(v protoreflect.Value, name string) error {
	switch f.kind {
	case checkEnum:
		ed := f.fd.Enum()
		if f.fd.IsMap() {
			ed = f.fd.MapValue().Enum()
		}
		if n := v.Enum(); ed.Values().ByNumber(n) == nil {
			return &FieldError{Field: name, Message: fmt.Sprintf("%d is not a %s (fix: use one of %s)", n, ed.Name(), enumNames(ed))}
		}
	case checkSigned:
		if n := v.Int(); n < 0 {
			return &FieldError{Field: name, Message: fmt.Sprintf("must not be negative, got %d (fix: 0 for the default, or a positive number)", n)}
		}
	case checkDuration:
		d := v.Message()
		fields := d.Descriptor().Fields()
		secs := d.Get(fields.ByName("seconds")).Int()
		nanos := d.Get(fields.ByName("nanos")).Int()
		switch {
		case secs < 0 || nanos < 0:
			return &FieldError{Field: name, Message: fmt.Sprintf("must not be negative, got %ds %dns (fix: leave it unset for the default, or a positive duration)", secs, nanos)}
		case nanos >= 1e9:
			return &FieldError{Field: name, Message: fmt.Sprintf("nanos must be below 1e9, got %d (fix: carry whole seconds into seconds)", nanos)}
		}
	case checkMessage:
		return f.sub.check(v.Message(), name)
	}
	return nil
}

func enumNames(ed protoreflect.EnumDescriptor) string {
	vals := ed.Values()
	names := make([]string, 0, vals.Len())
	for i := 0; i < vals.Len(); i++ {
		names = append(names, string(vals.Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

// DecodeBatch decodes data into req the way a StrictService server does for
// RecordBatchMetrics (labels as raw bytes, arrays from a pool) and returns
// ctx with the labels, for BatchLabels, and release, which gives the arrays
// back once req is no longer used. For tests and benchmarks that call a
// handler directly.
func DecodeBatch(ctx context.Context, data []byte, req *pb.RecordBatchMetricsRequest) (_ context.Context, release func(), _ error) {
	flat := &FlatLabels{req: req}
	if err := unmarshalBatch(append([]byte(nil), data...), req, flat); err != nil {
		flat.release()
		return ctx, func() {}, decodeError(req, err)
	}
	return context.WithValue(ctx, flatKey{}, flat), flat.release, nil
}
