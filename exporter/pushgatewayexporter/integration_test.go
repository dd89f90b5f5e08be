package pushgatewayexporter

import (
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
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"golang.org/x/crypto/bcrypt"

	"github.com/metricsmodule/metricsmodule/internal/testpeer"
)

// startPushgateway runs the Debian prometheus-pushgateway on a free port,
// in memory only, with extra flags.
func startPushgateway(t *testing.T, readyPath string, extra ...string) *testpeer.Peer {
	t.Helper()
	return testpeer.Start(t, testpeer.Config{
		Binary: "prometheus-pushgateway",
		Args: func(addr string) []string {
			return append([]string{"--web.listen-address=" + addr, "--persistence.file=", "--log.level=warn"}, extra...)
		},
		ReadyPath: readyPath,
	})
}

// scrape returns the metric families the Pushgateway exposes.
func scrape(t require.TestingT, client *http.Client, url string) map[string]*dto.MetricFamily {
	resp, err := client.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// series returns the metrics of a family whose labels are exactly labels.
func series(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	fam, ok := fams[name]
	if !ok {
		return nil
	}
	for _, m := range fam.Metric {
		got := map[string]string{}
		for _, lp := range m.Label {
			got[lp.GetName()] = lp.GetValue()
		}
		if fmt.Sprint(got) == fmt.Sprint(labels) {
			return m
		}
	}
	return nil
}

func groupLabels(job string, kv ...string) map[string]string {
	out := map[string]string{"job": job, "instance": ""}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func appendMetric(md pmetric.Metrics, resAttrs map[string]any) pmetric.MetricSlice {
	rm := md.ResourceMetrics().AppendEmpty()
	_ = rm.Resource().Attributes().FromRaw(resAttrs)
	return rm.ScopeMetrics().AppendEmpty().Metrics()
}

func addDeltaCounter(ms pmetric.MetricSlice, name string, sec int, v int64, attrs map[string]any) {
	m := ms.AppendEmpty()
	m.SetName(name)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(tsAt(sec - 1))
	dp.SetTimestamp(tsAt(sec))
	dp.SetIntValue(v)
	_ = dp.Attributes().FromRaw(attrs)
}

func addGaugeValue(ms pmetric.MetricSlice, name, unit string, sec int, v float64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	m.SetDescription("current " + name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(tsAt(sec))
	dp.SetDoubleValue(v)
}

func addCumulativeCounter(ms pmetric.MetricSlice, name, unit string, sec int, v int64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := s.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(tsAt(0))
	dp.SetTimestamp(tsAt(sec))
	dp.SetIntValue(v)
}

func addDeltaHistogram(ms pmetric.MetricSlice, name string, sec int, counts []uint64, sum float64) {
	m := ms.AppendEmpty()
	m.SetName(name)
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(tsAt(sec - 1))
	dp.SetTimestamp(tsAt(sec))
	dp.ExplicitBounds().FromRaw([]float64{0.1, 1})
	dp.BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += c
	}
	dp.SetCount(n)
	dp.SetSum(sum)
}

func TestIntegrationPushgatewayValuesLabelsAndGrouping(t *testing.T) {
	peer := startPushgateway(t, "/-/ready")

	cfg := createDefaultConfig().(*Config) // with the sending queue and retries
	cfg.ClientConfig.Endpoint = peer.URL()
	cfg.Job = "it"
	cfg.GroupingLabels = map[string]string{"env": "test"}
	cfg.GroupingFromResource = []string{"service.instance.id"}
	exp := startExporter(t, cfg)

	i1 := map[string]any{"service.instance.id": "i-1", "service.name": "shop"}
	md := pmetric.NewMetrics()
	ms := appendMetric(md, i1)
	addDeltaCounter(ms, "http.requests", 1, 5, map[string]any{"route": "/a"})
	addGaugeValue(ms, "room.temperature", "Cel", 1, 21.5)
	addCumulativeCounter(ms, "net.io", "By", 1, 100)
	addDeltaHistogram(ms, "http.latency", 1, []uint64{1, 2, 0}, 1.2)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	md = pmetric.NewMetrics()
	ms = appendMetric(md, i1)
	addDeltaCounter(ms, "http.requests", 2, 7, map[string]any{"route": "/a"})
	addGaugeValue(ms, "room.temperature", "Cel", 2, 22)
	addDeltaHistogram(ms, "http.latency", 2, []uint64{0, 1, 1}, 3.5)
	addDeltaCounter(appendMetric(md, map[string]any{"service.instance.id": "i-2"}), "http.requests", 2, 1, map[string]any{"route": "/a"})
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	g1 := func(kv ...string) map[string]string {
		return groupLabels("it", append([]string{"env", "test", "service_instance_id", "i-1"}, kv...)...)
	}
	var fams map[string]*dto.MetricFamily
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		fams = scrape(c, http.DefaultClient, peer.URL())
		m := series(fams, "http_requests_total", g1("route", "/a"))
		require.NotNil(c, m)
		assert.InDelta(c, 12.0, m.GetCounter().GetValue(), 0)
		// each group is its own push: the second may land after the first
		require.NotNil(c, series(fams, "http_requests_total", groupLabels("it", "env", "test", "service_instance_id", "i-2", "route", "/a")), "second group")
	}, 20*time.Second, 50*time.Millisecond)

	assert.Equal(t, dto.MetricType_COUNTER, fams["http_requests_total"].GetType())
	m := series(fams, "http_requests_total", groupLabels("it", "env", "test", "service_instance_id", "i-2", "route", "/a"))
	require.NotNil(t, m, "second group")
	assert.InDelta(t, 1.0, m.GetCounter().GetValue(), 0)

	m = series(fams, "room_temperature_celsius", g1())
	require.NotNil(t, m)
	assert.InDelta(t, 22.0, m.GetGauge().GetValue(), 0)
	assert.Equal(t, "current room.temperature", fams["room_temperature_celsius"].GetHelp())

	m = series(fams, "net_io_bytes_total", g1())
	require.NotNil(t, m)
	assert.InDelta(t, 100.0, m.GetCounter().GetValue(), 0)

	m = series(fams, "http_latency_seconds", g1())
	require.NotNil(t, m)
	h := m.GetHistogram()
	assert.Equal(t, uint64(5), h.GetSampleCount())
	assert.InDelta(t, 4.7, h.GetSampleSum(), 1e-9)
	var bounds []float64
	var cum []uint64
	for _, b := range h.Bucket {
		bounds = append(bounds, b.GetUpperBound())
		cum = append(cum, b.GetCumulativeCount())
	}
	assert.Equal(t, []float64{0.1, 1}, bounds[:2])
	assert.Equal(t, []uint64{1, 4}, cum[:2])

	// Each grouping key is its own group with its own push time.
	assert.NotNil(t, series(fams, "push_time_seconds", g1()))
	assert.NotNil(t, series(fams, "push_time_seconds", groupLabels("it", "env", "test", "service_instance_id", "i-2")))
}

func TestIntegrationPushgatewayPutReplacesPostMerges(t *testing.T) {
	peer := startPushgateway(t, "/-/ready")
	for _, method := range []string{MethodPut, MethodPost} {
		t.Run(method, func(t *testing.T) {
			job := "merge-" + method
			newCfg := func() *Config {
				cfg := syncConfig(peer.URL())
				cfg.Job = job
				cfg.Method = method
				return cfg
			}
			// Two exporters with their own state push to the same group.
			first := startExporter(t, newCfg())
			md := pmetric.NewMetrics()
			addGaugeValue(appendMetric(md, nil), "first", "", 1, 1)
			require.NoError(t, first.ConsumeMetrics(context.Background(), md))

			second := startExporter(t, newCfg())
			md = pmetric.NewMetrics()
			addGaugeValue(appendMetric(md, nil), "second", "", 1, 2)
			require.NoError(t, second.ConsumeMetrics(context.Background(), md))

			fams := scrape(t, http.DefaultClient, peer.URL())
			assert.NotNil(t, series(fams, "second", groupLabels(job)))
			firstKept := series(fams, "first", groupLabels(job)) != nil
			assert.Equal(t, method == MethodPost, firstKept, "PUT replaces the group, POST merges by metric name")

			// Both methods keep every metric the exporter itself knows:
			// a push carries the whole state of the group.
			md = pmetric.NewMetrics()
			addGaugeValue(appendMetric(md, nil), "third", "", 2, 3)
			require.NoError(t, second.ConsumeMetrics(context.Background(), md))
			fams = scrape(t, http.DefaultClient, peer.URL())
			assert.NotNil(t, series(fams, "second", groupLabels(job)))
			assert.NotNil(t, series(fams, "third", groupLabels(job)))
		})
	}
}

func TestIntegrationPushgatewayRefusesInconsistentTypes(t *testing.T) {
	peer := startPushgateway(t, "/-/ready")
	cfg := syncConfig(peer.URL())
	cfg.Job = "types"
	exp := startExporter(t, cfg)
	md := pmetric.NewMetrics()
	addGaugeValue(appendMetric(md, map[string]any{}), "clash_total", "", 1, 1)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	cfg2 := syncConfig(peer.URL())
	cfg2.Job = "types-other"
	other := startExporter(t, cfg2)
	md = pmetric.NewMetrics()
	addCumulativeCounter(appendMetric(md, nil), "clash", "", 1, 1) // clash_total as a counter
	err := other.ConsumeMetrics(context.Background(), md)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), err)
	assert.Contains(t, err.Error(), "400")
}

func TestIntegrationPushgatewayTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSignedCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	webConfig := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webConfig, []byte(fmt.Sprintf(
		"tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  pusher: %s\n",
		certFile, keyFile, hash)), 0o600))
	peer := startPushgateway(t, "", "--web.config.file="+webConfig)
	url := "https://" + peer.Addr

	cfg := syncConfig(url)
	cfg.Job = "secure"
	cfg.ClientConfig.TLS.CAFile = certFile
	cfg.BasicAuth = BasicAuthConfig{Username: "pusher", Password: "s3cret"}
	exp := startExporter(t, cfg)
	md := pmetric.NewMetrics()
	addGaugeValue(appendMetric(md, nil), "secured", "", 1, 7)
	require.NoError(t, exp.ConsumeMetrics(context.Background(), md))

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(certFile)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: basicAuthTransport{tr}}
	m := series(scrape(t, client, url), "secured", groupLabels("secure"))
	require.NotNil(t, m)
	assert.InDelta(t, 7.0, m.GetGauge().GetValue(), 0)

	bad := syncConfig(url)
	bad.Job = "secure"
	bad.ClientConfig.TLS.CAFile = certFile
	bad.BasicAuth = BasicAuthConfig{Username: "pusher", Password: "wrong"}
	badExp := startExporter(t, bad)
	err = badExp.ConsumeMetrics(context.Background(), md)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), err)
	assert.Contains(t, err.Error(), "401")
}

type basicAuthTransport struct{ next http.RoundTripper }

func (b basicAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth("pusher", "s3cret")
	return b.next.RoundTrip(r)
}

// writeSelfSignedCert writes a certificate for 127.0.0.1 and its key.
func writeSelfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}
