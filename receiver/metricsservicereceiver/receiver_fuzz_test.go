package metricsservicereceiver

import (
	"testing"
)

// FuzzPageToken decodes any page token without panic, and decodes what it
// encodes to the same position.
func FuzzPageToken(f *testing.F) {
	f.Add(`{__name__="orders_total", shop="eu"}`, encodePageToken(`{__name__="a"}`))
	f.Add("", "")
	f.Add("\xff", "djE6")
	f.Add("x", "not base64!")
	f.Fuzz(func(t *testing.T, after, token string) {
		got, err := decodePageToken(encodePageToken(after))
		if err != nil || got != after {
			t.Fatalf("round trip of %q: %q, %v", after, got, err)
		}
		_, _ = decodePageToken(token)
	})
}
