package provider

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// scrubCore removes a provider's secrets from the message and the fields of
// every log entry (a runtime exporter logs its endpoint, its errors echo
// URLs).
type scrubCore struct {
	zapcore.Core
	s *scrubber
}

// scrubLogger returns l with its entries scrubbed by s.
func scrubLogger(l *zap.Logger, s *scrubber) *zap.Logger {
	if s == nil {
		return l
	}
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return scrubCore{Core: c, s: s} }))
}

func (c scrubCore) With(fields []zapcore.Field) zapcore.Core {
	return scrubCore{Core: c.Core.With(c.fields(fields)), s: c.s}
}

// Check asks the wrapped core (level, sampling) and writes through c.
func (c scrubCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Core.Check(e, nil) == nil {
		return ce
	}
	return ce.AddCore(e, c)
}

func (c scrubCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.s.str(e.Message)
	e.Stack = c.s.str(e.Stack)
	return c.Core.Write(e, c.fields(fields))
}

func (c scrubCore) fields(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		out[i] = c.field(f)
	}
	return out
}

func (c scrubCore) field(f zapcore.Field) zapcore.Field {
	switch f.Type {
	case zapcore.StringType:
		f.String = c.s.str(f.String)
		return f
	case zapcore.ErrorType:
		if err, ok := f.Interface.(error); ok && err != nil {
			return zap.String(f.Key, c.s.str(err.Error()))
		}
		return f
	case zapcore.StringerType:
		return zap.String(f.Key, c.s.str(fmt.Sprint(f.Interface)))
	case zapcore.ByteStringType, zapcore.BinaryType:
		if b, ok := f.Interface.([]byte); ok {
			return zap.String(f.Key, c.s.str(string(b)))
		}
		return f
	case zapcore.BoolType, zapcore.DurationType, zapcore.Float64Type, zapcore.Float32Type,
		zapcore.Int64Type, zapcore.Int32Type, zapcore.Int16Type, zapcore.Int8Type,
		zapcore.Uint64Type, zapcore.Uint32Type, zapcore.Uint16Type, zapcore.Uint8Type, zapcore.UintptrType,
		zapcore.TimeType, zapcore.TimeFullType, zapcore.SkipType, zapcore.NamespaceType:
		return f
	}
	// Objects, arrays, reflected values, namespaces: render and scrub.
	enc := zapcore.NewMapObjectEncoder()
	f.AddTo(enc)
	v, ok := enc.Fields[f.Key]
	if !ok {
		return f
	}
	text := fmt.Sprint(v)
	if clean := c.s.str(text); clean != text {
		return zap.String(f.Key, clean)
	}
	return f
}
