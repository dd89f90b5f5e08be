package prometheusremotewritereceiver

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// FuzzTranslate decodes arbitrary bodies as remote-write 1.0 and 2.0
// requests and translates what decodes: no panic, and a translated request
// counts no more points than it holds.
func FuzzTranslate(f *testing.F) {
	if raw, err := v1Request().Marshal(); err == nil {
		f.Add(raw)
	}
	if raw, err := v2Request().Marshal(); err == nil {
		f.Add(raw)
	}
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v1 prompb.WriteRequest
		if v1.Unmarshal(raw) == nil {
			if md, c, err := fromV1(&v1); err == nil && md.DataPointCount() > c.total()+len(v1.Timeseries) {
				t.Fatalf("v1: %d points from %d counted", md.DataPointCount(), c.total())
			}
		}
		var v2 writev2.Request
		if v2.Unmarshal(raw) == nil {
			_, _, _ = fromV2(&v2)
		}
	})
}
