package provider

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestRedact(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "a", "type": "PROVIDER_TYPE_OPENTELEMETRY",
		"settings": {"opentelemetry": {"endpoint": "https://user:pw@collector:4318", "headers": {"X-Api-Key": "k1", "X-Tenant": "t"}}},
		"security": {"bearer_token": "tok", "basic_auth": {"username": "u", "password": "p"}}}`)
	orig := proto.Clone(pc)
	r := Redact(pc)
	assert.True(t, proto.Equal(orig, pc), "Redact does not change its input")
	js, err := protojson.Marshal(r)
	require.NoError(t, err)
	for _, secret := range []string{"k1", `"t"`, "tok", `"p"`, "pw@"} {
		assert.NotContains(t, string(js), secret)
	}
	assert.Equal(t, "u", r.GetSecurity().GetBasicAuth().GetUsername())
	assert.Equal(t, "https://REDACTED:REDACTED@collector:4318", r.GetSettings().GetOpentelemetry().GetEndpoint())

	// A redacted config sent back keeps the stored secrets.
	unredact(r, pc)
	assert.True(t, proto.Equal(pc, r))
}

func TestRedactCustom(t *testing.T) {
	pc := parseConfig(t, `{"provider_id": "a", "type": "PROVIDER_TYPE_CUSTOM",
		"settings": {"custom": {"exporter_type": "otlp_http", "config": {
			"endpoint": "http://c:4318",
			"headers": {"X-Anything": "h"},
			"auth": {"authenticator": "oauth2client"},
			"client_secret": "cs", "api_key": 42,
			"nested": {"password": "np", "list": [{"token": "lt"}], "plain": "visible"}}}}}`)
	r := Redact(pc)
	m := r.GetSettings().GetCustom().GetConfig().AsMap()
	assert.Equal(t, "http://c:4318", m["endpoint"])
	assert.Equal(t, map[string]any{"X-Anything": Redacted}, m["headers"])
	assert.Equal(t, map[string]any{"authenticator": "oauth2client"}, m["auth"], "the authenticator is an ID, not a secret")
	assert.Equal(t, Redacted, m["client_secret"])
	assert.Equal(t, Redacted, m["api_key"])
	nested := m["nested"].(map[string]any)
	assert.Equal(t, Redacted, nested["password"])
	assert.Equal(t, Redacted, nested["list"].([]any)[0].(map[string]any)["token"])
	assert.Equal(t, "visible", nested["plain"])

	unredact(r, pc)
	assert.True(t, proto.Equal(pc, r), "secrets are restored on the way back in: %v", r)
}

func TestRedactNothingToHide(t *testing.T) {
	pc := sinkProvider("a", "s")
	assert.True(t, proto.Equal(pc, Redact(pc)))
	assert.Nil(t, Redact(nil))
	assert.Equal(t, pb.ProviderType_PROVIDER_TYPE_CUSTOM, Redact(pc).GetType())
}
