package authz

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

// loadYAML merges the YAML documents, as the collector merges config files.
func loadYAML(t *testing.T, docs ...string) map[string]any {
	t.Helper()
	merged := confmap.New()
	for i, doc := range docs {
		file := filepath.Join(t.TempDir(), fmt.Sprintf("config%d.yaml", i))
		require.NoError(t, os.WriteFile(file, []byte(doc), 0o600))
		conf, err := confmaptest.LoadConf(file)
		require.NoError(t, err)
		require.NoError(t, merged.Merge(conf))
	}
	return merged.ToStringMap()
}

const authExtensions = `
extensions:
  basicauth/server:
    htpasswd: {inline: "alice:secret"}
  basicauth/client:
    client_auth: {username: alice, password: secret}
  bearertokenauth:
    token: t1
  health_check:
  file_storage:
service:
  extensions: [basicauth/server, basicauth/client, bearertokenauth, health_check]
`

func TestCheckAuthenticators(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{name: "no auth", doc: `receivers: {metrics_service: {endpoint: "localhost:1"}}`},
		{name: "basicauth server on receiver", doc: `
receivers:
  metrics_service:
    auth: {authenticator: basicauth/server}
    prometheus_api:
      auth: {authenticator: bearertokenauth}
  otlp:
    protocols:
      grpc: {auth: {authenticator: bearertokenauth}}
extensions:
  metrics_management:
    auth: {authenticator: basicauth/server}
exporters:
  otlp_grpc:
    auth: {authenticator: basicauth/client}
`},
		{name: "unknown id", doc: `
receivers:
  metrics_service:
    prometheus_api:
      auth: {authenticator: basicauth/nope}
`, wantErr: `receivers::metrics_service::prometheus_api::auth::authenticator: authenticator "basicauth/nope" is not configured under extensions; add a server authenticator (basicauth with htpasswd, or bearertokenauth) there and to service::extensions`},
		{name: "client-only basicauth on a server", doc: `
extensions:
  metrics_management:
    auth: {authenticator: basicauth/client}
`, wantErr: `extensions::metrics_management::auth::authenticator: extension "basicauth/client" is a client-only authenticator (basicauth with client_auth); a server needs basicauth with htpasswd (file or inline)`},
		{name: "server-only basicauth on an exporter", doc: `
exporters:
  otlp_grpc:
    auth: {authenticator: basicauth/server}
`, wantErr: `exporters::otlp_grpc::auth::authenticator: extension "basicauth/server" is a server-only authenticator`},
		{name: "server authenticator on the prometheus exporter", doc: `
exporters:
  prometheus/scrape:
    auth: {authenticator: basicauth/server}
`},
		{name: "client authenticator on the prometheus exporter", doc: `
exporters:
  prometheus:
    auth: {authenticator: basicauth/client}
`, wantErr: `exporters::prometheus::auth::authenticator: extension "basicauth/client" is a client-only authenticator`},
		{name: "not an authenticator", doc: `
receivers:
  metrics_service:
    auth: {authenticator: health_check}
`, wantErr: `extension "health_check" (type health_check) is not an authenticator; use a server authenticator (basicauth with htpasswd, or bearertokenauth)`},
		{name: "configured but not enabled", doc: `
receivers:
  metrics_service:
    auth: {authenticator: file_storage}
`, wantErr: `authenticator "file_storage" is not enabled; add it to service::extensions`},
		{name: "bad id", doc: `
receivers:
  metrics_service:
    auth: {authenticator: "1st/x"}
`, wantErr: `"1st/x" is not an extension ID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAuthenticators(loadYAML(t, authExtensions, tt.doc))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
