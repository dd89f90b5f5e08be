// Package metricstest is an in-process fake of MetricsService and
// MetricsManagementService over bufconn, for unit tests of applications that
// record with client/metricsclient (or any gRPC client of the API): it
// records what was sent and has assertion helpers.
//
//	srv := metricstest.NewServer(t)
//	cl := metricsclient.NewFromConn(srv.Conn())
//	cl.Counter("jobs_total").Inc()
//	require.NoError(t, cl.Flush(ctx))
//	srv.AssertCounter(t, "jobs_total", nil, 1)
//
// The fake applies RecordMetric and RecordBatchMetrics (de-duplicated by
// request_id, as the server is), refuses items without a name or type with
// INVALID_ARGUMENT and google.rpc.BadRequest details, keeps metric
// definitions and providers in memory, streams recorded points to
// StreamMetrics subscribers, and answers QueryMetrics with OnQuery. Errors
// can be injected before or after a record is applied (FailNext,
// LoseNextAnswer) to test retries.
package metricstest // import "github.com/metricsmodule/metricsmodule/client/metricstest"

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	_ "github.com/metricsmodule/metricsmodule/client/streamclient" // compressors
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Point is one recorded item.
type Point struct {
	// RequestID of the call that carried it (empty when none).
	RequestID string
	// Name, Type, Labels, Value, Observations, Unit, Description as sent.
	Name         string
	Type         pb.MetricType
	Labels       map[string]string
	Value        float64
	Observations []float64
	Unit         string
	Description  string
	// Resource attributes (the item's, else the request's).
	Resource map[string]string
	// Cumulative as sent (counters).
	Cumulative bool
	// Metric is the item as received.
	Metric *pb.MetricData
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	pb.UnimplementedMetricsServiceServer
	pb.UnimplementedMetricsManagementServiceServer

	// OnQuery answers QueryMetrics; unset: an empty vector.
	OnQuery func(*pb.QueryMetricsRequest) (*pb.QueryMetricsResponse, error)

	lis   *bufconn.Listener
	srv   *grpc.Server
	conn  *grpc.ClientConn
	extra []*grpc.Server // ListenTLS servers

	mu          sync.Mutex
	points      []Point
	calls       int
	answers     map[string]*pb.RecordBatchMetricsResponse
	failNext    []error
	loseNext    []error
	definitions map[string]*pb.RegisterMetricResponse
	providers   map[string]*pb.Provider
	subs        map[chan *pb.MetricBatch]struct{}
	gate        chan struct{}
}

// NewServer starts a fake served over bufconn and stops it when t ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start starts a fake; Stop stops it.
func Start() *Server {
	s := &Server{
		lis:         bufconn.Listen(1 << 20),
		srv:         grpc.NewServer(),
		answers:     map[string]*pb.RecordBatchMetricsResponse{},
		definitions: map[string]*pb.RegisterMetricResponse{},
		providers:   map[string]*pb.Provider{},
		subs:        map[chan *pb.MetricBatch]struct{}{},
	}
	pb.RegisterMetricsServiceServer(s.srv, s)
	pb.RegisterMetricsManagementServiceServer(s.srv, s)
	go func() { _ = s.srv.Serve(s.lis) }()
	conn, err := grpc.NewClient("passthrough:///metricstest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err) // only on bad options
	}
	s.conn = conn
	return s
}

// Stop closes the connection and stops the server.
func (s *Server) Stop() {
	_ = s.conn.Close()
	s.srv.Stop()
	s.mu.Lock()
	extra := s.extra
	s.mu.Unlock()
	for _, e := range extra {
		e.Stop()
	}
}

// ListenTLS serves the fake on 127.0.0.1 with TLS and cert (for a client
// that must use TLS) and returns the address; it stops with Stop.
func (s *Server) ListenTLS(cert tls.Certificate) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	pb.RegisterMetricsServiceServer(srv, s)
	pb.RegisterMetricsManagementServiceServer(srv, s)
	s.mu.Lock()
	s.extra = append(s.extra, srv)
	s.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return lis.Addr().String(), nil
}

// ListenTCP serves the fake on 127.0.0.1 too (for a client in another
// process, e.g. a CLI under test) and returns the address; the listener
// closes with Stop.
func (s *Server) ListenTCP() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = s.srv.Serve(lis) }()
	return lis.Addr().String(), nil
}

// Conn is a client connection to the fake.
func (s *Server) Conn() *grpc.ClientConn { return s.conn }

// Dialer returns a context dialer to the fake, for grpc.WithContextDialer.
func (s *Server) Dialer() func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }
}

// FailNext makes the next record calls fail with errs, one each, before
// anything is applied.
func (s *Server) FailNext(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, errs...)
}

// LoseNextAnswer makes the next record calls apply their items and then
// fail with errs (a lost answer): a client that retries with the same
// request_id gets the first answer as a duplicate.
func (s *Server) LoseNextAnswer(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseNext = append(s.loseNext, errs...)
}

// Pause makes record calls wait (before anything is applied) until the
// returned function is called, or their context ends: a stuck server, to
// test backpressure.
func (s *Server) Pause() (resume func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.gate = gate
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.gate == gate {
				s.gate = nil
			}
			s.mu.Unlock()
			close(gate)
		})
	}
}

func (s *Server) wait(ctx context.Context) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// Points returns every recorded item, in order.
func (s *Server) Points() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.points)
}

// Calls counts the record calls received (duplicates and failures too).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// RequestIDs returns the request ids applied, in order, each once.
func (s *Server) RequestIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, p := range s.points {
		if p.RequestID != "" && !seen[p.RequestID] {
			seen[p.RequestID] = true
			out = append(out, p.RequestID)
		}
	}
	return out
}

// matches reports whether p is of name and carries every label of labels.
func (p Point) matches(name string, labels map[string]string) bool {
	if p.Name != name {
		return false
	}
	for k, v := range labels {
		if p.Labels[k] != v {
			return false
		}
	}
	return true
}

// Total sums the counter increments of name over the series carrying
// labels (nil: all series).
func (s *Server) Total(name string, labels map[string]string) float64 {
	total := 0.0
	for _, p := range s.Points() {
		if p.matches(name, labels) {
			total += p.Value
		}
	}
	return total
}

// Last returns the last value recorded for name with labels.
func (s *Server) Last(name string, labels map[string]string) (float64, bool) {
	pts := s.Points()
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].matches(name, labels) {
			return pts[i].Value, true
		}
	}
	return 0, false
}

// Observations returns every observation recorded for name with labels
// (histograms, summaries, timers; a value without observations counts as one).
func (s *Server) Observations(name string, labels map[string]string) []float64 {
	var out []float64
	for _, p := range s.Points() {
		if !p.matches(name, labels) {
			continue
		}
		if len(p.Observations) > 0 {
			out = append(out, p.Observations...)
		} else {
			out = append(out, p.Value)
		}
	}
	return out
}

// Names returns the distinct metric names recorded, sorted.
func (s *Server) Names() []string {
	set := map[string]bool{}
	for _, p := range s.Points() {
		set[p.Name] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// AssertCounter fails t unless the counter increments of name with labels
// sum to want.
func (s *Server) AssertCounter(t testing.TB, name string, labels map[string]string, want float64) bool {
	t.Helper()
	if got := s.Total(name, labels); got != want {
		t.Errorf("counter %s%s: got %v, want %v (recorded: %s)", name, fmtLabels(labels), got, want, s.describe(name))
		return false
	}
	return true
}

// AssertGauge fails t unless the last value of name with labels is want.
func (s *Server) AssertGauge(t testing.TB, name string, labels map[string]string, want float64) bool {
	t.Helper()
	got, ok := s.Last(name, labels)
	if !ok || got != want {
		t.Errorf("gauge %s%s: got %v (recorded %v), want %v (recorded: %s)", name, fmtLabels(labels), got, ok, want, s.describe(name))
		return false
	}
	return true
}

// AssertObservations fails t unless name with labels has exactly the
// observations want, in any order.
func (s *Server) AssertObservations(t testing.TB, name string, labels map[string]string, want ...float64) bool {
	t.Helper()
	got := s.Observations(name, labels)
	sort.Float64s(got)
	w := slices.Clone(want)
	sort.Float64s(w)
	if !slices.Equal(got, w) {
		t.Errorf("observations of %s%s: got %v, want %v", name, fmtLabels(labels), got, w)
		return false
	}
	return true
}

// WaitForPoints waits until n items were recorded or timeout passed, and
// reports whether they were.
func (s *Server) WaitForPoints(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if len(s.Points()) >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) describe(name string) string {
	var parts []string
	for _, p := range s.Points() {
		if p.Name == name {
			parts = append(parts, fmt.Sprintf("%s=%v", fmtLabels(p.Labels), p.Value))
		}
	}
	if len(parts) == 0 {
		return "nothing under " + name + "; names: " + strings.Join(s.Names(), ", ")
	}
	return strings.Join(parts, " ")
}

func fmtLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// validate refuses what the real server surely refuses too: no name, no type.
func validate(i int, m *pb.MetricData) *errdetails.BadRequest_FieldViolation {
	prefix := fmt.Sprintf("metrics[%d]", i)
	if i < 0 {
		prefix = "metric"
	}
	switch {
	case m.GetName() == "":
		return &errdetails.BadRequest_FieldViolation{Field: prefix + ".name", Description: "metric name is empty (fix: set a name matching [a-zA-Z_:][a-zA-Z0-9_:.]*)", Reason: "invalid_metric_name"}
	case m.GetType() == pb.MetricType_METRIC_TYPE_UNSPECIFIED:
		return &errdetails.BadRequest_FieldViolation{Field: prefix + ".type", Description: "metric type is not set (fix: set COUNTER, GAUGE, HISTOGRAM, SUMMARY or TIMER)", Reason: "missing_type"}
	}
	return nil
}

func invalid(v *errdetails.BadRequest_FieldViolation) error {
	st := status.New(codes.InvalidArgument, v.Field+": "+v.Description)
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{v}}); err == nil {
		st = d
	}
	return st.Err()
}

// record applies items under one request id; it is what both record
// methods do.
func (s *Server) record(id string, res *pb.Resource, items []*pb.MetricData, opts *pb.BatchOptions) (*pb.RecordBatchMetricsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.failNext) > 0 {
		err := s.failNext[0]
		s.failNext = s.failNext[1:]
		return nil, err
	}
	if id != "" {
		if prev, ok := s.answers[id]; ok {
			dup := prev.CloneVT()
			dup.Duplicate = true
			return dup, nil
		}
	}
	resp := &pb.RecordBatchMetricsResponse{RecordedAt: timestamppb.Now()}
	bestEffort := opts.GetMode() == pb.BatchMode_BATCH_MODE_BEST_EFFORT
	var apply []*pb.MetricData
	for i, m := range items {
		if v := validate(i, m); v != nil {
			if !bestEffort {
				return nil, invalid(v)
			}
			resp.RejectedCount++
			resp.Results = append(resp.Results, &pb.MetricResult{Index: uint32(i), Code: int32(codes.InvalidArgument), Message: v.Field + ": " + v.Description,
				Issues: []*pb.ValidationIssue{{Field: v.Field, Code: v.Reason, Message: v.Description, Severity: pb.Severity_SEVERITY_ERROR}}})
			continue
		}
		apply = append(apply, m)
	}
	if opts.GetValidateOnly() {
		apply = nil
	}
	batch := &pb.MetricBatch{CreatedAt: timestamppb.Now()}
	for _, m := range apply {
		r := res.GetAttributes()
		if m.Resource != nil {
			r = m.Resource.Attributes
		}
		s.points = append(s.points, Point{RequestID: id, Name: m.Name, Type: m.Type, Labels: m.Labels, Value: m.Value,
			Observations: m.Observations, Unit: m.Unit, Description: m.Description, Resource: r, Cumulative: m.Cumulative, Metric: m.CloneVT()})
		batch.Metrics = append(batch.Metrics, m.CloneVT())
		resp.AcceptedCount++
	}
	resp.Stats = &pb.ProcessingStats{DatapointsAccepted: uint64(resp.AcceptedCount), DatapointsRejected: uint64(resp.RejectedCount)}
	if id != "" {
		s.answers[id] = resp
	}
	if len(batch.Metrics) > 0 {
		for ch := range s.subs {
			select {
			case ch <- batch:
			default: // a slow subscriber misses batches, as best effort does
			}
		}
	}
	if len(s.loseNext) > 0 {
		err := s.loseNext[0]
		s.loseNext = s.loseNext[1:]
		return nil, err
	}
	return resp, nil
}

// RecordMetric implements MetricsService.
func (s *Server) RecordMetric(ctx context.Context, req *pb.RecordMetricRequest) (*pb.RecordMetricResponse, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	if v := validate(-1, req.Metric); v != nil {
		return nil, invalid(v)
	}
	resp, err := s.record(req.RequestId, req.Resource, []*pb.MetricData{req.Metric}, &pb.BatchOptions{ValidateOnly: req.ValidateOnly})
	if err != nil {
		return nil, err
	}
	return &pb.RecordMetricResponse{RecordedAt: resp.RecordedAt, Duplicate: resp.Duplicate, Stats: resp.Stats}, nil
}

// RecordBatchMetrics implements MetricsService.
func (s *Server) RecordBatchMetrics(ctx context.Context, req *pb.RecordBatchMetricsRequest) (*pb.RecordBatchMetricsResponse, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	if len(req.Metrics) == 0 {
		return nil, status.Error(codes.InvalidArgument, "metrics: the batch is empty (fix: send at least one item)")
	}
	return s.record(req.RequestId, req.Resource, req.Metrics, req.Options)
}

// QueryMetrics implements MetricsService with OnQuery.
func (s *Server) QueryMetrics(_ context.Context, req *pb.QueryMetricsRequest) (*pb.QueryMetricsResponse, error) {
	if s.OnQuery != nil {
		return s.OnQuery(req)
	}
	return &pb.QueryMetricsResponse{ResultType: pb.QueryResultType_QUERY_RESULT_TYPE_VECTOR}, nil
}

// GetMetrics implements MetricsService: one series per recorded series
// whose name is in the filter's names (all when empty), with its last value.
func (s *Server) GetMetrics(_ context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	names := req.GetFilter().GetNames()
	bySeries := map[string]*pb.Series{}
	var order []string
	for _, p := range s.Points() {
		if len(names) > 0 && !slices.Contains(names, p.Name) {
			continue
		}
		key := p.Name + fmtLabels(p.Labels)
		se, ok := bySeries[key]
		if !ok {
			se = &pb.Series{Name: p.Name, Type: p.Type, Labels: p.Labels}
			bySeries[key] = se
			order = append(order, key)
		}
		se.Samples = append(se.Samples, &pb.Sample{Timestamp: timestamppb.Now(), Value: p.Value})
	}
	resp := &pb.GetMetricsResponse{TotalCount: int64(len(order))}
	for _, k := range order {
		resp.Series = append(resp.Series, bySeries[k])
	}
	return resp, nil
}

// GetMetricsSummary implements MetricsService with totals of what was recorded.
func (s *Server) GetMetricsSummary(context.Context, *pb.GetMetricsSummaryRequest) (*pb.GetMetricsSummaryResponse, error) {
	names := s.Names()
	return &pb.GetMetricsSummaryResponse{
		Totals:      &pb.SummaryTotals{MetricNames: int64(len(names)), Samples: int64(len(s.Points()))},
		GeneratedAt: timestamppb.Now(),
	}, nil
}

// StreamMetrics implements MetricsService: a heartbeat, then every batch
// recorded from now on (best effort; no filter).
func (s *Server) StreamMetrics(req *pb.StreamMetricsRequest, stream grpc.ServerStreamingServer[pb.StreamMetricsResponse]) error {
	ch := make(chan *pb.MetricBatch, 64)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	id := req.GetOptions().GetSubscriptionId()
	if id == "" {
		id = "metricstest"
	}
	if err := stream.Send(&pb.StreamMetricsResponse{Payload: &pb.StreamMetricsResponse_Heartbeat{Heartbeat: &pb.Heartbeat{ServerTime: timestamppb.Now(), SubscriptionId: id}}}); err != nil {
		return err
	}
	var seq uint64
	if r := req.GetOptions().ResumeAfterSequence; r != nil {
		seq = *r
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case b := <-ch:
			seq++
			b = b.CloneVT()
			b.Sequence = seq
			if err := stream.Send(&pb.StreamMetricsResponse{Payload: &pb.StreamMetricsResponse_Batch{Batch: b}}); err != nil {
				return err
			}
		}
	}
}

// RegisterMetric implements MetricsService: definitions are kept by name,
// versions counted.
func (s *Server) RegisterMetric(_ context.Context, req *pb.RegisterMetricRequest) (*pb.RegisterMetricResponse, error) {
	def := req.GetDefinition()
	if def.GetName() == "" {
		return nil, invalid(&errdetails.BadRequest_FieldViolation{Field: "definition.name", Description: "name is empty (fix: set the metric name)", Reason: "invalid_metric_name"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.definitions[def.Name]
	resp := &pb.RegisterMetricResponse{Definition: def, SchemaVersion: 1, Created: prev == nil, Compatible: true, DryRun: req.DryRun}
	if prev != nil {
		resp.SchemaVersion = prev.SchemaVersion + 1
	}
	if !req.DryRun {
		s.definitions[def.Name] = resp
	}
	return resp, nil
}

// UnregisterMetric implements MetricsService.
func (s *Server) UnregisterMetric(_ context.Context, req *pb.UnregisterMetricRequest) (*pb.UnregisterMetricResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.definitions[req.Name]; !ok {
		return nil, status.Errorf(codes.NotFound, "name: metric %q is not registered (fix: list definitions with GetMetricMetadata)", req.Name)
	}
	if !req.DryRun {
		delete(s.definitions, req.Name)
	}
	return &pb.UnregisterMetricResponse{Removed: !req.DryRun, DryRun: req.DryRun}, nil
}

// GetMetricMetadata implements MetricsService over the registered definitions.
func (s *Server) GetMetricMetadata(_ context.Context, req *pb.GetMetricMetadataRequest) (*pb.GetMetricMetadataResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &pb.GetMetricMetadataResponse{}
	for _, name := range slices.Sorted(maps.Keys(s.definitions)) {
		if len(req.Names) > 0 && !slices.Contains(req.Names, name) {
			continue
		}
		d := s.definitions[name]
		resp.Metadata = append(resp.Metadata, &pb.MetricMetadata{Definition: d.Definition, Registered: true, SchemaVersion: d.SchemaVersion})
	}
	resp.TotalCount = int64(len(resp.Metadata))
	return resp, nil
}

// CreateMetricsProvider implements MetricsManagementService (kept in memory,
// RUNNING when auto_start).
func (s *Server) CreateMetricsProvider(_ context.Context, req *pb.CreateProviderRequest) (*pb.CreateProviderResponse, error) {
	cfg := req.GetConfig()
	if cfg.GetProviderId() == "" {
		return nil, invalid(&errdetails.BadRequest_FieldViolation{Field: "config.provider_id", Description: "provider_id is empty (fix: set an id matching [a-z0-9][a-z0-9_-]*)", Reason: "invalid_provider_id"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.providers[cfg.ProviderId]; ok {
		return &pb.CreateProviderResponse{Provider: p}, nil
	}
	state := pb.ProviderState_PROVIDER_STATE_STOPPED
	if req.AutoStart {
		state = pb.ProviderState_PROVIDER_STATE_RUNNING
	}
	p := &pb.Provider{Config: cfg, State: state, Health: pb.HealthStatus_HEALTH_STATUS_HEALTHY, Version: 1, CreatedAt: timestamppb.Now(), UpdatedAt: timestamppb.Now()}
	if !req.DryRun {
		s.providers[cfg.ProviderId] = p
	}
	return &pb.CreateProviderResponse{Provider: p, Created: true, DryRun: req.DryRun}, nil
}

// UpdateMetricsProvider implements MetricsManagementService.
func (s *Server) UpdateMetricsProvider(_ context.Context, req *pb.UpdateProviderRequest) (*pb.UpdateProviderResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.providers[req.ProviderId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "provider_id: provider %q does not exist (fix: create it first)", req.ProviderId)
	}
	if req.ExpectedVersion != 0 && req.ExpectedVersion != p.Version {
		return nil, status.Errorf(codes.Aborted, "expected_version: provider %q is at version %d, not %d (fix: read it again)", req.ProviderId, p.Version, req.ExpectedVersion)
	}
	prev := p.Version
	if !req.ValidateOnly {
		p = p.CloneVT()
		p.Config, p.Version, p.UpdatedAt = req.Config, p.Version+1, timestamppb.Now()
		s.providers[req.ProviderId] = p
	}
	return &pb.UpdateProviderResponse{Provider: p, PreviousVersion: prev, Strategy: req.Strategy}, nil
}

// DeleteMetricsProvider implements MetricsManagementService.
func (s *Server) DeleteMetricsProvider(_ context.Context, req *pb.DeleteProviderRequest) (*pb.DeleteProviderResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.providers[req.ProviderId]; !ok {
		return nil, status.Errorf(codes.NotFound, "provider_id: provider %q does not exist", req.ProviderId)
	}
	if !req.DryRun {
		delete(s.providers, req.ProviderId)
	}
	return &pb.DeleteProviderResponse{Deleted: !req.DryRun, DryRun: req.DryRun, State: pb.ProviderState_PROVIDER_STATE_DELETING}, nil
}

// ListMetricsProviders implements MetricsManagementService (one page, by id).
func (s *Server) ListMetricsProviders(context.Context, *pb.ListProvidersRequest) (*pb.ListProvidersResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &pb.ListProvidersResponse{}
	for _, id := range slices.Sorted(maps.Keys(s.providers)) {
		resp.Providers = append(resp.Providers, s.providers[id])
	}
	resp.TotalCount = int32(len(resp.Providers))
	return resp, nil
}

// GetProviderStats implements MetricsManagementService with zero statistics.
func (s *Server) GetProviderStats(_ context.Context, req *pb.GetProviderStatsRequest) (*pb.GetProviderStatsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.providers[req.ProviderId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "provider_id: provider %q does not exist", req.ProviderId)
	}
	return &pb.GetProviderStatsResponse{ProviderId: req.ProviderId, State: p.State, Health: p.Health, Stats: &pb.ProviderStats{}}, nil
}
