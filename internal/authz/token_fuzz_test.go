package authz

import (
	"strings"
	"testing"
)

// FuzzParseTokenFile: no panic; every parsed token and principal is a
// whitespace-free field of the input.
func FuzzParseTokenFile(f *testing.F) {
	f.Add([]byte("reader-token reader\ningester-token ingester\n"))
	f.Add([]byte("t a\nt b\n"))
	f.Add([]byte("\n\n  x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseTokenFile(data)
		if err != nil {
			return
		}
		for tok, p := range m {
			if tok == "" || p == "" || strings.ContainsAny(tok+p, " \t\n") || !strings.Contains(string(data), tok) {
				t.Fatalf("token %q principal %q from %q", tok, p, data)
			}
		}
	})
}
