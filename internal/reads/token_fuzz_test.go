package reads

import "testing"

// FuzzPageToken decodes any page token without panic, refuses what it
// cannot read with an *Error, and decodes what it encodes to the same
// cursor and count.
func FuzzPageToken(f *testing.F) {
	f.Add("orders_total\xffshop\xfeeu", int64(200000), encodePageToken(3, "a"))
	f.Add("", int64(0), "")
	f.Add("x:y", int64(7), "djI6LTE6eA") // v2:-1:x
	f.Add("\xff", int64(1), "not base64!")
	f.Fuzz(func(t *testing.T, after string, total int64, tok string) {
		if total >= 0 {
			gotAfter, gotTotal, err := decodePageToken(encodePageToken(total, after))
			if err != nil || gotAfter != after || gotTotal != total {
				t.Fatalf("round trip of (%q, %d): (%q, %d), %v", after, total, gotAfter, gotTotal, err)
			}
		}
		if _, _, err := decodePageToken(tok); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("token %q: refusal %T is not a *reads.Error", tok, err)
			}
		}
	})
}
