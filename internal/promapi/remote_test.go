package promapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

// TestRemoteBackendProxiesOnlyTheReadAPI: with a remote backend (a shared
// store) the read API is proxied to it, its write and admin endpoints are
// not reachable through this server.
func TestRemoteBackendProxiesOnlyTheReadAPI(t *testing.T) {
	var got []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		w.WriteHeader(http.StatusOK)
	}))
	defer backend.Close()
	cfg := query.DefaultConfig()
	cfg.Remote.Endpoint = backend.URL
	eng, err := query.New(cfg, nil, zap.NewNop())
	require.NoError(t, err)
	h, err := Handler(eng, nil, backend.URL, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, path := range []string{"/api/v1/query?query=up", "/api/v1/series?match[]=up", "/api/v1/label/job/values", "/api/v1/status/tsdb", "/federate"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	for _, path := range []string{"/api/v1/write", "/api/v1/import/prometheus", "/api/v1/admin/tsdb/delete_series?match[]=up"} {
		resp, err := http.Post(srv.URL+path, "text/plain", strings.NewReader("x 1"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	assert.Equal(t, []string{"/api/v1/query", "/api/v1/series", "/api/v1/label/job/values", "/api/v1/status/tsdb", "/federate"}, got)
}

// TestRemoteBackendGetsTheConfiguredHeadersNotTheCallers: the proxied
// request carries query.remote.headers (a tenant, a token), which a caller
// cannot override, and never the caller's own credentials for this server.
func TestRemoteBackendGetsTheConfiguredHeadersNotTheCallers(t *testing.T) {
	var got http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusOK)
	}))
	defer backend.Close()
	h, err := Handler(nil, nil, backend.URL, nil, WithRemoteHeaders(map[string]string{"X-Scope-OrgID": "fleet", "X-Backend-Token": "b"}))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/query?query=up", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer for-this-server")
	req.Header.Set("Cookie", "session=x")
	req.Header.Set("X-Scope-OrgID", "another-tenant")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "fleet", got.Get("X-Scope-OrgID"), "the configured tenant wins")
	assert.Equal(t, "b", got.Get("X-Backend-Token"))
	assert.Empty(t, got.Get("Authorization"), "the caller's token is not forwarded")
	assert.Empty(t, got.Get("Cookie"))
	assert.NotEmpty(t, got.Get("X-Forwarded-For"))
}
