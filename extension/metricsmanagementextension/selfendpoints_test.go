package metricsmanagementextension

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"

	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver"
	"github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver"
)

type receiverFactories map[component.Type]receiver.Factory

func (f receiverFactories) GetFactory(kind component.Kind, t component.Type) component.Factory {
	if kind != component.KindReceiver {
		return nil
	}
	if r, ok := f[t]; ok {
		return r
	}
	return nil
}

// The distribution's default config: every receiver endpoint, nested ones
// (the Prometheus API) included.
func TestReceiverEndpointsOfTheDefaultConfig(t *testing.T) {
	t.Parallel()
	conf, err := confmaptest.LoadConf(filepath.Join("..", "..", "testdata", "config.yaml"))
	require.NoError(t, err)
	factories := receiverFactories{}
	for _, f := range []receiver.Factory{otlpreceiver.NewFactory(), metricsservicereceiver.NewFactory(), prometheusremotewritereceiver.NewFactory()} {
		factories[f.Type()] = f
	}
	assert.Equal(t, []string{"localhost:4317", "localhost:4318", "localhost:4320", "localhost:4322", "localhost:4323"}, receiverEndpoints(conf, factories))
}

// Endpoints left to the receiver's defaults count: an empty grpc: block of
// otlp listens on localhost:4317. Without the factory, the raw config is read.
func TestReceiverEndpointsDefaults(t *testing.T) {
	t.Parallel()
	conf, err := confmaptest.LoadConf(filepath.Join("testdata", "receivers.yaml"))
	require.NoError(t, err)
	factories := receiverFactories{}
	f := otlpreceiver.NewFactory()
	factories[f.Type()] = f
	assert.Equal(t, []string{"0.0.0.0:5555", "127.0.0.1:9000", "localhost:4317"}, receiverEndpoints(conf, factories))
	assert.Equal(t, []string{"0.0.0.0:5555", "127.0.0.1:9000"}, receiverEndpoints(conf, nil))
}
