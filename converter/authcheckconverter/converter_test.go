package authcheckconverter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestConvertRefusesUnknownAuthenticatorAndChangesNothing(t *testing.T) {
	conv := NewFactory().Create(confmap.ConverterSettings{})
	good := map[string]any{
		"extensions": map[string]any{"bearertokenauth": map[string]any{"token": "t"}},
		"receivers":  map[string]any{"metrics_service": map[string]any{"auth": map[string]any{"authenticator": "bearertokenauth"}}},
		"service":    map[string]any{"extensions": []any{"bearertokenauth"}},
	}
	conf := confmap.NewFromStringMap(good)
	require.NoError(t, conv.Convert(context.Background(), conf))
	assert.Equal(t, good, conf.ToStringMap())

	bad := confmap.NewFromStringMap(map[string]any{
		"receivers": map[string]any{"metrics_service": map[string]any{"auth": map[string]any{"authenticator": "basicauth/nope"}}},
	})
	require.ErrorContains(t, conv.Convert(context.Background(), bad), `receivers::metrics_service::auth::authenticator: authenticator "basicauth/nope" is not configured under extensions`)
}
