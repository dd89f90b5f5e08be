package metricsservicereceiver

import (
	"context"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/query"
	"github.com/metricsmodule/metricsmodule/internal/summary"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// cardinalityHistory keeps, once a minute, the distinct values per label,
// so trends can compare now with a window ago.
type cardinalityHistory struct {
	mu    sync.Mutex
	snaps []cardinalitySnap // oldest first
}

type cardinalitySnap struct {
	at     time.Time
	values map[string]int64
}

const cardinalityKeep = 3 * time.Hour

func (h *cardinalityHistory) add(at time.Time, values map[string]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snaps = append(h.snaps, cardinalitySnap{at: at, values: values})
	for len(h.snaps) > 0 && at.Sub(h.snaps[0].at) > cardinalityKeep {
		h.snaps = h.snaps[1:]
	}
}

// at returns the newest snapshot taken at or before t.
func (h *cardinalityHistory) at(t time.Time) map[string]int64 {
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

// labelCardinality returns the distinct values per label name in the head.
func (r *metricsReceiver) labelCardinality() map[string]int64 {
	out := map[string]int64{}
	if r.store == nil {
		return out
	}
	for _, l := range r.store.HeadStats(1000).LabelValues {
		out[l.Name] = int64(l.Count)
	}
	return out
}

// cardinalityLoop snapshots label cardinality every minute.
func (r *metricsReceiver) cardinalityLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	r.cardinality.add(time.Now(), r.labelCardinality())
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.cardinality.add(now, r.labelCardinality())
		}
	}
}

func healthOf(ok bool, degraded bool) pb.HealthStatus {
	switch {
	case !ok:
		return pb.HealthStatus_HEALTH_STATUS_UNHEALTHY
	case degraded:
		return pb.HealthStatus_HEALTH_STATUS_DEGRADED
	default:
		return pb.HealthStatus_HEALTH_STATUS_HEALTHY
	}
}

// GetMetricsSummary reports totals, top metrics, cardinality, store size,
// health, trends and recommendations.
func (s *metricsService) GetMetricsSummary(ctx context.Context, req *pb.GetMetricsSummaryRequest) (*pb.GetMetricsSummaryResponse, error) {
	r := s.r
	if r.store == nil {
		return nil, status.Error(codes.FailedPrecondition,
			"GetMetricsSummary: needs the embedded store: add the store block to the metrics_service receiver config")
	}
	topN := int(req.TopN)
	if topN <= 0 {
		topN = 10
	}
	window := req.TrendWindow.AsDuration()
	if req.TrendWindow == nil {
		window = time.Hour
	}
	if window < time.Minute || window > 90*time.Minute {
		return nil, status.Errorf(codes.InvalidArgument, "trend_window: %s is outside [1m, 90m]", window)
	}
	keep, filtered, err := r.summaryFilter(ctx, req.Filter)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	st := r.store
	hs := st.HeadStats(100_000)
	meta := st.Metadata()
	stats := st.Stats()

	resp := &pb.GetMetricsSummaryResponse{GeneratedAt: timestamppb.New(now)}
	totals := &pb.SummaryTotals{
		IngestRate_1M:  stats.Rate(time.Minute),
		IngestRate_5M:  stats.Rate(5 * time.Minute),
		IngestRate_15M: stats.Rate(15 * time.Minute),
		MetricsByType:  map[string]int64{},
	}
	seriesPer := map[string]int64{}
	for _, m := range hs.SeriesPerMetric {
		if keep(m.Name) && filtered == nil {
			seriesPer[m.Name] = int64(m.Count)
			totals.Series += int64(m.Count)
			totals.MetricNames++
		}
	}
	for name, n := range filtered { // label matchers: only the matching series
		if keep(name) {
			seriesPer[name] = n
			totals.Series += n
			totals.MetricNames++
		}
	}
	for name, md := range meta {
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

	// top by series
	names := make([]string, 0, len(seriesPer))
	for n := range seriesPer {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if seriesPer[names[i]] != seriesPer[names[j]] {
			return seriesPer[names[i]] > seriesPer[names[j]]
		}
		return names[i] < names[j]
	})
	rates := map[string]float64{}
	for _, fr := range stats.FamilyRates(5 * time.Minute) {
		rates[fr.Family] = fr.Rate
	}
	for _, n := range names[:min(topN, len(names))] {
		resp.TopBySeries = append(resp.TopBySeries, &pb.MetricRanking{Name: n, Series: seriesPer[n], Rate: rates[n], Type: r.typeOf(n)})
	}
	for _, fr := range stats.FamilyRates(5 * time.Minute) {
		if len(resp.TopByRate) == topN {
			break
		}
		if keep(fr.Family) {
			resp.TopByRate = append(resp.TopByRate, &pb.MetricRanking{Name: fr.Family, Rate: fr.Rate, Series: seriesPer[fr.Family], Type: r.typeOf(fr.Family)})
		}
	}

	// label cardinality now vs a window ago
	nowCard := map[string]int64{}
	for _, l := range hs.LabelValues {
		nowCard[l.Name] = int64(l.Count)
	}
	beforeCard := r.cardinality.at(now.Add(-window))
	labelNames := make([]string, 0, len(nowCard))
	for l := range nowCard {
		labelNames = append(labelNames, l)
	}
	sort.Slice(labelNames, func(i, j int) bool { return nowCard[labelNames[i]] > nowCard[labelNames[j]] })
	for _, l := range labelNames[:min(len(labelNames), 5*topN)] {
		lc := &pb.LabelCardinality{Label: l, DistinctValues: nowCard[l], Growth: 1}
		if b := beforeCard[l]; b > 0 {
			lc.Growth = float64(nowCard[l]) / float64(b)
		}
		resp.LabelCardinality = append(resp.LabelCardinality, lc)
	}

	// storage
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
	errs5m := r.pipelineErrors.recent(now, 5*time.Minute)
	resp.Health = append(resp.Health,
		&pb.ComponentHealth{Name: "pipeline", Status: healthOf(true, errs5m > 0), Message: r.pipelineErrors.message(errs5m)},
		&pb.ComponentHealth{Name: "store", Status: healthOf(true, st.Rejected() > 0), Message: storeMessage(st.Rejected())},
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
		di := famNow[famNames[i]] - famBefore[famNames[i]]
		dj := famNow[famNames[j]] - famBefore[famNames[j]]
		if di < 0 {
			di = -di
		}
		if dj < 0 {
			dj = -dj
		}
		return di > dj
	})
	for _, f := range famNames[:min(topN, len(famNames))] {
		resp.Trends = append(resp.Trends, trend(f, famNow[f], famBefore[f]))
	}

	if req.IncludeRecommendations {
		lastSeen := map[string]time.Time{}
		for f, t := range stats.LastSeen() {
			if keep(f) {
				lastSeen[f] = t
			}
		}
		in := summary.Input{
			Now: now, Window: window,
			LabelValues: nowCard, LabelValuesBefore: beforeCard,
			CounterResets:   r.counterResets(ctx, window, keep),
			LastSeen:        lastSeen,
			SeriesPerMetric: seriesPer,
			SeriesLimit:     int64(r.cfg.Limits.MaxSeriesPerMetric),
			RejectedSamples: st.Rejected(),
			RateNow:         rateNow, RateBefore: rateBefore,
			Thresholds: r.cfg.Recommendations,
		}
		for _, rec := range summary.Recommend(in) {
			sev := pb.Severity_SEVERITY_INFO
			if rec.Severity == summary.Warning {
				sev = pb.Severity_SEVERITY_WARNING
			}
			resp.Recommendations = append(resp.Recommendations, &pb.Recommendation{
				Rule: rec.Rule, Severity: sev, Subject: rec.Subject, Message: rec.Message, Action: rec.Action,
			})
		}
	}
	return resp, nil
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
	return "samples refused since start (out of order, too old or duplicate): " + itoa(rejected)
}

// counterResets runs resets() over the counters of the store, per family.
func (r *metricsReceiver) counterResets(ctx context.Context, window time.Duration, keep func(string) bool) map[string]float64 {
	out := map[string]float64{}
	if r.engine == nil || r.engine.Remote() {
		return out
	}
	var counters []string
	for name, md := range r.store.Metadata() {
		if md.Type == "counter" && keep(name) {
			counters = append(counters, regexp.QuoteMeta(name))
		}
	}
	if len(counters) == 0 {
		return out
	}
	q := `sum by (__name__) (resets({__name__=~"` + strings.Join(counters, "|") + `"}[` + promDuration(window) + `]))`
	res, err := r.engine.Do(ctx, query.Request{Query: q, Instant: true, Time: time.Now(), MaxSeries: -1, NoCache: true})
	if err != nil {
		return out
	}
	if vec, ok := res.Value.(promql.Vector); ok {
		for _, smp := range vec {
			out[smp.Metric.Get(labels.MetricName)] = smp.F
		}
	}
	return out
}
