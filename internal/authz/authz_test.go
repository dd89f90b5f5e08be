package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig() *Config {
	return &Config{
		Roles: map[string][]Family{
			"ingest-only": {FamilyIngest},
			"read-only":   {FamilyRead, FamilyStream},
			"curator":     {FamilyDefinitions},
			"admin":       {FamilyAll},
		},
		Principals: map[string][]string{
			"ingester": {"ingest-only"},
			"reader":   {"read-only"},
			"editor":   {"read-only", "curator"},
			"admin":    {"admin"},
		},
		Anonymous: []string{"ingest-only"},
	}
}

func TestAllowByPrincipalAndFamily(t *testing.T) {
	a, err := New(testConfig())
	require.NoError(t, err)
	allowed := map[string][]Family{
		"ingester": {FamilyIngest},
		"reader":   {FamilyRead, FamilyStream},
		"editor":   {FamilyRead, FamilyStream, FamilyDefinitions},
		"admin":    Families,
		"":         {FamilyIngest}, // anonymous
		"stranger": {FamilyIngest}, // authenticated, no roles: anonymous roles
	}
	for principal, fams := range allowed {
		for _, f := range Families {
			want := false
			for _, g := range fams {
				want = want || g == f
			}
			err := a.Allow(principal, "/svc/M", f)
			if want {
				assert.NoError(t, err, "%q %s", principal, f)
				continue
			}
			var denied *DeniedError
			require.ErrorAs(t, err, &denied, "%q %s", principal, f)
			assert.Equal(t, principal, denied.Principal)
			assert.Equal(t, f, denied.Family)
		}
	}
}

func TestDeniedMessageNamesPrincipalFamilyAndRoles(t *testing.T) {
	a, err := New(testConfig())
	require.NoError(t, err)
	err = a.Allow("ingester", "/metricsmodule.v1.MetricsService/QueryMetrics", FamilyRead)
	require.Error(t, err)
	assert.Equal(t, `permission denied: principal "ingester" may not call /metricsmodule.v1.MetricsService/QueryMetrics (method family "read"): roles that allow it: admin, read-only; grant one under authorization.principals.ingester`, err.Error())

	err = a.Allow("", "/x/UnregisterMetric", FamilyDestructive)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "anonymous caller may not call /x/UnregisterMetric")
	assert.Contains(t, err.Error(), "roles that allow it: admin")
	assert.Contains(t, err.Error(), "authorization.anonymous")

	cfg := testConfig()
	delete(cfg.Roles, "admin")
	delete(cfg.Principals, "admin")
	a, err = New(cfg)
	require.NoError(t, err)
	assert.Contains(t, a.Allow("reader", "/m", FamilyManagement).Error(), "no role allows it")
}

func TestNilAuthorizerAllowsEverything(t *testing.T) {
	var a *Authorizer
	for _, f := range Families {
		assert.NoError(t, a.Allow("", "/m", f))
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	a.HTTPMiddleware(FamilyRead, h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/query", http.NoBody))
	assert.Equal(t, http.StatusTeapot, rec.Code)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "unknown family", mutate: func(c *Config) { c.Roles["x"] = []Family{"delete"} }, wantErr: `roles.x: unknown family "delete"; use ingest, read, stream, definitions, destructive, management, all`},
		{name: "empty role", mutate: func(c *Config) { c.Roles["x"] = nil }, wantErr: "roles.x: lists no family"},
		{name: "undefined role of principal", mutate: func(c *Config) { c.Principals["bob"] = []string{"boss"} }, wantErr: `principals.bob: role "boss" is not defined under roles`},
		{name: "undefined anonymous role", mutate: func(c *Config) { c.Anonymous = []string{"guest"} }, wantErr: `anonymous: role "guest" is not defined under roles`},
		{name: "empty token", mutate: func(c *Config) { c.Tokens = map[string]configopaque.String{"reader": ""} }, wantErr: "tokens.reader: empty token"},
		{name: "token of principal without roles", mutate: func(c *Config) { c.Tokens = map[string]configopaque.String{"ghost": "t1"} }, wantErr: "tokens.ghost: principal has no roles"},
		{name: "shared token", mutate: func(c *Config) {
			c.Tokens = map[string]configopaque.String{"admin": "t1", "reader": "t1"}
		}, wantErr: "tokens.reader: same token as tokens.admin"},
		{name: "token with space", mutate: func(c *Config) { c.Tokens = map[string]configopaque.String{"reader": "a b"} }, wantErr: "tokens.reader: a token has no white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			_, err = New(cfg)
			require.ErrorContains(t, err, "authorization: "+tt.wantErr)
		})
	}
}

type authData map[string]any

func (d authData) GetAttribute(k string) any { return d[k] }
func (d authData) GetAttributeNames() []string {
	var names []string
	for k := range d {
		names = append(names, k)
	}
	return names
}

func TestPrincipal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(file, []byte("file-token-1 reader\n\nfile-token-2 admin extra\nunnamed-token\n"), 0o600))
	cfg := testConfig()
	cfg.Tokens = map[string]configopaque.String{"ingester": "inline-token"}
	cfg.TokenFile = file
	a, err := New(cfg)
	require.NoError(t, err)

	withAuth := func(d client.AuthData) context.Context {
		return client.NewContext(context.Background(), client.Info{Auth: d})
	}
	tests := []struct {
		name   string
		ctx    context.Context
		header []string
		want   string
	}{
		{name: "basicauth username", ctx: withAuth(authData{"username": "alice", "raw": "x"}), want: "alice"},
		{name: "oidc subject", ctx: withAuth(authData{"subject": "svc-1"}), want: "svc-1"},
		{name: "username wins over token", ctx: withAuth(authData{"username": "alice"}), header: []string{"Bearer inline-token"}, want: "alice"},
		{name: "inline token with scheme", ctx: context.Background(), header: []string{"Bearer inline-token"}, want: "ingester"},
		{name: "inline token without scheme", ctx: context.Background(), header: []string{"inline-token"}, want: "ingester"},
		{name: "file token", ctx: context.Background(), header: []string{"Bearer file-token-2"}, want: "admin"},
		{name: "unnamed token", ctx: context.Background(), header: []string{"Bearer unnamed-token"}, want: ""},
		{name: "unknown token", ctx: context.Background(), header: []string{"Bearer nope"}, want: ""},
		{name: "no credentials", ctx: context.Background(), want: ""},
		{name: "non-string attribute", ctx: withAuth(authData{"username": 42}), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, a.Principal(tt.ctx, tt.header))
		})
	}
}

func TestTokenFileIsReadAgainWhenItChanges(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte("t1 reader\n"), 0o600))
	cfg := testConfig()
	cfg.TokenFile = file
	a, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, "reader", a.Principal(context.Background(), []string{"Bearer t1"}))
	assert.Empty(t, a.Principal(context.Background(), []string{"Bearer t2"}))

	require.NoError(t, os.WriteFile(file, []byte("t1 reader\nt2 admin\n"), 0o600))
	// make the change visible even on file systems with coarse mtimes
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(file, st.ModTime(), st.ModTime().Add(1e9)))
	assert.Equal(t, "admin", a.Principal(context.Background(), []string{"Bearer t2"}))
}

func TestTokenFileErrors(t *testing.T) {
	cfg := testConfig()
	cfg.TokenFile = filepath.Join(t.TempDir(), "missing")
	_, err := New(cfg)
	require.ErrorContains(t, err, "authorization.token_file")

	_, err = ParseTokenFile([]byte("t1 reader\nt1 admin\n"))
	require.ErrorContains(t, err, `line 2: token already names principal "reader"`)
}

func TestHTTPMiddleware(t *testing.T) {
	cfg := testConfig()
	cfg.Tokens = map[string]configopaque.String{"reader": "r-token", "ingester": "i-token"}
	a, err := New(cfg)
	require.NoError(t, err)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := a.HTTPMiddleware(FamilyRead, next)

	for _, tt := range []struct {
		token    string
		wantCode int
	}{{"r-token", http.StatusOK}, {"i-token", http.StatusForbidden}, {"", http.StatusForbidden}} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/query?query=up", http.NoBody)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, tt.wantCode, rec.Code, tt.token)
		if tt.wantCode == http.StatusForbidden {
			assert.Contains(t, rec.Body.String(), `"errorType":"forbidden"`)
			assert.Contains(t, rec.Body.String(), `method family \"read\"`)
		}
	}
}

func TestGRPCInterceptors(t *testing.T) {
	a, err := New(testConfig())
	require.NoError(t, err)
	classify := func(method string, req any) (Family, bool) {
		switch method {
		case "/svc/Health":
			return "", false
		case "/svc/Unregister":
			if req == "delete" {
				return FamilyDestructive, true
			}
			return FamilyDefinitions, true
		}
		return FamilyRead, true
	}
	unary := a.UnaryServerInterceptor(classify)
	handler := func(context.Context, any) (any, error) { return "done", nil }
	call := func(principal, method string, req any) error {
		ctx := context.Background()
		if principal != "" {
			ctx = client.NewContext(ctx, client.Info{Auth: authData{"username": principal}})
		}
		_, err := unary(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, handler)
		return err
	}
	assert.NoError(t, call("", "/svc/Health", nil))
	assert.NoError(t, call("reader", "/svc/Query", nil))
	assert.NoError(t, call("editor", "/svc/Unregister", "keep"))
	err = call("editor", "/svc/Unregister", "delete")
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), `principal "editor"`)
	assert.NoError(t, call("admin", "/svc/Unregister", "delete"))

	stream := a.StreamServerInterceptor(classify)
	streamHandler := func(any, grpc.ServerStream) error { return nil }
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs())
	err = stream(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/svc/Stream"}, streamHandler)
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	ctx = client.NewContext(ctx, client.Info{Auth: authData{"username": "reader"}})
	assert.NoError(t, stream(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/svc/Stream"}, streamHandler))
}

func TestGRPCStatus(t *testing.T) {
	assert.NoError(t, GRPCStatus(nil))
	assert.Equal(t, codes.Internal, status.Code(GRPCStatus(errors.New("boom"))))
	assert.True(t, strings.HasPrefix(status.Convert(GRPCStatus(&DeniedError{Principal: "p", Method: "/m", Family: FamilyRead})).Message(), "permission denied"))
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }
