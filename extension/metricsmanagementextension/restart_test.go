package metricsmanagementextension_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Providers, their versions, states and secrets come back after the
// collector restarts; the running ones run again.
func TestRestart(t *testing.T) {
	t.Parallel()
	sink := startOTLPSink(t, "")
	dir := t.TempDir()
	ctx := context.Background()

	c := startCollector(t, dir, "", "")
	p := otlpProvider("otlp", sink.addr)
	p.GetSettings().GetOpentelemetry().Headers = map[string]string{"X-Api-Key": "s3cret"}
	_, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: p, ValidateConfig: true, AutoStart: true})
	require.NoError(t, err)
	p.Name = "second version"
	_, err = c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "otlp", Config: p})
	require.NoError(t, err)
	_, err = c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: otlpProvider("idle", sink.addr)})
	require.NoError(t, err)
	c.stop(t)

	// The registry file is readable by the owner only.
	var files int
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), path)
		files++
		return nil
	}))
	assert.Positive(t, files)

	c = startCollector(t, dir, "", "")
	list, err := c.mgmt.ListMetricsProviders(ctx, &pb.ListProvidersRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 2, list.GetTotalCount())
	byID := map[string]*pb.Provider{}
	for _, p := range list.GetProviders() {
		byID[p.GetConfig().GetProviderId()] = p
	}
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_RUNNING, byID["otlp"].GetState())
	assert.Equal(t, uint64(2), byID["otlp"].GetVersion())
	assert.Equal(t, "second version", byID["otlp"].GetConfig().GetName())
	assert.Equal(t, "[REDACTED]", byID["otlp"].GetConfig().GetSettings().GetOpentelemetry().GetHeaders()["X-Api-Key"])
	assert.Equal(t, pb.ProviderState_PROVIDER_STATE_STOPPED, byID["idle"].GetState())

	recordSpecExample(t, c, 1)
	require.Eventually(t, func() bool { _, ok := sink.value("http_requests_total", "method", "GET"); return ok },
		20*time.Second, 10*time.Millisecond, "the restored provider exports")

	// The history came back too: roll back to version 1.
	up, err := c.mgmt.UpdateMetricsProvider(ctx, &pb.UpdateProviderRequest{ProviderId: "otlp", RollbackToVersion: 1})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), up.GetProvider().GetVersion())
	assert.Empty(t, up.GetProvider().GetConfig().GetName())
}
