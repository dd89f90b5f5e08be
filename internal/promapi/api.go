// Package promapi serves the read endpoints of the Prometheus HTTP API
// (/api/v1/query, query_range, series, labels, label values, metadata) with
// the same JSON as Prometheus, so a Grafana Prometheus data source works
// against the collector.
package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/store"
)

// LabelIndex answers label names and values of registered metrics that
// keep an index, without scanning the store.
type LabelIndex interface {
	IndexedLabels(metric string) ([]string, bool)
	IndexedValues(metric, label string) ([]string, bool)
}

// Handler returns the API handler. With a remote query backend every
// request is proxied to it; otherwise the engine and the store answer.
// index, when it returns non-nil, answers label requests for one indexed
// metric (match[]={__name__="m"}).
func Handler(eng *query.Engine, st *store.Store, remoteEndpoint string, index func() LabelIndex, opts ...Option) (http.Handler, error) {
	mux := http.NewServeMux()
	a := &api{eng: eng, st: st, index: index}
	for _, o := range opts {
		o(a)
	}
	if remoteEndpoint != "" {
		u, err := url.Parse(remoteEndpoint)
		if err != nil {
			return nil, fmt.Errorf("remote endpoint: %w", err)
		}
		proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			// the caller's credentials are for this server, not the backend:
			// the backend gets only the configured headers (its tenant,
			// its token), which a caller cannot override
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Cookie")
			for k, v := range a.remoteHeaders {
				pr.Out.Header.Set(k, v)
			}
		}}
		// only the read API: the backend's write and admin endpoints
		// (/api/v1/write, /api/v1/import, /api/v1/admin/...) stay behind it
		for _, path := range remoteReadPaths {
			mux.Handle(path, proxy)
		}
		registerHealth(mux, func() bool { return true })
		mux.Handle("/federate", proxy)
		return mux, nil
	}
	mux.HandleFunc("/api/v1/query", a.query)
	mux.HandleFunc("/api/v1/query_range", a.queryRange)
	mux.HandleFunc("/api/v1/series", a.series)
	mux.HandleFunc("/api/v1/labels", a.labelNames)
	mux.HandleFunc("/api/v1/label/{name}/values", a.labelValues)
	mux.HandleFunc("/api/v1/metadata", a.metadata)
	a.registerStatus(mux)
	a.routes(mux)
	return jsonErrors(mux), nil
}

// WithRemoteHeaders sets the headers added to every request proxied to the
// remote backend (query.remote.headers, or the shared store's headers).
func WithRemoteHeaders(h map[string]string) Option {
	return func(a *api) { a.remoteHeaders = h }
}

// remoteReadPaths are the paths proxied to a remote backend.
var remoteReadPaths = []string{
	"/api/v1/query", "/api/v1/query_range", "/api/v1/query_exemplars", "/api/v1/format_query",
	"/api/v1/series", "/api/v1/labels", "/api/v1/label/", "/api/v1/metadata", "/api/v1/status/",
	"/api/v1/read", "/api/v1/rules", "/api/v1/alerts",
}

type api struct {
	eng   *query.Engine
	st    *store.Store
	index func() LabelIndex

	status        StatusInfo
	started       time.Time
	remoteHeaders map[string]string
	engineVersion string
	rulesSrc      RuleSource
}

// indexedMetric returns the metric name when the request selects exactly
// one metric by name and that metric is indexed.
func (a *api) indexedMetric(matchers [][]*labels.Matcher) (LabelIndex, string) {
	if a.index == nil || len(matchers) != 1 || len(matchers[0]) != 1 {
		return nil, ""
	}
	m := matchers[0][0]
	if m.Name != labels.MetricName || m.Type != labels.MatchEqual {
		return nil, ""
	}
	idx := a.index()
	if idx == nil {
		return nil, ""
	}
	if _, ok := idx.IndexedLabels(m.Value); !ok {
		return nil, ""
	}
	return idx, m.Value
}

type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, r response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}

func ok(w http.ResponseWriter, data any, warnings []string) {
	writeJSON(w, http.StatusOK, response{Status: "success", Data: data, Warnings: warnings})
}

func fail(w http.ResponseWriter, err error) {
	code, typ := http.StatusInternalServerError, "internal"
	var qe *query.Error
	if errors.As(err, &qe) {
		switch qe.Kind {
		case query.KindBadQuery:
			code, typ = http.StatusBadRequest, "bad_data"
		case query.KindTimeout:
			code, typ = http.StatusServiceUnavailable, "timeout"
		case query.KindCanceled:
			code, typ = 499, "canceled"
		case query.KindTooLarge, query.KindExecution:
			code, typ = http.StatusUnprocessableEntity, "execution"
		case query.KindUnavailable:
			code, typ = http.StatusServiceUnavailable, "unavailable"
		case query.KindOverloaded:
			code, typ = http.StatusServiceUnavailable, "unavailable"
			w.Header().Set("Retry-After", "1")
		}
	}
	writeJSON(w, code, response{Status: "error", ErrorType: typ, Error: err.Error()})
}

func badData(format string, args ...any) error {
	return &query.Error{Kind: query.KindBadQuery, Err: fmt.Errorf(format, args...)}
}

// parseTime accepts RFC 3339 or Unix seconds, as Prometheus does, within
// the times Prometheus can represent in milliseconds.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	var t time.Time
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f < float64(minTime.Unix()) || f > float64(maxTime.Unix()) {
			return time.Time{}, fmt.Errorf("%q is outside the representable range [%s, %s]", s, minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
		}
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
	}
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("%q is outside the representable range [%s, %s]", s, minTime.Format(time.RFC3339), maxTime.Format(time.RFC3339))
	}
	return t, nil
}

// parseDuration accepts Prometheus durations ("5m") or seconds ("300"),
// refusing negative ones.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		switch {
		case math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64:
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		case ns < 0:
			return 0, fmt.Errorf("%q is negative; use a positive duration", s)
		}
		return time.Duration(ns), nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is negative; use a positive duration", s)
	}
	d, err := parseModelDuration(s)
	if err != nil {
		return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
	}
	return d, nil
}

type resultData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     rawResult        `json:"result"`
	Stats      *queryStats      `json:"stats,omitempty"`
}

type queryStats struct {
	SamplesRead int64  `json:"samplesRead"`
	PeakSamples int    `json:"peakSamples"`
	ExecTime    string `json:"execTime"`
	QueueTime   string `json:"queueTime"`
	CacheHit    bool   `json:"cacheHit"`
}

func (a *api) run(w http.ResponseWriter, r *http.Request, req query.Request) {
	// timeout= lowers query.timeout, as in Prometheus
	if t := r.FormValue("timeout"); t != "" {
		d, err := parseDuration(t)
		if err != nil {
			fail(w, badData("invalid parameter \"timeout\": %v", err))
			return
		}
		if d == 0 {
			fail(w, badData("invalid parameter \"timeout\": must be positive"))
			return
		}
		req.Timeout = d
	}
	res, err := a.eng.Do(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	value := res.Value
	if value == nil {
		value = promql.Vector{}
	}
	raw, err := appendResult(nil, value)
	if err != nil {
		fail(w, err)
		return
	}
	data := resultData{ResultType: value.Type(), Result: raw}
	if r.FormValue("stats") != "" {
		data.Stats = &queryStats{
			SamplesRead: res.Stats.SamplesRead, PeakSamples: res.Stats.PeakSamples,
			ExecTime: res.Stats.Duration.String(), QueueTime: res.Stats.QueueTime.String(), CacheHit: res.Stats.CacheHit,
		}
	}
	writeJSON(w, http.StatusOK, response{Status: "success", Data: data, Warnings: res.Warnings, Infos: res.Infos})
}

func (a *api) query(w http.ResponseWriter, r *http.Request) {
	ts, err := parseTime(r.FormValue("time"), time.Now())
	if err != nil {
		fail(w, badData("invalid parameter \"time\": %v", err))
		return
	}
	a.run(w, r, query.Request{Query: r.FormValue("query"), Instant: true, Time: ts})
}

func (a *api) queryRange(w http.ResponseWriter, r *http.Request) {
	start, err := parseTime(r.FormValue("start"), time.Time{})
	if err != nil || r.FormValue("start") == "" {
		fail(w, badData("invalid parameter \"start\": %v", orMissing(err)))
		return
	}
	end, err := parseTime(r.FormValue("end"), time.Time{})
	if err != nil || r.FormValue("end") == "" {
		fail(w, badData("invalid parameter \"end\": %v", orMissing(err)))
		return
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		fail(w, badData("invalid parameter \"step\": %v", err))
		return
	}
	a.run(w, r, query.Request{Query: r.FormValue("query"), Start: start, End: end, Step: step})
}

func orMissing(err error) error {
	if err == nil {
		return errors.New("missing")
	}
	return err
}

var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
)

// selectParams parses start, end and match[] of the metadata endpoints.
func selectParams(r *http.Request) (start, end time.Time, matchers [][]*labels.Matcher, err error) {
	if err = r.ParseForm(); err != nil {
		return start, end, nil, badData("parse form: %v", err)
	}
	if start, err = parseTime(r.FormValue("start"), minTime); err != nil {
		return start, end, nil, badData("invalid parameter \"start\": %v", err)
	}
	if end, err = parseTime(r.FormValue("end"), maxTime); err != nil {
		return start, end, nil, badData("invalid parameter \"end\": %v", err)
	}
	for _, m := range r.Form["match[]"] {
		ms, perr := selectorParser.ParseMetricSelector(m)
		if perr != nil {
			return start, end, nil, badData("invalid parameter \"match[]\": %v", perr)
		}
		matchers = append(matchers, ms)
	}
	return start, end, matchers, nil
}

func limitParam(r *http.Request) (int, error) {
	s := r.FormValue("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badData("invalid parameter \"limit\": %q is not a non-negative integer", s)
	}
	return n, nil
}

func (a *api) querier(ctx context.Context, start, end time.Time) (storage.Querier, error) {
	q, err := a.st.Queryable().Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("open querier: %w", err)
	}
	_ = ctx
	return q, nil
}

func (a *api) series(w http.ResponseWriter, r *http.Request) {
	start, end, matchers, err := selectParams(r)
	if err != nil {
		fail(w, err)
		return
	}
	if len(matchers) == 0 {
		fail(w, badData("no match[] parameter provided"))
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	q, err := a.querier(r.Context(), start, end)
	if err != nil {
		fail(w, err)
		return
	}
	defer q.Close()
	hints := &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}
	var sets []storage.SeriesSet
	for _, ms := range matchers {
		sets = append(sets, q.Select(r.Context(), len(matchers) > 1, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge)
	out := []labels.Labels{}
	for set.Next() {
		out = append(out, set.At().Labels())
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	if err := set.Err(); err != nil {
		fail(w, err)
		return
	}
	ok(w, out, warnings(set.Warnings()))
}

func warnings(ws interface{ AsErrors() []error }) []string {
	var out []string
	for _, w := range ws.AsErrors() {
		out = append(out, w.Error())
	}
	return out
}

func (a *api) labelNames(w http.ResponseWriter, r *http.Request) {
	a.labelSet(w, r, func(idx LabelIndex, metric string) ([]string, bool) {
		names, ok := idx.IndexedLabels(metric)
		return append([]string{labels.MetricName}, names...), ok
	}, func(ctx context.Context, q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, hints, ms...)
	})
}

func (a *api) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = unescapeLabelName(name)
	}
	a.labelSet(w, r, func(idx LabelIndex, metric string) ([]string, bool) {
		return idx.IndexedValues(metric, name)
	}, func(ctx context.Context, q storage.Querier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, hints, ms...)
	})
}

// labelSet answers the label names and label values endpoints: from the
// registry's index when the request selects one indexed metric, otherwise
// as the union over the match[] selectors from the store.
func (a *api) labelSet(w http.ResponseWriter, r *http.Request,
	fromIndex func(LabelIndex, string) ([]string, bool),
	fromStore func(context.Context, storage.Querier, *storage.LabelHints, []*labels.Matcher) ([]string, annotations.Annotations, error),
) {
	start, end, matchers, err := selectParams(r)
	if err != nil {
		fail(w, err)
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	if idx, metric := a.indexedMetric(matchers); idx != nil {
		if vs, found := fromIndex(idx, metric); found {
			ok(w, vs, nil)
			return
		}
	}
	q, err := a.querier(r.Context(), start, end)
	if err != nil {
		fail(w, err)
		return
	}
	defer q.Close()
	hints := &storage.LabelHints{Limit: limit}
	set := map[string]struct{}{}
	var warns []string
	if len(matchers) == 0 {
		matchers = [][]*labels.Matcher{nil}
	}
	for _, ms := range matchers {
		vs, ws, err := fromStore(r.Context(), q, hints, ms)
		if err != nil {
			fail(w, err)
			return
		}
		warns = append(warns, warnings(ws)...)
		for _, v := range vs {
			set[v] = struct{}{}
		}
	}
	ok(w, sortedKeys(set, limit), warns)
}

func sortedKeys(m map[string]struct{}, limit int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

type metadataEntry struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

func (a *api) metadata(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r)
	if err != nil {
		fail(w, err)
		return
	}
	metric := r.FormValue("metric")
	out := map[string][]metadataEntry{}
	names := make([]string, 0)
	all := a.st.Metadata()
	for name := range all {
		if metric == "" || metric == name {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if limit > 0 && len(out) >= limit {
			break
		}
		m := all[name]
		out[name] = []metadataEntry{{Type: string(m.Type), Help: m.Help, Unit: m.Unit}}
	}
	ok(w, out, nil)
}

// unescapeLabelName decodes the U__ escaping of UTF-8 label names in URLs.
func unescapeLabelName(s string) string {
	s = strings.TrimPrefix(s, "U__")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+1 < len(s) && s[i+1] == '_' {
			b.WriteByte('_')
			i++
			continue
		}
		if s[i] == '_' {
			j := strings.IndexByte(s[i+1:], '_')
			if j > 0 {
				if r, err := strconv.ParseInt(s[i+1:i+1+j], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += j + 1
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
