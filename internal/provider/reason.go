package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/metricsmodule/metricsmodule/internal/grpcclient"
)

// Failure reasons of an export attempt (ProviderStats.failures_by_reason and
// the failures metric's reason attribute).
const (
	ReasonDNS               = "dns"
	ReasonConnectionRefused = "connection_refused"
	ReasonTimeout           = "timeout"
	ReasonTLS               = "tls"
	ReasonHTTP4xx           = "http_4xx"
	ReasonHTTP5xx           = "http_5xx"
	ReasonLoop              = "loop"
	ReasonOther             = "other"
)

// errLoop marks a destination that is this collector's own endpoint.
var errLoop = errors.New("export loop")

// httpStatusRE finds the HTTP status in the error texts of the exporters
// (otlp_http: "responded with HTTP Status Code 500"; remote write: "HTTP
// status 500"; pushgateway: "status 500").
var httpStatusRE = regexp.MustCompile(`(?i)\bstatus(?: code)?:? ([1-5][0-9][0-9])\b`)

// httpStatusTextRE finds a Go HTTP status line ("503 Service Unavailable").
var httpStatusTextRE = regexp.MustCompile(`\b([45][0-9][0-9]) [A-Z][a-z]+`)

// failureReason classifies an export error: the error chain first (DNS,
// refused, timeout, TLS, gRPC status), then its text, since exporters often
// flatten the cause into a string.
func failureReason(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, errLoop) {
		return ReasonLoop
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonConnectionRefused
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return ReasonTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "no such host"), strings.Contains(msg, "server misbehaving"), strings.Contains(msg, "lookup "):
		return ReasonDNS
	case strings.Contains(msg, "connection refused"):
		return ReasonConnectionRefused
	case strings.Contains(msg, "x509:"), strings.Contains(msg, "tls:"):
		return ReasonTLS
	case strings.Contains(msg, "deadline exceeded"), strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "timed out"):
		return ReasonTimeout
	}
	m := httpStatusRE.FindStringSubmatch(msg)
	if m == nil {
		m = httpStatusTextRE.FindStringSubmatch(err.Error())
	}
	if m != nil {
		switch m[1][0] {
		case '4':
			return ReasonHTTP4xx
		case '5':
			return ReasonHTTP5xx
		}
	}
	if name, ok := grpcclient.CodeName(err); ok {
		return "grpc_" + name
	}
	return ReasonOther
}
