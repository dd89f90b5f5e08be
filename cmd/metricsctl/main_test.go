package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/client/metricstest"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type result struct {
	code           int
	stdout, stderr string
}

// syncBuf is a buffer safe for a command running in another goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCtl(ctx context.Context, t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut syncBuf
	// an empty config, so that the user's file is never read
	args = append([]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, args...)
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func fake(t *testing.T) (*metricstest.Server, string) {
	t.Helper()
	srv := metricstest.NewServer(t)
	addr, err := srv.ListenTCP()
	require.NoError(t, err)
	return srv, addr
}

func TestRecordFromFlagsAndStdin(t *testing.T) {
	srv, addr := fake(t)
	ctx := context.Background()
	r := runCtl(ctx, t, "", "--endpoint", addr, "record", "http_requests_total", "2", "-l", "method=GET", "-r", "service.name=api")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "recorded 1 of 1 points")
	srv.AssertCounter(t, "http_requests_total", map[string]string{"method": "GET"}, 2)
	assert.Equal(t, "api", srv.Points()[0].Resource["service.name"])

	r = runCtl(ctx, t, "", "--endpoint", addr, "record", "job_seconds", "--type", "timer", "--observe", "0.5,1.5")
	require.Equal(t, 0, r.code, r.stderr)
	srv.AssertObservations(t, "job_seconds", nil, 0.5, 1.5)

	r = runCtl(ctx, t, "# TYPE queue_depth gauge\nqueue_depth{queue=\"mail\"} 17\njobs_total{queue=\"mail\"} 3\n", "--endpoint", addr, "record", "--stdin")
	require.Equal(t, 0, r.code, r.stderr)
	srv.AssertGauge(t, "queue_depth", map[string]string{"queue": "mail"}, 17)
	srv.AssertCounter(t, "jobs_total", map[string]string{"queue": "mail"}, 3)
}

func TestExitCodesAndServerErrorsWithTheirField(t *testing.T) {
	srv, addr := fake(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		inject   error
		args     []string
		code     int
		contains string
	}{
		{"usage", nil, []string{"record", "x"}, exitUsage, "record needs NAME VALUE"},
		{"bad flag", nil, []string{"record", "--nope"}, exitUsage, "unknown flag"},
		{"bad output", nil, []string{"-o", "xml", "get"}, exitUsage, "--output \"xml\""},
		{"invalid argument", status.Error(codes.InvalidArgument, "metrics[0].name: bad (fix: rename)"), []string{"record", "a", "1"}, exitRefused, "metrics[0].name: bad (fix: rename)"},
		{"unavailable", status.Error(codes.PermissionDenied, "no"), []string{"record", "a", "1"}, exitDenied, "PermissionDenied: no"},
		{"not found", nil, []string{"--management-endpoint", addr, "providers", "describe", "nope"}, exitNotFound, "provider nope does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.inject != nil {
				srv.FailNext(tc.inject)
			}
			r := runCtl(ctx, t, "", append([]string{"--endpoint", addr}, tc.args...)...)
			assert.Equal(t, tc.code, r.code, "%s %s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, tc.contains)
		})
	}
	// the BadRequest details are printed, field by field
	r := runCtl(ctx, t, "", "--endpoint", addr, "record", "untyped_thing", "1", "--type", "gauge", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCtl(ctx, t, "", "--endpoint", addr, "definitions", "apply", "-f", writeFile(t, "name: \"\"\ntype: METRIC_TYPE_GAUGE\n"))
	assert.Equal(t, exitRefused, r.code)
	assert.Contains(t, r.stderr, "field definition.name: name is empty (fix: set the metric name) [invalid_metric_name]")
}

func TestUnavailableServerExitsThree(t *testing.T) {
	r := runCtl(context.Background(), t, "", "--endpoint", "127.0.0.1:1", "--timeout", "2s", "query", "up")
	assert.Equal(t, exitUnavailable, r.code, r.stderr)
	assert.Contains(t, r.stderr, "hint: is the collector running")
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func promFile(t *testing.T, lines int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# TYPE probe_total counter\n")
	for i := range lines {
		fmt.Fprintf(&b, "probe_total{shard=\"%d\"} %d\n", i%10, i/10+1)
	}
	p := filepath.Join(t.TempDir(), "probe.prom")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

func TestImportInterruptedAndResumedSendsEachBatchOnce(t *testing.T) {
	srv, addr := fake(t)
	file := promFile(t, 400)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- runCtl(ctx, t, "", "--endpoint", addr, "import", file, "--batch-size", "10", "--rate", "400")
	}()
	require.Eventually(t, func() bool {
		st, err := loadState(file + ".metricsctl-import")
		return err == nil && st.Acked >= 5
	}, 10*time.Second, time.Millisecond)
	cancel()
	r := <-done
	require.Equal(t, exitInterrupted, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--resume")
	st, err := loadState(file + ".metricsctl-import")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st.Acked, 5)
	assert.Less(t, st.Acked, 40)

	// without --resume: refused, nothing sent
	calls := srv.Calls()
	r = runCtl(context.Background(), t, "", "--endpoint", addr, "import", file, "--batch-size", "10")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "an interrupted import")
	assert.Equal(t, calls, srv.Calls())

	r = runCtl(context.Background(), t, "", "--endpoint", addr, "import", file, "--batch-size", "10", "--resume")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "resuming")
	assert.Contains(t, r.stderr, "points/s ETA")
	assert.Contains(t, r.stdout, "accepted")
	// every line once: the fake applies a request id once; and the resume re-sent at most the batch in flight
	assert.Len(t, srv.Points(), 400)
	assert.Len(t, srv.RequestIDs(), 40)
	assert.LessOrEqual(t, srv.Calls(), 41)
	assert.True(t, srv.Points()[0].Cumulative, "exposition counters are running totals")

	// done: a second import is refused unless --restart
	r = runCtl(context.Background(), t, "", "--endpoint", addr, "import", file, "--batch-size", "10")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "already imported")
}

func TestImportSummaryAsJSON(t *testing.T) {
	_, addr := fake(t)
	file := promFile(t, 20)
	r := runCtl(context.Background(), t, "", "--endpoint", addr, "-o", "json", "import", file, "--batch-size", "5")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"accepted": 20`)
}

func TestImportOTLPJSONAndOpenMetrics(t *testing.T) {
	srv, addr := fake(t)
	otlp := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
	"scopeMetrics":[{"metrics":[
	 {"name":"reqs","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"4","timeUnixNano":"1700000000000000000","attributes":[{"key":"m","value":{"stringValue":"GET"}}]}]}},
	 {"name":"temp","gauge":{"dataPoints":[{"asDouble":21.5}]}},
	 {"name":"lat","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":1.5,"explicitBounds":[1],"bucketCounts":["2","1"]}]}}
	]}]}]}`
	p := filepath.Join(t.TempDir(), "m.json")
	require.NoError(t, os.WriteFile(p, []byte(otlp), 0o600))
	r := runCtl(context.Background(), t, "", "--endpoint", addr, "import", p)
	require.Equal(t, 0, r.code, r.stderr)
	srv.AssertCounter(t, "reqs", map[string]string{"m": "GET"}, 4)
	srv.AssertGauge(t, "temp", nil, 21.5)
	byName := map[string]metricstest.Point{}
	for _, pt := range srv.Points() {
		byName[pt.Name] = pt
	}
	assert.False(t, byName["reqs"].Cumulative, "a delta sum is an increment")
	assert.Equal(t, "svc", byName["reqs"].Resource["service.name"])
	assert.Equal(t, []uint64{2, 1}, byName["lat"].Metric.Histogram.BucketCounts)

	om := "# TYPE jobs counter\n# HELP jobs Jobs done.\njobs_total{q=\"a\"} 5 1700000000.5\njobs_created{q=\"a\"} 1700000000\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 3 # {trace_id=\"x\"} 2\nh_count 3\nh_sum 4\n# EOF\n"
	p = filepath.Join(t.TempDir(), "m.om")
	require.NoError(t, os.WriteFile(p, []byte(om), 0o600))
	r = runCtl(context.Background(), t, "", "--endpoint", addr, "import", p)
	require.Equal(t, 0, r.code, r.stderr)
	for _, pt := range srv.Points() {
		byName[pt.Name] = pt
	}
	require.Contains(t, byName, "jobs_total")
	assert.Equal(t, int64(1700000000500), byName["jobs_total"].Metric.Timestamp.AsTime().UnixMilli())
	assert.Equal(t, "Jobs done.", byName["jobs_total"].Description)
	assert.Equal(t, []uint64{1, 2}, byName["h"].Metric.Histogram.BucketCounts)
	assert.NotContains(t, byName, "jobs_created")
}

func TestProvidersApplyShowsDiffAndDefinitions(t *testing.T) {
	srv, addr := fake(t)
	_ = srv
	ctx := context.Background()
	cfg := "provider_id: p1\ntype: PROVIDER_TYPE_OPENTELEMETRY\nsettings:\n  opentelemetry:\n    endpoint: 127.0.0.1:4317\n"
	r := runCtl(ctx, t, "", "--management-endpoint", addr, "providers", "apply", "-f", writeFile(t, cfg), "--wait")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "p1: created, version 1, running")
	r = runCtl(ctx, t, "", "--management-endpoint", addr, "providers", "apply", "-f", writeFile(t, strings.Replace(cfg, "4317", "4318", 1)))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "  -     endpoint: 127.0.0.1:4317\n  +     endpoint: 127.0.0.1:4318\n")
	assert.Contains(t, r.stdout, "p1: updated, version 2")
	r = runCtl(ctx, t, "", "--management-endpoint", addr, "providers", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `p1\s+opentelemetry\s+running\s+healthy\s+2`, r.stdout)
	r = runCtl(ctx, t, "", "--management-endpoint", addr, "-o", "json", "providers", "describe", "p1")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"provider_id": "p1"`)
	r = runCtl(ctx, t, "", "--management-endpoint", addr, "providers", "stats", "p1")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCtl(ctx, t, "", "--management-endpoint", addr, "providers", "delete", "p1", "--wait")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, "p1: gone")

	defs := "name: a_total\ntype: METRIC_TYPE_COUNTER\n---\n# second\nname: b\ntype: METRIC_TYPE_GAUGE\nlabels: [{name: x, required: true}]\n"
	r = runCtl(ctx, t, "", "--endpoint", addr, "definitions", "apply", "-f", writeFile(t, defs))
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "a_total: created, schema v1\nb: created, schema v1\n", r.stdout)
	r = runCtl(ctx, t, "", "--endpoint", addr, "definitions", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `b\s+gauge\s+v1\s+x\*`, r.stdout)
	r = runCtl(ctx, t, "", "--endpoint", addr, "definitions", "delete", "b", "--dry-run")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "b: would be removed")
}

func TestQueryRendersVectorAndMatrix(t *testing.T) {
	srv, addr := fake(t)
	srv.OnQuery = func(req *pb.QueryMetricsRequest) (*pb.QueryMetricsResponse, error) {
		s := &pb.Series{Name: "up", Labels: map[string]string{"job": "a"}}
		if req.Type == pb.QueryType_QUERY_TYPE_RANGE {
			for i := range 8 {
				s.Samples = append(s.Samples, &pb.Sample{Value: float64(i)})
			}
			return &pb.QueryMetricsResponse{ResultType: pb.QueryResultType_QUERY_RESULT_TYPE_MATRIX, Series: []*pb.Series{s}}, nil
		}
		s.Samples = []*pb.Sample{{Value: 1}}
		return &pb.QueryMetricsResponse{ResultType: pb.QueryResultType_QUERY_RESULT_TYPE_VECTOR, Series: []*pb.Series{s}}, nil
	}
	r := runCtl(context.Background(), t, "", "--endpoint", addr, "query", "up")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `up\s+\{job="a"\}\s+1`, r.stdout)
	r = runCtl(context.Background(), t, "", "--endpoint", addr, "query", "up", "--range", "1h")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "▁▂▃▄▅▆▇█")
}

func TestConfigContexts(t *testing.T) {
	_, addr := fake(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--config", cfgPath, "config", "set-context", "test", "--endpoint", addr, "--use"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	out.Reset()
	code = run(context.Background(), []string{"--config", cfgPath, "record", "x", "1"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	code = run(context.Background(), []string{"--config", cfgPath, "--context", "nope", "record", "x", "1"}, strings.NewReader(""), &out, &errOut)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut.String(), `context "nope" is not in`)
}

func TestDiffLines(t *testing.T) {
	assert.Empty(t, diffLines("a\nb\n", "a\nb\n"))
	assert.Equal(t, "    a\n  - b\n  + c\n    d\n", diffLines("a\nb\nd\n", "a\nc\nd\n"))
}

func TestSparkline(t *testing.T) {
	assert.Equal(t, "▁█", sparkline([]float64{0, 1}, 10))
	assert.Equal(t, "▅▅▅", sparkline([]float64{2, 2, 2}, 10))
	assert.Len(t, []rune(sparkline(make([]float64, 100), 20)), 20)
}

func TestCompletionAndHelp(t *testing.T) {
	r := runCtl(context.Background(), t, "", "completion", "bash")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "__start_metricsctl")
	r = runCtl(context.Background(), t, "", "import", "--help")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "--resume")
	r = runCtl(context.Background(), t, "", "--help")
	assert.Contains(t, r.stdout, "Exit codes: 0 ok")
}

// selfSigned returns a certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "metricstest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLSContextWithCAFileAndTokenFile(t *testing.T) {
	srv := metricstest.NewServer(t)
	cert, caPEM := selfSigned(t)
	addr, err := srv.ListenTLS(cert)
	require.NoError(t, err)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, caPEM, 0o600))
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret\n"), 0o600))
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("current-context: tls\ncontexts:\n  - name: tls\n    endpoint: %s\n    tls: {enabled: true, ca-file: %s}\n    token-file: %s\n", addr, ca, token)), 0o600))
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--config", cfg, "record", "tls_total", "1"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	srv.AssertCounter(t, "tls_total", nil, 1)

	// plain text against the TLS server fails as unavailable
	code = run(context.Background(), []string{"--config", cfg, "--context", "tls", "--timeout", "2s", "record", "tls_total", "1"}, strings.NewReader(""), &out, &errOut)
	require.Equal(t, 0, code)
	errOut.Reset()
	code = run(context.Background(), []string{"--endpoint", addr, "--config", filepath.Join(dir, "none.yaml"), "--timeout", "2s", "record", "tls_total", "1"}, strings.NewReader(""), &out, &errOut)
	assert.Equal(t, exitUnavailable, code, errOut.String())
}
