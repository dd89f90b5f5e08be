// Package storepipeline builds, outside a collector, what a collector builds
// around a receiver whose data is kept: a started metrics_store extension and
// the metrics_store processor in front of the next consumer. Tests and
// cmd/metricsbench use it to run a receiver in-process as it runs in the
// distribution.
package storepipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/processor"

	"github.com/metricsmodule/metricsmodule/extension/metricsstoreextension"
	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/processor/metricsstoreprocessor"
)

// ID is the component ID of the extension.
var ID = component.MustNewID("metrics_store")

// Pipeline is a running extension and processor.
type Pipeline struct {
	// Next is the consumer to give the receiver: the processor.
	Next consumer.Metrics
	// Host returns the extension from GetExtensions; start the receiver with it.
	Host component.Host
	// Sink is the extension's store and hub.
	Sink *datapath.Sink

	ext  extension.Extension
	proc processor.Metrics
	once sync.Once
	err  error
}

// Start starts an extension with its store in dir (mutate, if set, adjusts
// its config) and the processor in front of next.
func Start(ctx context.Context, dir string, mutate func(*metricsstoreextension.Config), next consumer.Metrics) (*Pipeline, error) {
	ef := metricsstoreextension.NewFactory()
	ecfg := ef.CreateDefaultConfig().(*metricsstoreextension.Config)
	ecfg.Store.Path = dir
	if mutate != nil {
		mutate(ecfg)
	}
	if err := ecfg.Validate(); err != nil {
		return nil, fmt.Errorf("metrics_store config: %w", err)
	}
	set := extension.Settings{ID: ID, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}
	ext, err := ef.Create(ctx, set, ecfg)
	if err != nil {
		return nil, err
	}
	if err := ext.Start(ctx, componenttest.NewNopHost()); err != nil {
		return nil, errors.Join(err, ext.Shutdown(ctx))
	}
	host := Host{Host: componenttest.NewNopHost(), Extensions: map[component.ID]component.Component{ID: ext}}
	pf := metricsstoreprocessor.NewFactory()
	pset := processor.Settings{ID: component.NewID(pf.Type()), TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}
	proc, err := pf.CreateMetrics(ctx, pset, pf.CreateDefaultConfig(), next)
	if err != nil {
		return nil, errors.Join(err, ext.Shutdown(ctx))
	}
	if err := proc.Start(ctx, host); err != nil {
		return nil, errors.Join(err, ext.Shutdown(ctx))
	}
	return &Pipeline{Next: proc, Host: host, Sink: ext.(datapath.Provider).Sink(), ext: ext, proc: proc}, nil
}

// Stop shuts down the processor and the extension (closing the store); later
// calls return the first result. Stop the receiver first.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.once.Do(func() {
		p.err = errors.Join(p.proc.Shutdown(ctx), p.ext.Shutdown(ctx))
	})
	return p.err
}

// Host is a host with the given extensions.
type Host struct {
	component.Host
	// Extensions are returned by GetExtensions.
	Extensions map[component.ID]component.Component
}

// GetExtensions returns h.Extensions.
func (h Host) GetExtensions() map[component.ID]component.Component { return h.Extensions }
