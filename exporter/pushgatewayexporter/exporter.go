package pushgatewayexporter

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/exporter/pushgatewayexporter/internal/cumulative"
)

// textFormat is the exposition format of pushes.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// maxErrorBody bounds how much of an error response is quoted.
const maxErrorBody = 1024

type pushgatewayExporter struct {
	cfg    *Config
	set    exporter.Settings
	method string
	base   string // endpoint without a trailing slash
	auth   string // Authorization header value, if any

	// mu serializes pushes: the state is updated and the touched groups are
	// pushed as one step, so a snapshot never overtakes a newer one.
	mu     sync.Mutex
	acc    *cumulative.State
	client *http.Client
}

func newExporter(cfg *Config, set exporter.Settings) *pushgatewayExporter {
	e := &pushgatewayExporter{
		cfg:    cfg,
		set:    set,
		method: strings.ToUpper(cfg.Method),
		base:   strings.TrimSuffix(cfg.ClientConfig.Endpoint, "/"),
		acc: cumulative.New(cumulative.Options{
			Namespace:            cfg.Namespace,
			AddMetricSuffixes:    cfg.AddMetricSuffixes,
			GroupingLabels:       cfg.GroupingLabels,
			GroupingFromResource: cfg.GroupingFromResource,
			ResourceLabels:       cfg.ResourceToTelemetryConversion.Enabled,
			Expiration:           cfg.MetricExpiration,
		}),
	}
	switch {
	case cfg.BasicAuth.Username != "":
		e.auth = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(cfg.BasicAuth.Username+":"+string(cfg.BasicAuth.Password)))
	case cfg.BearerToken != "":
		e.auth = "Bearer " + string(cfg.BearerToken)
	}
	return e
}

func (e *pushgatewayExporter) start(ctx context.Context, host component.Host) error {
	cc := e.cfg.ClientConfig
	// The per-attempt timeout is set on the request context by exporterhelper.
	cc.Timeout = 0
	client, err := cc.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("create HTTP client: %w", err)
	}
	e.mu.Lock()
	e.client = client
	e.mu.Unlock()
	e.set.Logger.Info("Pushgateway exporter started",
		zap.String("endpoint", redactedURL(e.base)), zap.String("job", e.cfg.Job), zap.String("method", e.method))
	return nil
}

// redactedURL is u without its password, for logs.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

func (e *pushgatewayExporter) shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	return nil
}

// pushMetrics adds md to the cumulative state and pushes the whole state of
// every group md touched. A retry of the same md changes no state (its delta
// points are not newer than the state) and pushes the same snapshots again.
func (e *pushgatewayExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client == nil {
		return errors.New("pushgateway exporter is not started")
	}
	res := e.acc.Update(md)
	if len(res.Dropped) > 0 {
		e.set.Logger.Warn("Data points not pushed", zap.String("dropped", res.String()))
	}
	var errs []error
	for _, g := range res.Groups {
		families := e.acc.Families(g)
		if len(families) == 0 {
			continue
		}
		if err := e.push(ctx, g, families); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *pushgatewayExporter) push(ctx context.Context, g *cumulative.Group, families []*dto.MetricFamily) error {
	var body bytes.Buffer
	enc := expfmt.NewEncoder(&body, textFormat)
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return consumererror.NewPermanent(fmt.Errorf("encode %s: %w", mf.GetName(), err))
		}
	}
	target := e.base + groupPath(e.cfg.Job, g.Labels())
	req, err := http.NewRequestWithContext(ctx, e.method, target, &body)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("build push request: %w", err))
	}
	req.Header.Set("Content-Type", string(textFormat))
	if e.auth != "" {
		req.Header.Set("Authorization", e.auth)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("push to %s: %w", target, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("push to %s: %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))
	if permanentStatus(resp.StatusCode) {
		return consumererror.NewPermanent(err)
	}
	return err
}

// permanentStatus reports whether a push refused with code must not be
// retried: client errors other than timeouts and rate limiting.
func permanentStatus(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// groupPath returns the Pushgateway path of a grouping key:
// /metrics/job/<job>{/<label>/<value>}. Values that are empty or hold a
// slash use the name@base64 form.
func groupPath(job string, labels []cumulative.Label) string {
	var b strings.Builder
	b.WriteString("/metrics")
	writeSegment(&b, "job", job)
	for _, l := range labels {
		writeSegment(&b, l.Name, l.Value)
	}
	return b.String()
}

func writeSegment(b *strings.Builder, name, value string) {
	b.WriteByte('/')
	b.WriteString(name)
	switch {
	case value == "":
		b.WriteString("@base64/=")
	case strings.Contains(value, "/"):
		b.WriteString("@base64/")
		b.WriteString(base64.URLEncoding.EncodeToString([]byte(value)))
	default:
		b.WriteByte('/')
		b.WriteString(url.PathEscape(value))
	}
}
