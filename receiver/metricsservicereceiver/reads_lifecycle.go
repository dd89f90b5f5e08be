package metricsservicereceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/prometheus/prometheus/storage"

	"github.com/metricsmodule/metricsmodule/internal/promapi"
	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

// storeTap stages every batch in the embedded store.
type storeTap struct{ s *store.Store }

func (t storeTap) Stage(ctx context.Context, md pmetric.Metrics) (Staged, error) {
	return t.s.Stage(ctx, md)
}

// startReads opens the store, the query engine and the Prometheus API, as
// configured.
func (r *metricsReceiver) startReads(ctx context.Context, host component.Host) error {
	if r.cfg.Store.HasValue() {
		st, err := store.Open(*r.cfg.Store.Get(), r.settings.Logger.Named("store"))
		if err != nil {
			return err
		}
		r.store = st
		r.taps = append(r.taps, storeTap{s: st})
	}
	if r.store == nil && r.cfg.Query.Remote.Endpoint == "" {
		return nil
	}
	q := r.queryable()
	eng, err := query.New(r.cfg.Query, q, r.settings.Logger.Named("query"))
	if err != nil {
		return fmt.Errorf("create query engine: %w", err)
	}
	r.engine = eng
	if r.store != nil {
		// late samples (older than the cache's freshness limit) drop the
		// cached steps they may change
		r.store.OnLateSamples(eng.FreshnessLimit(), eng.InvalidateFrom)
	}
	if !r.cfg.PrometheusAPI.HasValue() {
		return nil
	}
	hcfg := r.cfg.PrometheusAPI.Get()
	h, err := promapi.Handler(eng, r.store, r.cfg.Query.Remote.Endpoint, func() promapi.LabelIndex {
		if reg := r.registry; reg != nil {
			return reg
		}
		return nil
	})
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

// stopReads stops the API server and closes the store.
func (r *metricsReceiver) stopReads(ctx context.Context) error {
	return errors.Join(r.stopHTTP(ctx), r.closeStore())
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

func (r *metricsReceiver) closeStore() error {
	if r.store == nil {
		return nil
	}
	return r.store.Close()
}
