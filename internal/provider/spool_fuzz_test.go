package provider

import (
	"bytes"
	"testing"
)

// FuzzSpoolRecord decodes any bytes as a spool record: no panic, a record
// is never longer than its input, and what decodes encodes back to the same
// bytes (the checksum covers every field).
func FuzzSpoolRecord(f *testing.F) {
	payload, _ := sizer.MarshalMetrics(gauges("fuzz", 0, 3))
	f.Add(appendDataRecord(nil, 7, kindNormal, 3, payload))
	f.Add(appendDataRecord(nil, 1, kindFailover, 0, nil))
	f.Add(appendAckRecord(nil, 42))
	f.Add(appendAckRecord(nil, 42)[:11])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeSpoolRecord(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with length %d", err, n)
			}
			return
		}
		if n > len(b) || n < frameHeader+ackBody {
			t.Fatalf("record length %d of %d input bytes", n, len(b))
		}
		var again []byte
		switch rec.typ {
		case recData:
			again = appendDataRecord(nil, rec.seq, rec.kind, rec.points, rec.payload)
		case recAck:
			again = appendAckRecord(nil, rec.seq)
		default:
			t.Fatalf("record type %d decoded", rec.typ)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded record differs:\n%x\n%x", again, b[:n])
		}
	})
}
