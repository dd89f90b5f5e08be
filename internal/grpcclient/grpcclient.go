// Package grpcclient reads what a gRPC destination answered: the code of
// an error a gRPC client call returned. It is transport, like the server
// interceptors: engines that call gRPC destinations (provider probes,
// failure reasons) ask it instead of importing grpc/codes and grpc/status.
package grpcclient

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// CodeName returns the lower-case name of the gRPC code err carries
// ("unavailable", "permission_denied"), and false when err carries no gRPC
// status or only OK or Unknown.
func CodeName(err error) (string, bool) {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK || st.Code() == codes.Unknown {
		return "", false
	}
	return snake(st.Code().String()), true
}

// Answered reports whether a call reached a gRPC server that answered it:
// true for success (nil error) and for Unimplemented (a server without the
// service called).
func Answered(err error) (ok, unimplemented bool) {
	switch status.Code(err) {
	case codes.OK:
		return true, false
	case codes.Unimplemented:
		return true, true
	}
	return false, false
}

// snake turns a code's Go name (PermissionDenied) into permission_denied.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
