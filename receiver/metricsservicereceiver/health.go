package metricsservicereceiver

import (
	"strings"
	"sync/atomic"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// refusalHold is how long the health service reports NOT_SERVING after the
// pipeline refused data for lack of memory: load balancers and probes then
// send writes elsewhere until the pressure is gone. Each refusal extends it.
const refusalHold = 2 * time.Second

// ingestHealth reports NOT_SERVING while the pipeline refuses data for lack
// of memory (the memory limiter), SERVING otherwise.
type ingestHealth struct {
	until   atomic.Int64 // unix ns until which ingest counts as refused
	serving atomic.Bool
	now     func() time.Time
}

// noteRefusal records a pipeline refusal; only memory refusals count.
func (h *ingestHealth) noteRefusal(err error) {
	if err != nil && strings.Contains(err.Error(), memoryLimiterRefusal) {
		h.until.Store(h.now().Add(refusalHold).UnixNano())
	}
}

// refusing reports whether ingest is being refused now.
func (h *ingestHealth) refusing() bool { return h.now().UnixNano() < h.until.Load() }

// healthLoop keeps the gRPC health status of MetricsService in step with
// ingest refusals until the receiver stops.
func (r *metricsReceiver) healthLoop() {
	t := time.NewTicker(refusalHold / 8)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.syncHealth()
		}
	}
}

// syncHealth sets the health status from the refusal state, on changes.
func (r *metricsReceiver) syncHealth() {
	serving := !r.in.health.refusing()
	if r.in.health.serving.Swap(serving) == serving {
		return
	}
	st := healthpb.HealthCheckResponse_SERVING
	if !serving {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		r.settings.Logger.Warn("Ingest is refused for lack of memory (memory_limiter): health reports NOT_SERVING until it accepts data again")
	} else {
		r.settings.Logger.Info("Ingest accepted again: health reports SERVING")
	}
	r.health.SetServingStatus(pb.MetricsService_ServiceDesc.ServiceName, st)
	r.health.SetServingStatus("", st)
}
