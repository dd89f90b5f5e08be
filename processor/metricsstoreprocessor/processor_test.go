package metricsstoreprocessor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/internal/datapath"
)

type host struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// start runs a metrics_store extension and the processor in front of next.
func start(t *testing.T, next consumer.Metrics) (*storeProcessor, *datapath.Sink) {
	t.Helper()
	return startWith(t, next, nil)
}

// startWith is start with mutate adjusting the extension's config.
func startWith(t *testing.T, next consumer.Metrics, mutate func(*metricsstoreextension.Config)) (*storeProcessor, *datapath.Sink) {
	t.Helper()
	ef := metricsstoreextension.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*metricsstoreextension.Config)
	ecfg.Store.Path = t.TempDir()
	if mutate != nil {
		mutate(ecfg)
	}
	ext, err := ef.Create(context.Background(), extension.Settings{ID: defaultExtension, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, ecfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	f := NewFactory()
	p, err := f.CreateMetrics(context.Background(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{defaultExtension: ext}}))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p.(*storeProcessor), ext.(datapath.Provider).Sink()
}

func gauge(name string, v float64, ts time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr("host", "a")
	return md
}

// stored returns the number of samples of name in the store.
func stored(t *testing.T, s *datapath.Sink, name string) int {
	t.Helper()
	q, err := s.Store().Queryable().Querier(0, time.Now().Add(time.Hour).UnixMilli())
	require.NoError(t, err)
	defer q.Close()
	n := 0
	set := q.Select(context.Background(), false, nil, mustEqual(name))
	for set.Next() {
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			n++
		}
	}
	require.NoError(t, set.Err())
	return n
}

func TestAcceptedBatchIsStoredAndPassedOn(t *testing.T) {
	sink := &consumertest.MetricsSink{}
	p, s := start(t, sink)
	require.NoError(t, p.ConsumeMetrics(context.Background(), gauge("queue_depth", 3, time.Now())))
	assert.Equal(t, 1, sink.DataPointCount())
	assert.Equal(t, 1, stored(t, s, "queue_depth"), "readable as soon as ConsumeMetrics returned")
}

func TestRefusedBatchLeavesNothingInTheStore(t *testing.T) {
	p, s := start(t, consumertest.NewErr(errors.New("exporter queue full")))
	err := p.ConsumeMetrics(context.Background(), gauge("queue_depth", 3, time.Now()))
	require.ErrorContains(t, err, "exporter queue full")
	assert.Equal(t, 0, stored(t, s, "queue_depth"))
}

func TestMarksTheContextOfAStoredBatch(t *testing.T) {
	p, _ := start(t, consumertest.NewNop())
	ctx, mark := datapath.WithMark(context.Background())
	require.NoError(t, p.ConsumeMetrics(ctx, gauge("queue_depth", 3, time.Now())))
	assert.True(t, mark.Stored())
}

func TestStartNeedsTheExtension(t *testing.T) {
	f := NewFactory()
	p, err := f.CreateMetrics(context.Background(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `extension: "metrics_store" is not configured`)

	notStore := host{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{defaultExtension: nopExtension{}}}
	err = p.Start(context.Background(), notStore)
	require.ErrorContains(t, err, `extension: "metrics_store" is not a metrics_store extension`)
}

type nopExtension struct {
	component.StartFunc
	component.ShutdownFunc
}

func TestConfigNeedsAnExtension(t *testing.T) {
	cfg := &Config{}
	require.ErrorContains(t, cfg.Validate(), "extension: must name the metrics_store extension")
	require.NoError(t, createDefaultConfig().(*Config).Validate())
}
func TestBatchTheStoreWouldNotKeepIsRefusedWhole(t *testing.T) {
	sink := &consumertest.MetricsSink{}
	p, s := start(t, sink)
	md := gauge("queue_depth", 3, time.Now())
	old := gauge("queue_depth", 4, time.Now().Add(-20*24*time.Hour))
	old.ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	err := p.ConsumeMetrics(context.Background(), md)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "resending cannot help: %v", err)
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "receivers answer INVALID_ARGUMENT / HTTP 400")
	assert.Contains(t, err.Error(), "store.retention")
	assert.Zero(t, sink.DataPointCount(), "not passed on")
	assert.Zero(t, stored(t, s, "queue_depth"), "nothing of the batch is stored")
}

// TestDeltaSumIsStored: a delta sum (e.g. metrics_service with
// counter_temporality: delta) is kept as its per-interval values, not
// acknowledged and dropped.
func TestDeltaSumIsStored(t *testing.T) {
	p, s := start(t, consumertest.NewNop())
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("jobs_done")
	sum := m.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sum.SetIsMonotonic(true)
	for i, v := range []float64{3, 4} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(time.Duration(i-2) * time.Second)))
		dp.SetDoubleValue(v)
	}
	require.NoError(t, p.ConsumeMetrics(context.Background(), md))
	assert.Equal(t, 2, stored(t, s, "jobs_done_total"))
}
