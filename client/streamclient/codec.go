package streamclient

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// codec decodes stream messages with their vtprotobuf methods, straight from
// the received buffer when it is in one piece (no pooled copy to clear),
// and encodes the request. It is used for the StreamMetrics call only
// (grpc.ForceCodecV2), under the standard content-subtype "proto".
type codec struct{}

type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
}

var _ encoding.CodecV2 = codec{}

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if vt, ok := v.(vtMessage); ok {
		buf := make([]byte, vt.SizeVT())
		if _, err := vt.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("streamclient: cannot marshal %T", v)
	}
	buf, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
}

// Unmarshal decodes data into v; the message copies what it keeps, so data
// may be released afterwards.
func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	if vt, ok := v.(vtMessage); ok {
		return vt.UnmarshalVT(b)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("streamclient: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(b, m)
}

func (codec) Name() string { return "proto" }
