package metricsmanagementextension

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	"github.com/metricsmodule/metricsmodule/internal/provider"
	"github.com/metricsmodule/metricsmodule/internal/utf8check"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// storageName is the name of the extension's storage client.
const storageName = "providers"

// managementExtension is the metrics_management extension: the provider
// engine and the gRPC server of MetricsManagementService in front of it.
type managementExtension struct {
	cfg      *Config
	settings extension.Settings
	engine   *provider.Engine
	// etcd is the engine's etcd config (registry_backend: etcd); its TLS
	// is loaded at Start.
	etcd *provider.EtcdConfig
	host component.Host

	client storage.Client
	server *grpc.Server
	health *health.Server
	ln     net.Listener
	wg     sync.WaitGroup

	statusSrv *http.Server
	statusLn  net.Listener

	mu           sync.Mutex
	shutdownOnce sync.Once
	shutdownErr  error
}

var (
	_ extension.Extension             = (*managementExtension)(nil)
	_ extensioncapabilities.Dependent = (*managementExtension)(nil)
)

func newExtension(cfg *Config, set extension.Settings) *managementExtension {
	x := &managementExtension{cfg: cfg, settings: set}
	if cfg.RegistryBackend == BackendEtcd {
		x.etcd = &provider.EtcdConfig{
			Endpoints: cfg.Etcd.Endpoints, Prefix: cfg.Etcd.Prefix, DialTimeout: cfg.Etcd.DialTimeout,
			RequestTimeout: cfg.Etcd.RequestTimeout, HealthInterval: cfg.Etcd.HealthInterval,
			Username: cfg.Etcd.Username, Password: string(cfg.Etcd.Password), LeaseTTL: cfg.Etcd.LeaseTTL,
		}
	}
	x.engine = provider.NewEngine(provider.Settings{
		TelemetrySettings:    set.TelemetrySettings,
		BuildInfo:            set.BuildInfo,
		MaxProviders:         cfg.Registry.MaxProviders,
		MaxVersions:          cfg.Registry.MaxVersions,
		MaxBackups:           cfg.Registry.MaxBackups,
		ShutdownDrainTimeout: cfg.ShutdownDrainTimeout,
		Policy:               cfg.DestinationPolicy.engine(),
		Etcd:                 x.etcd,
		OnRegistryHealth:     x.registryHealth,
	})
	return x
}

// registryServiceName is the gRPC health service that says whether the
// provider registry is healthy (NOT_SERVING while etcd does not answer).
const registryServiceName = "metricsmodule.v1.ProviderRegistry"

// registryHealth reports a degraded registry as the component status
// (RecoverableError) and on the gRPC health service registryServiceName.
func (x *managementExtension) registryHealth(h provider.RegistryHealth) {
	st := healthpb.HealthCheckResponse_SERVING
	ev := componentstatus.NewEvent(componentstatus.StatusOK)
	if h.Degraded {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		ev = componentstatus.NewRecoverableErrorEvent(errors.New(h.Detail))
	}
	x.mu.Lock()
	hs, host := x.health, x.host
	x.mu.Unlock()
	if hs != nil {
		hs.SetServingStatus(registryServiceName, st)
	}
	if host != nil {
		componentstatus.ReportStatus(host, ev)
	}
}

// ProviderRouter returns the routing table the providers exporter hands its
// batches to.
func (x *managementExtension) ProviderRouter() *provider.Router { return x.engine.Router() }

// Dependencies makes the collector start the storage extension and the
// authenticator first.
func (x *managementExtension) Dependencies() []component.ID {
	var deps []component.ID
	if x.cfg.Storage != nil {
		deps = append(deps, *x.cfg.Storage)
	}
	if x.cfg.Auth.HasValue() {
		deps = append(deps, x.cfg.Auth.Get().AuthenticatorID)
	}
	return deps
}

// Start opens the storage, restores and starts the providers, then serves
// MetricsManagementService.
func (x *managementExtension) Start(ctx context.Context, host component.Host) error {
	if x.etcd != nil {
		if tc := x.cfg.Etcd.TLS.Get(); tc != nil {
			t, err := tc.LoadTLSConfig(ctx)
			if err != nil {
				return fmt.Errorf("etcd.tls: %w", err)
			}
			x.etcd.TLS = t
		}
	} else if x.cfg.Storage != nil {
		client, err := storageClient(ctx, host, *x.cfg.Storage, x.settings.ID)
		if err != nil {
			return err
		}
		x.client = client
	} else {
		x.settings.Logger.Warn("No storage configured: providers are kept in memory and lost on restart")
	}
	if err := x.engine.Start(ctx, host, x.client); err != nil {
		return fmt.Errorf("restore providers: %w", err)
	}

	authzOpts, err := x.authzServerOptions()
	if err != nil {
		return err
	}
	srv, err := x.cfg.ToServer(ctx, host.GetExtensions(), x.settings.TelemetrySettings,
		append(authzOpts,
			configgrpc.WithGrpcServerOption(grpc.ForceServerCodecV2(grpccodec.Codec{})),
			configgrpc.WithGrpcServerOption(grpc.ChainUnaryInterceptor(utf8check.UnaryServerInterceptor())),
		)...)
	if err != nil {
		return fmt.Errorf("create gRPC server: %w", err)
	}
	x.server = srv
	// a malformed body is INVALID_ARGUMENT (not INTERNAL); the engine checks enums and numbers
	srv.RegisterService(grpccodec.StrictService(&pb.MetricsManagementService_ServiceDesc, false), &managementService{engine: x.engine})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus(pb.MetricsManagementService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	x.mu.Lock()
	x.health, x.host = hs, host
	x.mu.Unlock()
	x.registryHealth(x.engine.RegistryHealth())
	reflection.Register(srv)

	ln, err := x.cfg.NetAddr.Listen(ctx)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", x.cfg.NetAddr.Endpoint, err)
	}
	x.ln = ln
	if err := x.startStatusPage(ctx, host); err != nil {
		_ = ln.Close()
		return err
	}
	x.settings.Logger.Info("Starting MetricsManagementService gRPC server", zap.String("endpoint", ln.Addr().String()))
	x.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	return nil
}

// storageClient opens the extension's client of the named storage extension.
func storageClient(ctx context.Context, host component.Host, id, owner component.ID) (storage.Client, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("storage: extension %q not found; add it to the extensions of the service", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not a storage extension", id)
	}
	client, err := se.GetClient(ctx, component.KindExtension, owner, storageName)
	if err != nil {
		return nil, fmt.Errorf("storage: open a client of %q: %w", id, err)
	}
	return client, nil
}

// Shutdown stops the server (letting running calls finish until ctx ends),
// then drains and stops the providers and closes the storage. It is safe
// without Start and idempotent.
func (x *managementExtension) Shutdown(ctx context.Context) error {
	x.shutdownOnce.Do(func() {
		x.engine.Quiesce()
		if x.health != nil {
			x.health.Shutdown()
		}
		var errs []error
		if x.statusSrv != nil {
			if err := x.statusSrv.Shutdown(ctx); err != nil {
				_ = x.statusSrv.Close()
			}
		}
		if x.server != nil {
			done := make(chan struct{})
			go func() {
				x.server.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				x.server.Stop()
				<-done
			}
		}
		x.wg.Wait()
		errs = append(errs, x.engine.Shutdown(ctx))
		if x.client != nil {
			errs = append(errs, x.client.Close(ctx))
		}
		x.shutdownErr = errors.Join(errs...)
	})
	return x.shutdownErr
}

// addr returns the address the server listens on (after Start).
func (x *managementExtension) addr() string { return x.ln.Addr().String() }
