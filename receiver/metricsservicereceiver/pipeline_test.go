package metricsservicereceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/test/storepipeline"
)

// storePipeline builds what a collector builds around the receiver: a
// started metrics_store extension with its store in dir (mutate adjusts its
// config) and the metrics_store processor in front of next. The receiver
// gets the returned consumer and host. The pipeline stops at the end of the
// test.
func storePipeline(t testing.TB, dir string, mutate func(*metricsstoreextension.Config), next consumer.Metrics) (consumer.Metrics, component.Host) {
	t.Helper()
	p, host, _ := storePipelineStop(t, dir, mutate, next)
	return p, host
}

// storePipelineStop is storePipeline that also returns an idempotent stop,
// for a restart within one test.
func storePipelineStop(t testing.TB, dir string, mutate func(*metricsstoreextension.Config), next consumer.Metrics) (consumer.Metrics, component.Host, func()) {
	t.Helper()
	p, err := storepipeline.Start(context.Background(), dir, mutate, next)
	require.NoError(t, err)
	stop := func() { require.NoError(t, p.Stop(context.Background())) }
	t.Cleanup(stop)
	return p.Next, p.Host, stop
}
