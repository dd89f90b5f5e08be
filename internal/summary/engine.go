package summary

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Store is the read-only view of the store a summary reads, in the way
// Prometheus' web API reads its TSDB through TSDBAdminStats: statistics the
// store keeps up to date as data arrives (series per metric name and label
// cardinality from the head's series lifecycle, ingest rates and counter
// resets per minute), so a summary costs about the number of metric names,
// not the number of series. *store.Store implements it.
type Store interface {
	// SeriesPerMetric returns the head's series per metric name.
	SeriesPerMetric() map[string]int64
	// SeriesPerMetricMatching counts the stored series matching ms per
	// metric name (only for filters with label matchers).
	SeriesPerMetricMatching(ctx context.Context, ms ...*labels.Matcher) (map[string]int64, error)
	// LabelCardinality returns the distinct values per label name in the head.
	LabelCardinality() map[string]int64
	// Metadata returns the type, unit and help of every metric family.
	Metadata() map[string]metadata.Metadata
	// MetadataOf returns the metadata of one family.
	MetadataOf(family string) (metadata.Metadata, bool)
	// HeadStats returns the head's series and time range (limit 0: no index walk).
	HeadStats(limit int) store.HeadStats
	// Blocks returns the persisted blocks, oldest first.
	Blocks() []store.BlockInfo
	// DiskBytes returns the size of the data directory.
	DiskBytes() int64
	// Rejected returns the samples refused since start.
	Rejected() int64
	// Stats returns the per-minute ingest counts.
	Stats() *store.IngestStats
}

var _ Store = (*store.Store)(nil)

// Kind classifies an Error.
type Kind int

const (
	// KindInvalid is a request field out of its range: fix the request.
	KindInvalid Kind = iota + 1
	// KindUnavailable is a store read that failed: retry.
	KindUnavailable
)

// Error is a refused request (Field names the field, Fix how to correct it)
// or a failed read of the store (Err).
type Error struct {
	Kind    Kind
	Field   string
	Message string
	Fix     string
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Field + ": " + e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		msg += " (fix: " + e.Fix + ")"
	}
	return msg
}

// Unwrap returns the store's error.
func (e *Error) Unwrap() error { return e.Err }

// Request defaults and bounds.
const (
	DefaultTopN      = 10
	DefaultWindow    = time.Hour
	MinWindow        = time.Minute
	MaxWindow        = 90 * time.Minute
	historyKeep      = 3 * time.Hour
	labelsPerTopN    = 5
	cardinalitySlice = time.Minute
)

// Config configures an Engine.
type Config struct {
	// SeriesLimit is the receiver's limits.max_series_per_metric (0: none),
	// for the series_limit_near rule.
	SeriesLimit int64
	// Recommendations are the thresholds of the rules (zero fields: defaults).
	Recommendations Thresholds
	// PipelineHealth reports whether the pipeline refused batches recently
	// and says so in a message; nil reports a healthy pipeline.
	PipelineHealth func(now time.Time) (degraded bool, message string)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Engine answers GetMetricsSummary from the statistics of a Store, and
// samples label cardinality once a minute for trends.
type Engine struct {
	st   Store
	cfg  Config
	hist history
}

// New returns an engine over st.
func New(st Store, cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Engine{st: st, cfg: cfg}
}

// SampleCardinality records the label cardinality at now, for the growth
// of labels over a trend window.
func (e *Engine) SampleCardinality(now time.Time) { e.hist.add(now, e.st.LabelCardinality()) }

// Run samples label cardinality now and every minute until stop closes.
func (e *Engine) Run(stop <-chan struct{}) {
	t := time.NewTicker(cardinalitySlice)
	defer t.Stop()
	e.SampleCardinality(e.cfg.Now())
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			e.SampleCardinality(e.cfg.Now())
		}
	}
}

// Summarize reports totals, top metrics, label cardinality, storage,
// health, trends and (on request) recommendations for the metrics the
// request's filter selects (package metricfilter; types by the store's
// metadata, label matchers over the stored series). A refused filter is a
// *metricfilter.Error, a refused field or a failed store read an *Error.
func (e *Engine) Summarize(ctx context.Context, req *pb.GetMetricsSummaryRequest) (*pb.GetMetricsSummaryResponse, error) {
	topN := int(req.GetTopN())
	if topN <= 0 {
		topN = DefaultTopN
	}
	window := DefaultWindow
	if req.GetTrendWindow() != nil {
		window = req.GetTrendWindow().AsDuration()
	}
	if window < MinWindow || window > MaxWindow {
		return nil, &Error{Kind: KindInvalid, Field: "trend_window", Message: fmt.Sprintf("%s is outside [1m, 90m]", window),
			Fix: "set trend_window between 1m and 90m, or leave it unset for 1h"}
	}
	keep, filtered, err := e.filter(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	st := e.st
	stats := st.Stats()

	resp := &pb.GetMetricsSummaryResponse{GeneratedAt: timestamppb.New(now)}
	totals := &pb.SummaryTotals{
		IngestRate_1M:  stats.Rate(time.Minute),
		IngestRate_5M:  stats.Rate(5 * time.Minute),
		IngestRate_15M: stats.Rate(15 * time.Minute),
		MetricsByType:  map[string]int64{},
	}
	seriesPer := filtered
	if seriesPer == nil {
		seriesPer = st.SeriesPerMetric()
	}
	for name, n := range seriesPer {
		if !keep(name) {
			delete(seriesPer, name)
			continue
		}
		totals.Series += n
		totals.MetricNames++
	}
	for name, md := range st.Metadata() {
		if keep(name) {
			totals.MetricsByType[string(md.Type)]++
		}
	}
	var blockSamples uint64
	blocks := st.Blocks()
	for _, b := range blocks {
		blockSamples += b.NumSamples
	}
	totals.Samples = int64(blockSamples) + stats.Total()
	resp.Totals = totals

	// top by series, top by rate
	familyRates := stats.FamilyRates(5 * time.Minute)
	rates := make(map[string]float64, len(familyRates))
	for _, fr := range familyRates {
		rates[fr.Family] = fr.Rate
	}
	for _, n := range topNames(seriesPer, topN) {
		resp.TopBySeries = append(resp.TopBySeries, &pb.MetricRanking{Name: n, Series: seriesPer[n], Rate: rates[n], Type: e.typeOf(n)})
	}
	for _, fr := range familyRates {
		if len(resp.TopByRate) == topN {
			break
		}
		if keep(fr.Family) {
			resp.TopByRate = append(resp.TopByRate, &pb.MetricRanking{Name: fr.Family, Rate: fr.Rate, Series: seriesPer[fr.Family], Type: e.typeOf(fr.Family)})
		}
	}

	// label cardinality now vs a window ago
	nowCard := st.LabelCardinality()
	beforeCard := e.hist.at(now.Add(-window))
	for _, l := range topNames(nowCard, labelsPerTopN*topN) {
		lc := &pb.LabelCardinality{Label: l, DistinctValues: nowCard[l], Growth: 1}
		if b := beforeCard[l]; b > 0 {
			lc.Growth = float64(nowCard[l]) / float64(b)
		}
		resp.LabelCardinality = append(resp.LabelCardinality, lc)
	}

	// storage
	hs := st.HeadStats(0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	resp.Storage = &pb.StorageStats{
		DiskBytes:   st.DiskBytes(),
		MemoryBytes: int64(ms.HeapInuse),
		HeadSeries:  int64(hs.NumSeries),
		Blocks:      int64(len(blocks)),
	}
	if minT := hs.MinTime; hs.NumSeries > 0 {
		if len(blocks) > 0 {
			minT = blocks[0].MinTime
		}
		resp.Storage.MinTime = timestamppb.New(time.UnixMilli(minT))
		resp.Storage.MaxTime = timestamppb.New(time.UnixMilli(hs.MaxTime))
	}

	// health
	degraded, pipelineMsg := false, "the pipeline accepted every batch in the last 5 minutes"
	if e.cfg.PipelineHealth != nil {
		degraded, pipelineMsg = e.cfg.PipelineHealth(now)
	}
	rejected := st.Rejected()
	resp.Health = append(resp.Health,
		&pb.ComponentHealth{Name: "pipeline", Status: healthOf(degraded), Message: pipelineMsg},
		&pb.ComponentHealth{Name: "store", Status: healthOf(rejected > 0), Message: storeMessage(rejected)},
	)

	// trends
	rateNow, rateBefore, famNow, famBefore := stats.Trend(window)
	resp.Trends = append(resp.Trends, trend("*", rateNow, rateBefore))
	var famNames []string
	for f := range famNow {
		if keep(f) {
			famNames = append(famNames, f)
		}
	}
	for f := range famBefore {
		if _, ok := famNow[f]; !ok && keep(f) {
			famNames = append(famNames, f)
		}
	}
	sort.Slice(famNames, func(i, j int) bool {
		di, dj := abs(famNow[famNames[i]]-famBefore[famNames[i]]), abs(famNow[famNames[j]]-famBefore[famNames[j]])
		if di != dj {
			return di > dj
		}
		return famNames[i] < famNames[j]
	})
	for _, f := range famNames[:min(topN, len(famNames))] {
		resp.Trends = append(resp.Trends, trend(f, famNow[f], famBefore[f]))
	}

	if req.GetIncludeRecommendations() {
		lastSeen := map[string]time.Time{}
		for f, t := range stats.LastSeen() {
			if keep(f) {
				lastSeen[f] = t
			}
		}
		resets := map[string]float64{}
		for f, n := range stats.Resets(window) {
			if keep(f) {
				resets[f] = float64(n)
			}
		}
		in := Input{
			Now: now, Window: window,
			LabelValues: nowCard, LabelValuesBefore: beforeCard,
			CounterResets:   resets,
			LastSeen:        lastSeen,
			SeriesPerMetric: seriesPer,
			SeriesLimit:     e.cfg.SeriesLimit,
			RejectedSamples: rejected,
			RateNow:         rateNow, RateBefore: rateBefore,
			Thresholds: e.cfg.Recommendations,
		}
		for _, rec := range Recommend(in) {
			sev := pb.Severity_SEVERITY_INFO
			if rec.Severity == Warning {
				sev = pb.Severity_SEVERITY_WARNING
			}
			resp.Recommendations = append(resp.Recommendations, &pb.Recommendation{
				Rule: rec.Rule, Severity: sev, Subject: rec.Subject, Message: rec.Message, Action: rec.Action,
			})
		}
	}
	return resp, nil
}

// filter returns what the summary keeps of a metric or family name: names,
// exclusions and types of the filter; with label matchers also the series
// per name restricted to the matching series (nil without label matchers:
// the head's counts apply).
func (e *Engine) filter(ctx context.Context, f *pb.MetricFilter) (keep func(string) bool, series map[string]int64, err error) {
	c, err := metricfilter.Compile(f)
	if err != nil {
		return nil, nil, err
	}
	if c.Empty() {
		return func(string) bool { return true }, nil, nil
	}
	keep = func(name string) bool {
		if !c.MatchName(name) {
			return false
		}
		if c.HasTypes() {
			t, unit := e.storedType(name)
			if !c.MatchType(t, unit) {
				return false
			}
		}
		return true
	}
	if !c.HasLabelMatchers() {
		return keep, nil, nil
	}
	series, err = e.st.SeriesPerMetricMatching(ctx, c.Matchers()...)
	if err != nil {
		return nil, nil, &Error{Kind: KindUnavailable, Field: "filter.label_matchers", Message: "reading the store's series", Err: err}
	}
	names := keep
	keep = func(name string) bool {
		// a family name (rates, trends, metadata) has its classic
		// histogram or summary series under suffixed names
		matching := series[name] > 0 || series[name+"_bucket"] > 0 || series[name+"_count"] > 0
		return matching && names(name)
	}
	return keep, series, nil
}

// storedType returns the API type and unit of a stored series name from the
// store's metadata (classic histogram and summary series by their family);
// the unit is the API's ("s" for the store's "seconds"), so that
// metricfilter's timer rule applies to stored histograms as to pipeline ones.
func (e *Engine) storedType(name string) (pb.MetricType, string) {
	return metricfilter.StoredType(e.st.MetadataOf, name)
}

func (e *Engine) typeOf(name string) pb.MetricType {
	t, _ := e.storedType(name)
	return t
}

// topNames returns the n names with the highest counts, ties by name.
func topNames(counts map[string]int64, n int) []string {
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if counts[names[i]] != counts[names[j]] {
			return counts[names[i]] > counts[names[j]]
		}
		return names[i] < names[j]
	})
	return names[:min(n, len(names))]
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func healthOf(degraded bool) pb.HealthStatus {
	if degraded {
		return pb.HealthStatus_HEALTH_STATUS_DEGRADED
	}
	return pb.HealthStatus_HEALTH_STATUS_HEALTHY
}

func trend(name string, now, before float64) *pb.Trend {
	t := &pb.Trend{Name: name, CurrentRate: now, PreviousRate: before}
	if before > 0 {
		t.ChangeRatio = now / before
	}
	return t
}

func storeMessage(rejected int64) string {
	if rejected == 0 {
		return "all samples stored"
	}
	return "samples refused since start (out of order, too old or duplicate): " + strconv.FormatInt(rejected, 10)
}

// history keeps, once a minute, the distinct values per label, so trends
// compare now with a window ago.
type history struct {
	mu    sync.Mutex
	snaps []snapshot // oldest first
}

type snapshot struct {
	at     time.Time
	values map[string]int64
}

func (h *history) add(at time.Time, values map[string]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snaps = append(h.snaps, snapshot{at: at, values: values})
	for len(h.snaps) > 0 && at.Sub(h.snaps[0].at) > historyKeep {
		h.snaps = h.snaps[1:]
	}
}

// at returns the newest snapshot taken at or before t.
func (h *history) at(t time.Time) map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out map[string]int64
	for _, s := range h.snaps {
		if s.at.After(t) {
			break
		}
		out = s.values
	}
	return out
}
