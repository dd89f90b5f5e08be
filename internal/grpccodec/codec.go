// Package grpccodec is a gRPC codec that decodes and encodes messages with
// their vtprotobuf-generated methods (several times faster than reflection)
// and falls back to the protobuf runtime for other messages (health,
// reflection). Install it per server with grpc.ForceServerCodecV2.
// StrictService and StrictStreamInterceptor make a body that does not decode
// INVALID_ARGUMENT naming the message (grpc-go answers INTERNAL) and refuse
// unknown enum numbers and negative counts or durations naming the field.
package grpccodec

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Name is the content-subtype the codec serves; it replaces the default
// "proto" codec on the servers it is installed on.
const Name = "proto"

// vtMessage is what protoc-gen-go-vtproto generates.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
}

// Codec implements encoding.CodecV2.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Marshal encodes v, into a pooled buffer for large messages.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	vt, ok := v.(vtMessage)
	if !ok {
		m, ok := v.(proto.Message)
		if !ok {
			return nil, fmt.Errorf("grpccodec: cannot marshal %T: not a proto message", v)
		}
		buf, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	size := vt.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := vt.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := vt.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes data into v. The message stays valid after data is
// released: strings are copied out of data, except for a
// RecordBatchMetricsRequest, whose hot strings point into a copy of the
// message bytes (one buffer instead of one allocation per string; see
// unmarshalBatch). Under StrictService that buffer comes from a pool and
// goes back to it only when the handler calls Recycle.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if d, ok := v.(*deferredDecode); ok {
		// StrictService: grpc-go would write INTERNAL to the stream as soon
		// as Unmarshal fails, so the error is handed back in d instead.
		if req, ok := d.v.(*pb.RecordBatchMetricsRequest); ok && d.flat != nil {
			d.flat.req = req
			// Decoded in place from a pooled buffer, which goes back to
			// the pool only after Recycle (see FlatLabels.release).
			buf := copyToPool(data, *requestPool.Load())
			d.flat.buf = buf
			d.err = decodeError(req, unmarshalBatch(buf.ReadOnlyData(), req, d.flat))
			return nil
		}
		d.err = c.Unmarshal(data, d.v)
		return nil
	}
	if req, ok := v.(*pb.RecordBatchMetricsRequest); ok {
		return decodeError(v, unmarshalBatch(data.Materialize(), req, nil))
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if vt, ok := v.(vtMessage); ok {
		return decodeError(v, vt.UnmarshalVT(buf.ReadOnlyData()))
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("grpccodec: cannot unmarshal into %T: not a proto message", v)
	}
	return decodeError(v, proto.Unmarshal(buf.ReadOnlyData(), m))
}

// copyToPool copies data into a buffer of pool (always: a message in one
// buffer is not kept in the transport's buffer, so that what Recycle
// reuses is always the pool's).
func copyToPool(data mem.BufferSlice, pool mem.BufferPool) mem.Buffer {
	b := pool.Get(data.Len())
	data.CopyTo(*b)
	return mem.NewBuffer(b, pool)
}

// Name returns "proto".
func (Codec) Name() string { return Name }
