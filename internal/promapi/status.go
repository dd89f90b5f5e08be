package promapi

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

// StatusInfo is what the status endpoints report about the running
// collector; the receiver fills it from its settings and config.
type StatusInfo struct {
	// Version is the collector's build version (receiver.Settings.BuildInfo.Version).
	Version string
	// Query is the effective query configuration, reported by
	// /api/v1/status/flags.
	Query query.Config
}

// Option configures Handler.
type Option func(*api)

// WithStatus sets what the status endpoints report.
func WithStatus(info StatusInfo) Option {
	return func(a *api) { a.status = info }
}

// engineVersion returns the Prometheus release whose engine and API this
// build embeds: module github.com/prometheus/prometheus v0.3XY.Z is
// Prometheus 3.XY.Z. Grafana parses buildinfo's version as semver to pick
// features, so this, not our own version, goes into "version".
func engineVersion() string {
	const fallback = "3.0.0"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fallback
	}
	for _, d := range bi.Deps {
		if d.Path != "github.com/prometheus/prometheus" {
			continue
		}
		if d.Replace != nil {
			d = d.Replace
		}
		return promRelease(d.Version, fallback)
	}
	return fallback
}

// promRelease maps a module version "v0.316.0" to the release "3.16.0".
func promRelease(mod, fallback string) string {
	parts := strings.SplitN(strings.TrimPrefix(mod, "v"), ".", 3)
	if len(parts) != 3 || parts[0] != "0" {
		return fallback
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil || minor < 100 {
		return fallback
	}
	patch := parts[2]
	if i := strings.IndexAny(patch, "-+"); i >= 0 {
		patch = patch[:i]
	}
	return fmt.Sprintf("%d.%d.%s", minor/100, minor%100, patch)
}

// registerStatus adds the status, rules, alerts, exemplars and health
// endpoints, as Prometheus' web/api/v1 and web/web.go answer them.
func (a *api) registerStatus(mux *http.ServeMux) {
	a.started = time.Now()
	a.engineVersion = engineVersion()
	mux.HandleFunc("GET /api/v1/status/buildinfo", a.buildInfo)
	mux.HandleFunc("GET /api/v1/status/config", a.config)
	mux.HandleFunc("GET /api/v1/status/flags", a.flags)
	mux.HandleFunc("GET /api/v1/status/runtimeinfo", a.runtimeInfo)
	mux.HandleFunc("GET /api/v1/status/tsdb", a.tsdbStatus)
	mux.HandleFunc("GET /api/v1/status/walreplay", a.walReplay)
	mux.HandleFunc("GET /api/v1/rules", a.rules)
	mux.HandleFunc("GET /api/v1/alerts", a.alerts)
	mux.HandleFunc("GET /api/v1/alertmanagers", a.alertmanagers)
	mux.HandleFunc("GET /api/v1/query_exemplars", a.queryExemplars)
	mux.HandleFunc("POST /api/v1/query_exemplars", a.queryExemplars)
	mux.HandleFunc("GET /api/v1/format_query", a.formatQuery)
	mux.HandleFunc("POST /api/v1/format_query", a.formatQuery)
	registerHealth(mux, func() bool { return a.st != nil })
}

// registerHealth adds /-/healthy and /-/ready; ready answers 503 until
// ready() holds (the store is open).
func registerHealth(mux *http.ServeMux, ready func() bool) {
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, "metricsmodule Prometheus API is Healthy.\n")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "metricsmodule Prometheus API is not ready: the store is not open.\n")
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(w, "metricsmodule Prometheus API is Ready.\n")
	})
}

// prometheusVersion is Prometheus' PrometheusVersion.
type prometheusVersion struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// buildInfo answers the Prometheus release of the embedded engine in
// "version" (semver, for Grafana's feature detection) and our own build
// in "revision" ("metricsmodule <version>").
func (a *api) buildInfo(w http.ResponseWriter, _ *http.Request) {
	v := a.status.Version
	if v == "" {
		v = "unknown"
	}
	ok(w, prometheusVersion{
		Version:   a.engineVersion,
		Revision:  "metricsmodule " + v,
		Branch:    "",
		GoVersion: runtime.Version(),
	}, nil)
}

// config answers a minimal honest configuration: an empty global section
// (the collector does not scrape), and the rule files and Alertmanagers in
// force when rules are evaluated.
func (a *api) config(w http.ResponseWriter, _ *http.Request) {
	yaml := "# metricsmodule " + a.status.Version + ": no scrape or remote configuration;\n" +
		"# the query settings are under /api/v1/status/flags.\n" +
		"global: {}\n"
	if a.rulesSrc != nil {
		_, files, _ := a.rulesSrc.LastLoad()
		if len(files) > 0 {
			yaml += "rule_files:\n"
			for _, f := range files {
				yaml += "  - " + strconv.Quote(f) + "\n"
			}
		}
		active, _ := a.rulesSrc.Alertmanagers()
		for _, u := range active {
			yaml += "# alerts are sent to " + u.String() + "\n"
		}
	}
	ok(w, struct {
		YAML string `json:"yaml"`
	}{YAML: yaml}, nil)
}

// flags answers the effective query settings, keyed by their receiver
// config keys.
func (a *api) flags(w http.ResponseWriter, _ *http.Request) {
	q := a.status.Query
	ok(w, map[string]string{
		"query.timeout":             q.Timeout.String(),
		"query.max_samples":         strconv.Itoa(q.MaxSamples),
		"query.max_series":          strconv.Itoa(q.MaxSeries),
		"query.lookback_delta":      q.LookbackDelta.String(),
		"query.max_range_steps":     strconv.FormatInt(q.MaxRangeSteps, 10),
		"query.max_subquery_steps":  strconv.FormatInt(q.MaxSubquerySteps, 10),
		"query.max_subquery_points": strconv.FormatInt(q.MaxSubqueryPoints, 10),
		"query.max_concurrent":      strconv.Itoa(q.MaxConcurrent),
		"query.max_queued":          strconv.Itoa(q.MaxQueued),
		"query.cache.enabled":       strconv.FormatBool(q.Cache.Enabled),
		"query.cache.max_bytes":     strconv.FormatInt(q.Cache.MaxBytes, 10),
		"query.cache.max_freshness": q.Cache.MaxFreshness.String(),
	}, nil)
}

// runtimeInfo is Prometheus' RuntimeInfo.
type runtimeInfo struct {
	StartTime           time.Time `json:"startTime"`
	CWD                 string    `json:"CWD"`
	Hostname            string    `json:"hostname"`
	ServerTime          time.Time `json:"serverTime"`
	ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
	LastConfigTime      time.Time `json:"lastConfigTime"`
	CorruptionCount     int64     `json:"corruptionCount"`
	GoroutineCount      int       `json:"goroutineCount"`
	GOMAXPROCS          int       `json:"GOMAXPROCS"`
	GOMEMLIMIT          int64     `json:"GOMEMLIMIT"`
	GOGC                string    `json:"GOGC"`
	GODEBUG             string    `json:"GODEBUG"`
	StorageRetention    string    `json:"storageRetention"`
}

func (a *api) runtimeInfo(w http.ResponseWriter, _ *http.Request) {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = err.Error()
	}
	host, err := os.Hostname()
	if err != nil {
		host = err.Error()
	}
	reloadOK, lastConfig := true, a.started
	if a.rulesSrc != nil {
		at, _, err := a.rulesSrc.LastLoad()
		reloadOK, lastConfig = err == nil, at
	}
	ok(w, runtimeInfo{
		StartTime:           a.started.UTC(),
		CWD:                 cwd,
		Hostname:            host,
		ServerTime:          time.Now().UTC(),
		ReloadConfigSuccess: reloadOK,
		LastConfigTime:      lastConfig.UTC(),
		GoroutineCount:      runtime.NumGoroutine(),
		GOMAXPROCS:          runtime.GOMAXPROCS(0),
		GOMEMLIMIT:          debug.SetMemoryLimit(-1),
		GOGC:                os.Getenv("GOGC"),
		GODEBUG:             os.Getenv("GODEBUG"),
	}, nil)
}

// tsdbStat is Prometheus' TSDBStat.
type tsdbStat struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// tsdbHeadStats is Prometheus' HeadStats.
type tsdbHeadStats struct {
	NumSeries     uint64 `json:"numSeries"`
	NumLabelPairs int    `json:"numLabelPairs"`
	ChunkCount    int64  `json:"chunkCount"`
	MinTime       int64  `json:"minTime"`
	MaxTime       int64  `json:"maxTime"`
}

// tsdbStatus is Prometheus' TSDBStatus.
type tsdbStatus struct {
	HeadStats                   tsdbHeadStats `json:"headStats"`
	SeriesCountByMetricName     []tsdbStat    `json:"seriesCountByMetricName"`
	LabelValueCountByLabelName  []tsdbStat    `json:"labelValueCountByLabelName"`
	MemoryInBytesByLabelName    []tsdbStat    `json:"memoryInBytesByLabelName"`
	SeriesCountByLabelValuePair []tsdbStat    `json:"seriesCountByLabelValuePair"`
}

// maxTSDBLimit is Prometheus' bound of status/tsdb's limit.
const maxTSDBLimit = 10000

// tsdbStatus answers the head's cardinality from store.HeadStats. The
// store does not expose chunk counts, label pairs, memory by label name or
// series by label pair: those are 0 and empty.
func (a *api) tsdbStatus(w http.ResponseWriter, r *http.Request) {
	limit := 10
	if s := r.FormValue("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 {
			fail(w, badData("invalid parameter \"limit\": %q: limit must be a positive number", s))
			return
		}
		if limit > maxTSDBLimit {
			fail(w, badData("invalid parameter \"limit\": limit must not exceed %d", maxTSDBLimit))
			return
		}
	}
	if a.st == nil {
		fail(w, &query.Error{Kind: query.KindUnavailable, Err: errors.New("no local store: status/tsdb needs the metrics_store extension")})
		return
	}
	hs := a.st.HeadStats(limit)
	out := tsdbStatus{
		HeadStats:                   tsdbHeadStats{NumSeries: hs.NumSeries, MinTime: hs.MinTime, MaxTime: hs.MaxTime},
		SeriesCountByMetricName:     make([]tsdbStat, 0, len(hs.SeriesPerMetric)),
		LabelValueCountByLabelName:  make([]tsdbStat, 0, len(hs.LabelValues)),
		MemoryInBytesByLabelName:    []tsdbStat{},
		SeriesCountByLabelValuePair: []tsdbStat{},
	}
	if hs.NumSeries == 0 {
		// an empty head reports inverted bounds; answer an empty range
		out.HeadStats.MinTime, out.HeadStats.MaxTime = 0, 0
	}
	for _, m := range hs.SeriesPerMetric {
		out.SeriesCountByMetricName = append(out.SeriesCountByMetricName, tsdbStat{Name: m.Name, Value: m.Count})
	}
	for _, l := range hs.LabelValues {
		out.LabelValueCountByLabelName = append(out.LabelValueCountByLabelName, tsdbStat{Name: l.Name, Value: l.Count})
	}
	ok(w, out, nil)
}

// walReplay answers a finished replay: the store opens (and replays its
// WAL) before the API starts.
func (a *api) walReplay(w http.ResponseWriter, _ *http.Request) {
	ok(w, struct {
		Min     int `json:"min"`
		Max     int `json:"max"`
		Current int `json:"current"`
	}{}, nil)
}
