package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"

	"github.com/prometheus/prometheus/storage"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/internal/promapi"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/reads"
)

// findSink finds the metrics_store extension: the configured one, or the
// only one of the collector.
func (r *metricsReceiver) findSink(host component.Host) error {
	var prov datapath.Provider
	if id := r.cfg.Store; id != nil {
		ext, ok := host.GetExtensions()[*id]
		if !ok {
			return fmt.Errorf("store: extension %q is not configured; add it under extensions and service.extensions", id)
		}
		if prov, ok = ext.(datapath.Provider); !ok {
			return fmt.Errorf("store: extension %q is not a metrics_store extension", id)
		}
	} else {
		var found []component.ID
		for id, ext := range host.GetExtensions() {
			if p, ok := ext.(datapath.Provider); ok {
				prov = p
				found = append(found, id)
			}
		}
		if len(found) > 1 {
			return fmt.Errorf("store: %d metrics_store extensions (%v); name the one to read from", len(found), found)
		}
	}
	if prov == nil {
		r.settings.Logger.Info("No metrics_store extension: reads and StreamMetrics are off (add the metrics_store extension and processor to keep data)")
		return nil
	}
	r.sink = prov.Sink()
	if r.sink == nil {
		return errors.New("store: the metrics_store extension has not started")
	}
	r.store, r.hub = r.sink.Store(), r.sink.Hub()
	if w := r.sink.Shared(); w != nil {
		r.node = nodeIdentity{label: w.Config().InstanceLabel, value: w.Config().Instance}
	}
	r.in.acc.SetAdmitter(storeAdmitter{st: r.store, acc: r.in.acc, now: time.Now})
	r.in.acc.SetResumer(storeResumer{st: r.store, logger: r.settings.Logger, warned: new(atomic.Bool), node: r.node, refused: newResumeRefusals()})
	return nil
}

// startReads starts the query engine and the Prometheus API, as configured.
func (r *metricsReceiver) startReads(ctx context.Context, host component.Host) error {
	qcfg := r.cfg.Query
	var readOpts []reads.Option
	if r.sink != nil && r.sink.Shared() != nil {
		// shared store: every node answers from the fleet's backend
		sc := r.sink.Shared().Config()
		if qcfg.Remote.Endpoint == "" {
			qcfg.Remote = query.RemoteConfig{Endpoint: sc.QueryEndpoint, Headers: sc.Headers}
		}
		readOpts = append(readOpts, reads.WithMergeLabel(sc.InstanceLabel), reads.WithMergeLookback(r.cfg.Aggregation.SeriesTTL))
		r.settings.Logger.Info("Reads answer from the shared store", zap.String("endpoint", qcfg.Remote.Endpoint))
	}
	if r.store == nil && qcfg.Remote.Endpoint == "" {
		if r.cfg.PrometheusAPI.HasValue() {
			r.settings.Logger.Info("Prometheus HTTP API is off: there is no metrics_store extension and no query.remote.endpoint to answer from")
		}
		return nil
	}
	q := r.queryable()
	eng, err := query.New(qcfg, q, r.settings.Logger.Named("query"))
	if err != nil {
		return fmt.Errorf("create query engine: %w", err)
	}
	if err := eng.SetMeterProvider(r.settings.MeterProvider); err != nil {
		r.settings.Logger.Warn("Query telemetry is off: its instruments could not be created", zap.Error(err))
	}
	r.engine = eng
	var st reads.Store
	if r.store != nil {
		st = r.store
	}
	r.reads = reads.New(eng, st, readOpts...)
	if r.store != nil && !eng.Remote() {
		// late samples (older than the cache's freshness limit) drop the
		// cached steps they may change
		r.store.OnLateSamples(eng.FreshnessLimit(), eng.InvalidateFrom)
	}
	if err := r.startRules(); err != nil {
		return err
	}
	if !r.cfg.PrometheusAPI.HasValue() {
		return nil
	}
	hcfg := r.cfg.PrometheusAPI.Get()
	opts := []promapi.Option{promapi.WithStatus(promapi.StatusInfo{Version: r.settings.BuildInfo.Version, Query: r.cfg.Query}), promapi.WithRemoteHeaders(qcfg.Remote.Headers)}
	if src := r.ruleSource(); src != nil {
		opts = append(opts, promapi.WithRules(src))
	}
	h, err := promapi.Handler(eng, r.store, qcfg.Remote.Endpoint, func() promapi.LabelIndex {
		if reg := r.defs.registry; reg != nil {
			return reg
		}
		return nil
	}, opts...)
	if err != nil {
		return err
	}
	if h, err = r.authorizeHTTP(h); err != nil {
		return err
	}
	srv, err := hcfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings, h)
	if err != nil {
		return fmt.Errorf("create Prometheus API server: %w", err)
	}
	ln, err := hcfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", hcfg.NetAddr.Endpoint, err)
	}
	r.httpServer, r.httpLn = srv, ln
	r.settings.Logger.Info("Starting Prometheus HTTP API", zap.String("endpoint", ln.Addr().String()))
	r.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	return nil
}

func (r *metricsReceiver) queryable() storage.Queryable {
	if r.store == nil {
		return nil
	}
	return r.store.Queryable()
}

func (r *metricsReceiver) stopHTTP(ctx context.Context) error {
	if r.httpServer == nil {
		return nil
	}
	if err := r.httpServer.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop Prometheus API: %w", err)
	}
	return nil
}
