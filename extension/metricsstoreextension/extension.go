package metricsstoreextension

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/internal/sharedstore"
	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/metricsmodule/metricsmodule/internal/stream"
	"github.com/metricsmodule/metricsmodule/internal/stream/natslog"
)

// storeExtension opens the store and the stream hub on Start and closes them
// on Shutdown (extensions start before and stop after every pipeline).
type storeExtension struct {
	cfg      *Config
	settings extension.Settings

	mu      sync.RWMutex
	sink    *datapath.Sink
	tel     metric.Registration
	cluster *natslog.Log // stream.cluster on
}

var _ datapath.Provider = (*storeExtension)(nil)

func newExtension(cfg *Config, set extension.Settings) *storeExtension {
	return &storeExtension{cfg: cfg, settings: set}
}

// Start opens the store (replaying its WAL) and starts the stream hub; in
// cluster mode (stream.cluster.nats.url) it connects the hub to the
// JetStream stream, in the background: an unreachable NATS degrades the
// streams (reported as a recoverable error) but does not fail the start.
func (e *storeExtension) Start(_ context.Context, host component.Host) error {
	st, err := store.Open(e.cfg.Store, e.settings.Logger.Named("store"))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var opts []stream.Option
	var cluster *natslog.Log
	if e.cfg.Stream.Cluster.Enabled() {
		cluster, err = natslog.Open(e.cfg.Stream.Cluster, e.settings.Logger.Named("stream.cluster"), func(s stream.ClusterStatus) {
			if s.Healthy {
				componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
			} else {
				componentstatus.ReportStatus(host, componentstatus.NewRecoverableErrorEvent(errors.New("stream cluster log: "+s.Message)))
			}
		})
		if err != nil {
			return errors.Join(fmt.Errorf("stream.cluster: %w", err), st.Close())
		}
		opts = append(opts, stream.WithCluster(cluster))
	}
	closeCluster := func() {
		if cluster != nil {
			cluster.Close(context.Background())
		}
	}
	hub, err := stream.NewHub(e.cfg.Stream, e.settings.Logger.Named("stream"), opts...)
	if err != nil {
		closeCluster()
		return errors.Join(fmt.Errorf("stream: %w", err), st.Close())
	}
	if err := hub.Start(); err != nil {
		closeCluster()
		return errors.Join(fmt.Errorf("start stream hub: %w", err), st.Close())
	}
	sink := datapath.NewSink(st, hub)
	if e.cfg.Shared.HasValue() {
		w, err := sharedstore.NewWriter(*e.cfg.Shared.Get(), e.settings.Logger.Named("shared"))
		if err != nil {
			hub.Close()
			closeCluster()
			return errors.Join(fmt.Errorf("shared: %w", err), st.Close())
		}
		sink.SetShared(w)
		e.settings.Logger.Info("Shared store: batches are written to the backend before they are acknowledged",
			zap.String("write_endpoint", w.Config().WriteEndpoint), zap.String("query_endpoint", w.Config().QueryEndpoint),
			zap.String("instance", w.Config().Instance))
	}
	e.mu.Lock()
	e.sink = sink
	e.cluster = cluster
	e.mu.Unlock()
	if reg, err := e.registerTelemetry(e.settings.MeterProvider); err != nil {
		e.settings.Logger.Warn("Store telemetry is off: its instruments could not be created", zap.Error(err))
	} else {
		e.tel = reg
	}
	return nil
}

// ClusterStatus returns the state of the link to the stream's cluster log;
// false when cluster mode is off or the extension is not started.
func (e *storeExtension) ClusterStatus() (stream.ClusterStatus, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.cluster == nil {
		return stream.ClusterStatus{}, false
	}
	return e.cluster.Status(), true
}

// Sink returns the store and hub; nil before Start and after Shutdown.
func (e *storeExtension) Sink() *datapath.Sink {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.sink
}

// Shutdown ends every stream and closes the store. It is safe without Start
// and idempotent.
func (e *storeExtension) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	sink, tel, cluster := e.sink, e.tel, e.cluster
	e.sink, e.tel, e.cluster = nil, nil, nil
	e.mu.Unlock()
	if tel != nil {
		_ = tel.Unregister()
	}
	if sink == nil {
		return nil
	}
	sink.Hub().Close()
	if cluster != nil {
		cluster.Close(ctx) // publishes what is buffered while ctx lasts
	}
	if err := sink.Store().Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
