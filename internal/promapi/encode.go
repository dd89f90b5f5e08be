package promapi

import (
	"encoding/json"
	"strconv"

	"github.com/prometheus/prometheus/promql"
)

// appendResult appends a vector or matrix in the JSON of the Prometheus API
// without reflection (a large range answer encodes several times faster
// than with encoding/json); other values use encoding/json.
func appendResult(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case promql.Matrix:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendMetric(b, s.Metric); err != nil {
				return nil, err
			}
			if len(s.Floats) > 0 {
				b = append(b, `,"values":[`...)
				for j, p := range s.Floats {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendPoint(b, p.T, p.F)
				}
				b = append(b, ']')
			}
			if len(s.Histograms) > 0 {
				h, err := json.Marshal(s.Histograms)
				if err != nil {
					return nil, err
				}
				b = append(b, `,"histograms":`...)
				b = append(b, h...)
			}
			b = append(b, '}')
		}
		return append(b, ']'), nil
	case promql.Vector:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendMetric(b, s.Metric); err != nil {
				return nil, err
			}
			if s.H != nil {
				h, err := json.Marshal(promql.HPoint{T: s.T, H: s.H})
				if err != nil {
					return nil, err
				}
				b = append(b, `,"histogram":`...)
				b = append(b, h...)
			} else {
				b = append(b, `,"value":`...)
				b = appendPoint(b, s.T, s.F)
			}
			b = append(b, '}')
		}
		return append(b, ']'), nil
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(b, raw...), nil
	}
}

func appendMetric(b []byte, m any) ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	b = append(b, `{"metric":`...)
	return append(b, raw...), nil
}

// appendPoint writes [seconds, "value"] as Prometheus does.
func appendPoint(b []byte, t int64, f float64) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, float64(t)/1000, 'f', -1, 64)
	b = append(b, ',', '"')
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	return append(b, '"', ']')
}

// rawResult carries pre-encoded JSON through encoding/json.
type rawResult []byte

func (r rawResult) MarshalJSON() ([]byte, error) { return r, nil }
