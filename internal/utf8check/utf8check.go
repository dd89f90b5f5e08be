// Package utf8check finds invalid UTF-8 in the string fields of a protobuf
// message. The servers decode requests with vtprotobuf, which does not check
// UTF-8: a string with invalid bytes would be accepted, stored, and break
// every later reader (protobuf-go refuses to decode it). The gRPC
// interceptors refuse such requests with INVALID_ARGUMENT naming the field.
package utf8check

import (
	"context"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Error is invalid UTF-8 in one field.
type Error struct {
	// Field is the path of the field, e.g. `definition.labels[2].description`
	// or `resource.attributes["service.name"]`.
	Field string
}

// Error names the field and the fix.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: contains invalid UTF-8 (fix: send valid UTF-8; encode binary data, e.g. as base64 or hex)", e.Field)
}

// Check returns the first string field of m (depth first, in field number
// order) that is not valid UTF-8, or nil.
func Check(m proto.Message) *Error {
	if m == nil {
		return nil
	}
	return checkMessage(m.ProtoReflect(), "")
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func checkMessage(m protoreflect.Message, path string) *Error {
	var found *Error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		found = checkField(fd, v, join(path, string(fd.Name())))
		return found == nil
	})
	return found
}

func checkField(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) *Error {
	switch {
	case fd.IsMap():
		var found *Error
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			key := k.Value()
			if fd.MapKey().Kind() == protoreflect.StringKind {
				if s := key.String(); !utf8.ValidString(s) {
					found = &Error{Field: fmt.Sprintf("%s (a key: %s)", path, strconv.QuoteToASCII(s))}
					return false
				}
			}
			found = checkValue(fd.MapValue(), mv, fmt.Sprintf("%s[%s]", path, strconv.QuoteToASCII(key.String())))
			return found == nil
		})
		return found
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := checkValue(fd, l.Get(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	default:
		return checkValue(fd, v, path)
	}
}

func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) *Error {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return &Error{Field: path}
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkMessage(v.Message(), path)
	}
	return nil
}

// Status is the INVALID_ARGUMENT status of e, with a BadRequest detail.
func (e *Error) Status() *status.Status {
	st := status.New(codes.InvalidArgument, e.Error())
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
		Field: e.Field, Description: "contains invalid UTF-8",
	}}}); err == nil {
		return d
	}
	return st
}

// UnaryServerInterceptor refuses requests with invalid UTF-8, except for the
// methods in skip (which check their strings themselves).
func UnaryServerInterceptor(skip ...string) grpc.UnaryServerInterceptor {
	skipped := toSet(skip)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !skipped[info.FullMethod] {
			if m, ok := req.(proto.Message); ok {
				if err := Check(m); err != nil {
					return nil, err.Status().Err()
				}
			}
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor refuses stream messages with invalid UTF-8.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, checkedStream{ss})
	}
}

type checkedStream struct{ grpc.ServerStream }

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		if err := Check(pm); err != nil {
			return err.Status().Err()
		}
	}
	return nil
}

func toSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}
