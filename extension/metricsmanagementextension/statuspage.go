package metricsmanagementextension

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/datapath"
	"github.com/metricsmodule/metricsmodule/internal/provider"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// The status page (zpages style): one self-contained HTML page — no
// external script, style sheet, font or image — with every provider's
// state, health, health history and throughput as inline SVG charts; an
// inline script reloads the provider table every refreshInterval.
const (
	refreshInterval = 2 * time.Second
	healthSpan      = 10 * time.Minute
	chartWidth      = 240
	chartHeight     = 36
)

// statusView is one provider row of the page.
type statusView struct {
	provider.ProviderStatus
	TypeName, StateName, HealthName, HealthClass string
	ThroughputPoints, FailurePoints              string
	PeakThroughput                               float64
	HealthBands                                  []band
	LastErrorAt                                  string
	Op                                           string
}

// band is one stretch of a health timeline.
type band struct {
	X, W  float64
	Class string
	Title string
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ms": func(d time.Duration) int64 { return d.Milliseconds() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Providers — metrics_management</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f4f4f4} .num{text-align:right;font-variant-numeric:tabular-nums}
.h-HEALTHY{color:#1a7f37}.h-DEGRADED{color:#9a6700}.h-UNHEALTHY{color:#cf222e}.h-UNSPECIFIED{color:#666}
rect.HEALTHY{fill:#2da44e}rect.DEGRADED{fill:#d4a72c}rect.UNHEALTHY{fill:#cf222e}rect.UNSPECIFIED{fill:#ccc}
polyline.tp{fill:none;stroke:#0969da;stroke-width:1.5}polyline.fail{fill:none;stroke:#cf222e;stroke-width:1}
.err{color:#cf222e;min-width:22em;max-width:34em;overflow-wrap:anywhere} .muted{color:#666} svg{background:#fafafa}
</style></head><body>
<h1>Providers</h1>
<p class="muted">metrics_management status · refreshed every {{ms .Refresh}} ms · <span id="updated">{{.Now}}</span></p>
<div id="providers">{{template "table" .}}</div>
<script>
(function(){
  function load(){
    fetch(window.location.pathname.replace(/\/?$/, '/') + 'fragment', {cache:'no-store'})
      .then(function(r){ if(!r.ok) throw new Error(r.status); return r.text(); })
      .then(function(html){
        document.getElementById('providers').innerHTML = html;
        document.getElementById('updated').textContent = new Date().toISOString();
      })
      .catch(function(){})
      .finally(function(){ setTimeout(load, {{ms .Refresh}}); });
  }
  setTimeout(load, {{ms .Refresh}});
})();
</script>
</body></html>
{{define "table"}}{{with .Store}}<p id="store">Store: <b class="head-series">{{.HeadSeries}}</b> head series ·
{{.Appended}} samples appended ({{printf "%.1f" .IngestRate}}/s over 1m) · {{.Rejected}} refused · {{.Blocks}} blocks, {{.DiskBytes}} bytes on disk ·
Streams: <b class="streams">{{.Streams}}</b> open, {{.Subscriptions}} subscriptions, {{.StreamMemoryBytes}} bytes buffered</p>{{end}}
{{with .Registry}}{{if eq .Backend "etcd"}}<p id="registry">Registry: etcd, revision {{.Revision}}{{if .Degraded}} · <b class="err">degraded</b>: {{.Detail}}{{end}} ·
scheduled deletions led by <b class="leader">{{if .Leader}}{{.Leader}}{{else}}(no leader known){{end}}</b>{{if .Leading}} (this node){{end}}</p>{{end}}{{end}}
{{if not .Providers}}<p id="empty">No providers.</p>{{else}}
<table id="provider-table"><thead><tr>
<th>Provider</th><th>State</th><th>Health</th><th>Health, last 10 min</th><th>Throughput, last 2 min</th>
<th class="num">Sent</th><th class="num">Failed</th><th class="num">Dropped</th><th class="num">Queue</th><th>Last error</th><th>Operation</th>
</tr></thead><tbody>
{{range .Providers}}<tr class="provider" data-provider-id="{{.ID}}" data-health="{{.HealthName}}" data-state="{{.StateName}}">
<td><b>{{.ID}}</b>{{if .Name}}<br>{{.Name}}{{end}}<br><span class="muted">{{.TypeName}} · {{.ExporterID}}</span></td>
<td class="state">{{.StateName}}</td>
<td class="health h-{{.HealthClass}}">{{.HealthName}}</td>
<td><svg class="health-chart" width="{{$.W}}" height="14" viewBox="0 0 {{$.W}} 14" role="img" aria-label="health history">
{{range .HealthBands}}<rect class="{{.Class}}" x="{{.X}}" y="0" width="{{.W}}" height="14"><title>{{.Title}}</title></rect>{{end}}</svg></td>
<td><svg class="throughput-chart" width="{{$.W}}" height="{{$.H}}" viewBox="0 0 {{$.W}} {{$.H}}" role="img" aria-label="throughput">
<polyline class="tp" points="{{.ThroughputPoints}}"/><polyline class="fail" points="{{.FailurePoints}}"/></svg>
<br><span class="muted">{{printf "%.1f" .Throughput1m}}/s (1m) · peak {{printf "%.0f" .PeakThroughput}}/s</span></td>
<td class="num sent">{{.Sent}}</td><td class="num">{{.Failed}}</td><td class="num">{{.Dropped}}</td>
<td class="num">{{.QueueSize}}/{{.QueueCap}}</td>
<td class="err">{{if .LastError}}{{.LastError}}<br><span class="muted">{{.LastErrorAt}} · {{.FailedAttempts}} failed attempts</span>{{end}}</td>
<td>{{.Op}}</td>
</tr>{{end}}
</tbody></table>{{end}}{{end}}`))

type pageData struct {
	Providers []statusView
	Store     *storeView
	Registry  provider.RegistryHealth
	Now       string
	Refresh   time.Duration
	W, H      int
}

// storeView is the store and stream hub of the collector, when it has a
// metrics_store extension.
type storeView struct {
	HeadSeries                   uint64
	Appended, Rejected           int64
	IngestRate                   float64
	Blocks                       int
	DiskBytes, StreamMemoryBytes int64
	Subscriptions, Streams       int
}

// storeStatus finds the collector's store (a datapath.Provider extension).
func storeStatus(host component.Host) *storeView {
	if host == nil {
		return nil
	}
	for _, ext := range host.GetExtensions() {
		p, ok := ext.(datapath.Provider)
		if !ok {
			continue
		}
		sink := p.Sink()
		if sink == nil {
			continue
		}
		st, hub := sink.Store(), sink.Hub()
		return &storeView{
			HeadSeries: st.HeadStats(0).NumSeries, Appended: st.Stats().Total(), Rejected: st.Rejected(),
			IngestRate: st.Stats().Rate(time.Minute), Blocks: len(st.Blocks()), DiskBytes: st.DiskBytes(),
			Subscriptions: hub.Subscriptions(), Streams: hub.Streams(), StreamMemoryBytes: hub.MemoryBytes(),
		}
	}
	return nil
}

// statusHandler serves the page, its provider table (fragment) and the
// same data as JSON.
func statusHandler(engine *provider.Engine, host component.Host) http.Handler {
	mux := http.NewServeMux()
	render := func(w http.ResponseWriter, name string) {
		now := time.Now()
		data := pageData{Now: now.UTC().Format(time.RFC3339), Refresh: refreshInterval, W: chartWidth, H: chartHeight, Store: storeStatus(host),
			Registry: engine.RegistryHealth()}
		for _, p := range engine.Status() {
			data.Providers = append(data.Providers, view(p, now))
		}
		var buf bytes.Buffer
		if err := pageTmpl.ExecuteTemplate(&buf, name, data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:")
		_, _ = w.Write(buf.Bytes())
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { render(w, "page") })
	mux.HandleFunc("GET /fragment", func(w http.ResponseWriter, _ *http.Request) { render(w, "table") })
	mux.HandleFunc("GET /registry.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(engine.RegistryHealth())
	})
	mux.HandleFunc("GET /providers.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(engine.Status())
	})
	return mux
}

func view(p provider.ProviderStatus, now time.Time) statusView {
	v := statusView{
		ProviderStatus: p,
		TypeName:       strings.TrimPrefix(p.Type.String(), "PROVIDER_TYPE_"),
		StateName:      strings.TrimPrefix(p.State.String(), "PROVIDER_STATE_"),
		HealthName:     strings.TrimPrefix(p.Health.String(), "HEALTH_STATUS_"),
	}
	v.HealthClass = v.HealthName
	if !p.LastErrorTime.IsZero() {
		v.LastErrorAt = p.LastErrorTime.UTC().Format(time.RFC3339)
	}
	v.PeakThroughput = peak(p.Throughput)
	v.ThroughputPoints = polyline(p.Throughput, v.PeakThroughput)
	v.FailurePoints = polyline(p.Failures, max(peak(p.Failures), 1))
	v.HealthBands = bands(p.HealthHistory, now)
	if op := p.Operation; op != nil {
		v.Op = fmt.Sprintf("%s: %s %d%%", op.GetKind(), op.GetPhase(), op.GetPercent())
		if op.GetDone() {
			v.Op = fmt.Sprintf("%s: %s", op.GetKind(), op.GetPhase())
		}
	}
	return v
}

func peak(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// polyline maps a series onto the chart: oldest at the left, top at peak.
func polyline(xs []float64, top float64) string {
	if len(xs) < 2 {
		return ""
	}
	if top <= 0 {
		top = 1
	}
	var b strings.Builder
	for i, x := range xs {
		px := float64(i) * chartWidth / float64(len(xs)-1)
		py := chartHeight - 1 - (x/top)*(chartHeight-2)
		fmt.Fprintf(&b, "%.1f,%.1f ", px, py)
	}
	return strings.TrimSpace(b.String())
}

// bands turns the health transitions into a timeline of the last healthSpan.
func bands(hist []*pb.HealthEvent, now time.Time) []band {
	from := now.Add(-healthSpan)
	scale := func(t time.Time) float64 {
		return float64(t.Sub(from)) / float64(healthSpan) * chartWidth
	}
	cur, curAt := pb.HealthStatus_HEALTH_STATUS_UNSPECIFIED, from
	var out []band
	emit := func(until time.Time, status pb.HealthStatus, since time.Time) {
		x0, x1 := scale(since), scale(until)
		if x1-x0 <= 0 {
			return
		}
		name := strings.TrimPrefix(status.String(), "HEALTH_STATUS_")
		out = append(out, band{X: x0, W: x1 - x0, Class: name, Title: name + " since " + since.UTC().Format(time.RFC3339)})
	}
	for _, ev := range hist {
		t := ev.GetTime().AsTime()
		if t.Before(from) {
			cur = ev.GetStatus()
			continue
		}
		emit(t, cur, curAt)
		cur, curAt = ev.GetStatus(), t
	}
	emit(now, cur, curAt)
	return out
}

// startStatusPage serves the status page when configured.
func (x *managementExtension) startStatusPage(ctx context.Context, host component.Host) error {
	if !x.cfg.StatusPage.HasValue() {
		return nil
	}
	hcfg := x.cfg.StatusPage.Get()
	srv, err := hcfg.ToServer(ctx, host.GetExtensions(), x.settings.TelemetrySettings, statusHandler(x.engine, host))
	if err != nil {
		return fmt.Errorf("status page: create HTTP server: %w", err)
	}
	ln, err := hcfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("status page: listen on %s: %w", hcfg.NetAddr.Endpoint, err)
	}
	x.statusSrv, x.statusLn = srv, ln
	x.settings.Logger.Info("Serving the providers status page", zap.String("endpoint", ln.Addr().String()))
	x.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	return nil
}
