package metricsmanagementextension_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errNoDNS is what every DNS query of this test binary gets: the
// specification's example exports to http://pushgateway:9091, and the
// running provider's exporter (its confighttp transport) and the engine's
// loop check would otherwise ask the machine's resolver for "pushgateway".
var errNoDNS = errors.New("no DNS in tests (in-process resolver)")

// init makes every name lookup of this test binary in-process: the Go
// resolver (not the system's getaddrinfo) with a DNS transport that
// refuses, so no query leaves the process. Names in /etc/hosts
// (localhost) still resolve. net.Dialer and the package-level lookups
// without their own Resolver read net.DefaultResolver at each call; it is
// set before any test runs. The provider engine's Settings.LookupHost
// (nil in the extension) falls back to it too.
func init() {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errNoDNS
		},
	}
}

// The in-process resolver answers names that are not in /etc/hosts with
// an error and sends nothing to a DNS server.
func TestNameLookupsStayInProcess(t *testing.T) {
	t.Parallel()
	_, err := net.DefaultResolver.LookupHost(context.Background(), "pushgateway")
	require.Error(t, err)
	assert.ErrorContains(t, err, errNoDNS.Error())
	_, err = (&net.Dialer{}).DialContext(context.Background(), "tcp", "pushgateway:9091")
	require.Error(t, err)
	assert.ErrorContains(t, err, errNoDNS.Error())
}
