package dedup

import (
	"bytes"
	"testing"
	"time"
)

// FuzzJournalDecode reads any bytes as journal records without panic, and
// reads back exactly what it wrote, followed by any garbage.
func FuzzJournalDecode(f *testing.F) {
	f.Add("req-1", uint8(1), []byte("answer"), int64(1_700_000_000_000_000_000), []byte{})
	f.Add("", uint8(0), []byte{}, int64(0), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add("k", uint8(2), []byte(nil), int64(-1), []byte{3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, key string, kind uint8, result []byte, at int64, garbage []byte) {
		_, _, _ = decodeRecords(garbage)
		r := Record{Key: key, Kind: kind, Result: result, At: time.Unix(0, at)}
		b := appendRecord(nil, r)
		if len(b) != recordSize(r) {
			t.Fatalf("recordSize %d, encoded %d bytes", recordSize(r), len(b))
		}
		recs, corrupt, torn := decodeRecords(append(b, garbage...))
		if len(recs) == 0 || corrupt > 0 && len(garbage) == 0 || torn && len(garbage) == 0 {
			t.Fatalf("record %+v not read back: %d records, %d corrupt, torn %v", r, len(recs), corrupt, torn)
		}
		got := recs[0]
		if got.Key != key || got.Kind != kind || !bytes.Equal(got.Result, result) || got.At.UnixNano() != at {
			t.Fatalf("read back %+v, wrote %+v", got, r)
		}
	})
}
