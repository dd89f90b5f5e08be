package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// refusingSink is an OTLP/gRPC destination that answers UNAVAILABLE while
// refusing is set, and otherwise counts every data point it receives by
// writer and value.
type refusingSink struct {
	pmetricotlp.UnimplementedGRPCServer
	refusing atomic.Bool
	mu       sync.Mutex
	got      map[string]map[float64]int
	points   int
}

func (s *refusingSink) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if s.refusing.Load() {
		return pmetricotlp.NewExportResponse(), status.Error(codes.Unavailable, "sink refusing (test)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rms := req.Metrics().ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				if m.Name() != "spool_probe" || m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				dps := m.Gauge().DataPoints()
				for d := range dps.Len() {
					w, _ := dps.At(d).Attributes().Get("writer")
					set := s.got[w.Str()]
					if set == nil {
						set = map[float64]int{}
						s.got[w.Str()] = set
					}
					set[dps.At(d).DoubleValue()]++
					s.points++
				}
			}
		}
	}
	return pmetricotlp.NewExportResponse(), nil
}

func (s *refusingSink) count(writer string, v float64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[writer][v]
}

func (s *refusingSink) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.points
}

func startRefusingSink(t *testing.T) (*refusingSink, string) {
	t.Helper()
	sink := &refusingSink{got: map[string]map[float64]int{}}
	sink.refusing.Store(true)
	srv := grpc.NewServer()
	pmetricotlp.RegisterGRPCServer(srv, sink)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sink, ln.Addr().String()
}

// spoolCollector is a child collector whose providers exporter spools to
// dir/spool and whose pipeline has no batch processor: a batch is in the
// provider's spool when the client gets its answer.
type spoolCollector struct {
	*collectorProc
}

func newSpoolCollector(t *testing.T, dir string) *spoolCollector {
	t.Helper()
	p := &spoolCollector{}
	p.collectorProc = newCollectorProcWith(t, dir, func(cp *collectorProc) {
		p.collectorProc = cp
		p.writeSpoolConfig()
	})
	return p
}

func (p *spoolCollector) writeSpoolConfig() {
	p.writeOverrides(fmt.Sprintf(`
exporters:
  providers:
    extension: metrics_management
    spool:
      directory: %s
      max_bytes: 268435456
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    metrics:
      processors: [memory_limiter, metrics_store]
      exporters: [providers]
`, filepath.Join(p.dir, "spool")))
}

// TestSpooledProviderLosesNoAcknowledgedPointOnKill9 writes under load to a
// collector whose provider exports to a destination that refuses
// (UNAVAILABLE), so batches pile up in the provider's spool; the destination
// then recovers while the writes go on and the collector is killed with
// SIGKILL in the middle of the drain. After the restart every acknowledged
// point reaches the destination; a point arrives twice only when its batch
// was being exported at the kill (at most one batch per export worker).
func TestSpooledProviderLosesNoAcknowledgedPointOnKill9(t *testing.T) {
	sink, sinkAddr := startRefusingSink(t)
	dir := t.TempDir()
	p := newSpoolCollector(t, dir)
	p.start()

	conn, err := grpc.NewClient(p.mgmt, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	mc := pb.NewMetricsManagementServiceClient(conn)
	ctx := context.Background()
	const workers, batchPoints = 4, 50
	_, err = mc.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{AutoStart: true, Config: &pb.ProviderConfig{
		ProviderId: "sink", Type: pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY,
		Settings: &pb.ProviderSettings{Opentelemetry: &pb.OpenTelemetrySettings{
			Endpoint: sinkAddr, Protocol: pb.OtlpProtocol_OTLP_PROTOCOL_GRPC, Timeout: durationpb.New(5 * time.Second),
		}},
		Security: &pb.SecurityConfig{Tls: &pb.TlsSettings{Insecure: true}},
		Limits:   &pb.ResourceLimits{Concurrency: workers},
		Retry: &pb.RetryPolicy{Enabled: true, InitialInterval: durationpb.New(20 * time.Millisecond),
			MaxInterval: durationpb.New(100 * time.Millisecond), MaxElapsedTime: durationpb.New(time.Hour)},
	}})
	require.NoError(t, err)

	c := p.client()
	const writers = 4
	var mu sync.Mutex
	acked := map[string][]float64{}
	nAcked := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range acked {
			n += len(v)
		}
		return n
	}
	wctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			writer := strconv.Itoa(w)
			for seq := 1; wctx.Err() == nil && seq <= 100_000; seq++ {
				var ms []*pb.MetricData
				for i := range batchPoints {
					ms = append(ms, &pb.MetricData{Name: "spool_probe", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: float64(seq*100 + i),
						Timestamp: timestamppb.New(start.Add(time.Duration(seq*batchPoints+i) * time.Millisecond)), Labels: map[string]string{"writer": writer}})
				}
				cctx, ccancel := context.WithTimeout(wctx, 5*time.Second)
				_, err := c.RecordBatchMetrics(cctx, &pb.RecordBatchMetricsRequest{Metrics: ms})
				ccancel()
				if err != nil {
					if wctx.Err() == nil {
						t.Logf("writer %s stops: %v", writer, err)
					}
					return
				}
				mu.Lock()
				for _, m := range ms {
					acked[writer] = append(acked[writer], m.Value)
				}
				mu.Unlock()
			}
		})
	}
	// the destination refuses: the batches pile up in the spool
	require.Eventually(t, func() bool { return nAcked() >= 10_000 }, 60*time.Second, 10*time.Millisecond, "acknowledged %d; collector: %s", nAcked(), p.proc.Output())
	st, err := mc.GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: "sink"})
	require.NoError(t, err)
	assert.Positive(t, st.GetStats().GetResources().GetDiskBytes(), "the spool holds the refused batches")
	assert.Greater(t, st.GetStats().GetQueueSize(), uint32(100), "batches pending in the spool")
	assert.Zero(t, sink.received())

	// the destination recovers; kill -9 while the spool drains and writes go on
	sink.refusing.Store(false)
	require.Eventually(t, func() bool { return sink.received() >= 2000 }, 60*time.Second, time.Millisecond)
	p.stop(syscall.SIGKILL)
	cancel()
	wg.Wait()
	atKill := sink.received()

	p.start()
	total := nAcked()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for writer, values := range acked {
			for _, v := range values {
				if sink.count(writer, v) == 0 {
					return false
				}
			}
		}
		return true
	}, 120*time.Second, 50*time.Millisecond, "every acknowledged point reaches the destination after the restart")
	assert.Contains(t, p.proc.Output(), "Replaying the provider's spool", "the replay is logged")
	require.Eventually(t, func() bool { return strings.Contains(p.proc.Output(), "Spool replay done") }, 30*time.Second, 10*time.Millisecond)
	for _, line := range strings.Split(p.proc.Output(), "\n") {
		if strings.Contains(line, "Replaying the provider's spool") || strings.Contains(line, "Spool replay done") {
			t.Log(line)
		}
	}
	dups := 0
	mu.Lock()
	for writer, values := range acked {
		for _, v := range values {
			dups += sink.count(writer, v) - 1
		}
	}
	mu.Unlock()
	// in flight at the kill: one batch per export worker
	assert.LessOrEqual(t, dups, workers*batchPoints, "points sent twice")
	t.Logf("%d acknowledged points, %d received before the kill, all received after the restart; %d sent twice (in flight at the kill)",
		total, atKill, dups)
}
