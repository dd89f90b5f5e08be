package providersexporter

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/provider"
)

// routerSource is what the metrics_management extension offers.
type routerSource interface {
	ProviderRouter() *provider.Router
}

// providersExporter hands every batch to the providers of the management
// extension.
type providersExporter struct {
	cfg    *Config
	logger *zap.Logger
	router *provider.Router
}

// start finds the management extension.
func (e *providersExporter) start(_ context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[e.cfg.Extension]
	if !ok {
		return fmt.Errorf("extension %q not found; add the metrics_management extension to the service's extensions", e.cfg.Extension)
	}
	src, ok := ext.(routerSource)
	if !ok {
		return fmt.Errorf("extension %q is not a metrics_management extension", e.cfg.Extension)
	}
	router := src.ProviderRouter()
	if sc := e.cfg.Spool.Get(); sc != nil {
		if err := router.EnableSpool(sc.engine()); err != nil {
			return err
		}
	}
	e.router = router
	e.logger.Info("Routing metrics to the dynamic providers", zap.String("extension", e.cfg.Extension.String()),
		zap.Int("providers", e.router.Routes()))
	return nil
}

func (e *providersExporter) consume(ctx context.Context, md pmetric.Metrics) error {
	return e.router.ConsumeMetrics(ctx, md)
}
