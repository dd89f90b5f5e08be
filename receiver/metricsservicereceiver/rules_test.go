package metricsservicereceiver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/internal/rules"
	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/receiver/metricsservicereceiver/internal/metadata"
)

func TestStartRefusesABadRuleFileWithFileLineAndFix(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(f, []byte("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: rate(x[5m]\n"), 0o600))
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Rules.Files = []string{filepath.Join(dir, "*.yaml")}
	require.NoError(t, cfg.Validate())
	next, host := storePipeline(t, t.TempDir(), nil, &switchSink{})
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	err = r.Start(context.Background(), host)
	require.NoError(t, r.Shutdown(context.Background()))
	var fe *rules.FileError
	require.ErrorAs(t, err, &fe)
	assert.ErrorContains(t, err, "rules.files: "+f+": 5:15")
	assert.ErrorContains(t, err, "promtool check rules "+f)
}

func TestRulesNeedTheStore(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("groups: []\n"), 0o600))
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Rules.Files = []string{filepath.Join(dir, "r.yaml")}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), &switchSink{})
	require.NoError(t, err)
	r.store, r.sink = nil, nil
	err = r.startRules()
	require.ErrorContains(t, err, "rules.files: rules need the metrics_store extension")
}

// TestRulesOnEveryNodeOfASharedStoreAreRefused: with a shared store every
// node's rule engine reads the whole fleet, so rules on every node would
// store each result once per node; the start says to elect one node.
func TestRulesOnEveryNodeOfASharedStoreAreRefused(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer backend.Close()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("groups: []\n"), 0o600))
	next, host := storePipeline(t, filepath.Join(dir, "tsdb"), func(c *metricsstoreextension.Config) {
		sc := sharedstore.DefaultConfig()
		sc.WriteEndpoint, sc.QueryEndpoint, sc.Instance = backend.URL+"/api/v1/write", backend.URL, "node-1"
		c.Shared = configoptional.Some(sc)
	}, &switchSink{})
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Rules.Files = []string{filepath.Join(dir, "r.yaml")}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	err = r.Start(context.Background(), host)
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	require.ErrorContains(t, err, "rules.run_on: with a shared store")
	require.ErrorContains(t, err, "set rules.run_on: leader")
}
