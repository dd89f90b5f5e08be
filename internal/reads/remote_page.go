package reads

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Option configures an Engine.
type Option func(*Engine)

// WithMergeLabel makes raw GetMetrics pages from a remote backend merge the
// series that differ only by the label name (the shared store's node
// identity, e.g. collector_instance) into one series without it: running
// totals (counters, histogram and summary counts, sums and buckets) add up
// each node's value, reset-corrected; other series interleave their
// samples in time order (at one timestamp the last node's value wins).
func WithMergeLabel(name string) Option {
	return func(e *Engine) { e.merge = name }
}

// WithMergeLookback is how far before a page's time range a node's last
// running total still counts in a merged series (the receiver's
// aggregation.series_ttl: how long a node keeps a series' total); at
// least query.lookback_delta.
func WithMergeLookback(d time.Duration) Option {
	return func(e *Engine) { e.mergeLookback = d }
}

// remoteGroup is one series of a page: the label set without the merge
// label and the backend's series (one per node) it stands for.
type remoteGroup struct {
	key     string
	ls      labels.Labels
	members []labels.Labels
}

// remotePage answers a raw GetMetrics from a remote backend: it lists the
// selection's series from the backend's index (/api/v1/series, no samples),
// pages over their keys, and selects the samples of the page's series only
// (one query per metric name of the page), so a page costs its own samples.
func (e *Engine) remotePage(ctx context.Context, p *getParams) (*pb.GetMetricsResponse, error) {
	var lookback time.Duration
	if e.merge != "" {
		// a node's running total counts from its last sample before the range
		lookback = max(e.q.LookbackDelta(), e.mergeLookback)
	}
	all, err := e.q.RemoteSeries(ctx, p.filter.Selector(), p.start.Add(-lookback), p.end, 0)
	if err != nil {
		return nil, err
	}
	groups := map[string]*remoteGroup{}
	typeOK := map[string]bool{}
	for _, ls := range all {
		name := ls.Get(labels.MetricName)
		if p.filter.HasTypes() {
			ok, seen := typeOK[name]
			if !seen {
				t, unit := e.typeOf(name)
				ok = p.filter.MatchType(t, unit)
				typeOK[name] = ok
			}
			if !ok {
				continue
			}
		}
		stripped := ls
		if e.merge != "" {
			stripped = labels.NewBuilder(ls).Del(e.merge).Labels()
		}
		key := string(appendKey(nil, stripped))
		g := groups[key]
		if g == nil {
			g = &remoteGroup{key: key, ls: stripped}
			groups[key] = g
		}
		g.members = append(g.members, ls)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	first := 0
	if p.cursor {
		first = sort.SearchStrings(keys, p.after)
		if first < len(keys) && keys[first] == p.after {
			first++
		}
	}
	last := min(first+p.pageSize, len(keys))
	page := make([]*remoteGroup, 0, last-first)
	for _, k := range keys[first:last] {
		page = append(page, groups[k])
	}
	resp := &pb.GetMetricsResponse{TotalCount: int64(len(keys)), Stats: &pb.QueryStats{}}
	samples, err := e.remoteSamples(ctx, page, p.start, p.end, resp.Stats)
	if err != nil {
		return nil, err
	}
	var base map[string]float64
	if e.merge != "" {
		if base, err = e.remoteBaseline(ctx, page, p.start, lookback, resp.Stats); err != nil {
			return nil, err
		}
	}
	startMs := p.start.UnixMilli()
	for _, g := range page {
		var s *pb.Series
		if e.merge != "" && runningTotal(g.ls.Get(labels.MetricName), e.typeOf) {
			s = e.mergeTotals(g, samples, base, startMs)
		} else {
			s = e.mergeUnion(g, samples, startMs)
		}
		if len(s.Samples) == 0 {
			s.Samples = nil
		}
		if p.latest && len(s.Samples) > 1 {
			s.Samples = s.Samples[len(s.Samples)-1:]
		}
		resp.Series = append(resp.Series, s)
	}
	if last < len(keys) {
		resp.NextPageToken = encodePageToken(int64(len(keys)), keys[last-1])
	}
	resp.Stats.SeriesReturned = int64(len(resp.Series))
	return resp, nil
}

// remoteSamples selects the samples in [from, end] of the page's series:
// per metric name one range selector narrowed by the values of the label
// that tells most of the page's series of that name apart.
func (e *Engine) remoteSamples(ctx context.Context, page []*remoteGroup, from, end time.Time, st *pb.QueryStats) (map[string]promql.Series, error) {
	byName := map[string][]labels.Labels{}
	var names []string
	for _, g := range page {
		n := g.ls.Get(labels.MetricName)
		if _, ok := byName[n]; !ok {
			names = append(names, n)
		}
		byName[n] = append(byName[n], g.members...)
	}
	out := map[string]promql.Series{}
	rng := "[" + promDuration(end.Sub(from)) + "]"
	var took time.Duration
	for _, n := range names {
		sel := narrowSelector(n, byName[n])
		res, err := e.q.Do(ctx, query.Request{Query: sel + rng, Instant: true, Time: end, MaxSeries: -1})
		if err != nil {
			return nil, err
		}
		st.SamplesRead += res.Stats.SamplesRead
		took += res.Stats.Duration
		if m, ok := res.Value.(promql.Matrix); ok {
			for _, s := range m {
				out[string(appendKey(nil, s.Metric))] = s
			}
		}
	}
	st.ExecutionTime = durationpb.New(took)
	return out, nil
}

// remoteBaseline returns, by series key, the last value of each running
// total of the page in the lookback before start (last_over_time at start:
// one sample per series), where the merged totals start from.
func (e *Engine) remoteBaseline(ctx context.Context, page []*remoteGroup, start time.Time, lookback time.Duration, st *pb.QueryStats) (map[string]float64, error) {
	byName := map[string][]labels.Labels{}
	var names []string
	for _, g := range page {
		n := g.ls.Get(labels.MetricName)
		if !runningTotal(n, e.typeOf) {
			continue
		}
		if _, ok := byName[n]; !ok {
			names = append(names, n)
		}
		byName[n] = append(byName[n], g.members...)
	}
	out := map[string]float64{}
	for _, n := range names {
		q := "last_over_time(" + narrowSelector(n, byName[n]) + "[" + promDuration(lookback) + "])"
		res, err := e.q.Do(ctx, query.Request{Query: q, Instant: true, Time: start, MaxSeries: -1})
		if err != nil {
			return nil, err
		}
		st.SamplesRead += res.Stats.SamplesRead
		if v, ok := res.Value.(promql.Vector); ok {
			for _, smp := range v {
				if smp.H != nil {
					continue
				}
				// functions drop the metric name: put it back
				ls := labels.NewBuilder(smp.Metric).Set(labels.MetricName, n).Labels()
				out[string(appendKey(nil, ls))] = smp.F
			}
		}
	}
	return out, nil
}

// narrowSelector selects the series of name with, when they differ, a
// regexp over the values of their most distinct label.
func narrowSelector(name string, series []labels.Labels) string {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)}
	if len(series) > 1 {
		distinct := map[string]map[string]struct{}{}
		for _, ls := range series {
			ls.Range(func(l labels.Label) {
				if l.Name == labels.MetricName {
					return
				}
				if distinct[l.Name] == nil {
					distinct[l.Name] = map[string]struct{}{}
				}
				distinct[l.Name][l.Value] = struct{}{}
			})
		}
		best := ""
		for n, vs := range distinct {
			if best == "" || len(vs) > len(distinct[best]) || (len(vs) == len(distinct[best]) && n < best) {
				best = n
			}
		}
		// a label every series has (else the regexp would drop the others)
		if best != "" && len(distinct[best]) > 1 && everyHas(series, best) {
			vals := make([]string, 0, len(distinct[best]))
			for v := range distinct[best] {
				vals = append(vals, regexpQuote(v))
			}
			sort.Strings(vals)
			ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, best, strings.Join(vals, "|")))
		}
	} else if len(series) == 1 {
		series[0].Range(func(l labels.Label) {
			if l.Name != labels.MetricName {
				ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
			}
		})
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func everyHas(series []labels.Labels, name string) bool {
	for _, ls := range series {
		if !ls.Has(name) {
			return false
		}
	}
	return true
}

// regexpQuote escapes the RE2 metacharacters of s.
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// runningTotal reports whether the series of name hold running totals
// (counters; histogram buckets, counts and sums; summary counts and sums),
// by the stored type, else by the name's suffix.
func runningTotal(name string, typeOf func(string) (pb.MetricType, string)) bool {
	t, _ := typeOf(name)
	switch t {
	case pb.MetricType_METRIC_TYPE_COUNTER, pb.MetricType_METRIC_TYPE_HISTOGRAM:
		return true
	case pb.MetricType_METRIC_TYPE_SUMMARY:
		return strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count")
	case pb.MetricType_METRIC_TYPE_GAUGE:
		return false
	}
	for _, suf := range []string{"_total", "_bucket", "_count", "_sum"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// memberPoint is one float sample of one node's series.
type memberPoint struct {
	m int
	promql.FPoint
}

func memberPoints(g *remoteGroup, samples map[string]promql.Series) ([]memberPoint, []promql.HPoint) {
	var pts []memberPoint
	var hs []promql.HPoint
	for i, ls := range g.members {
		s, ok := samples[string(appendKey(nil, ls))]
		if !ok {
			continue
		}
		for _, p := range s.Floats {
			pts = append(pts, memberPoint{m: i, FPoint: p})
		}
		hs = append(hs, s.Histograms...)
	}
	sort.SliceStable(pts, func(a, b int) bool { return pts[a].T < pts[b].T })
	sort.SliceStable(hs, func(a, b int) bool { return hs[a].T < hs[b].T })
	return pts, hs
}

// mergeTotals adds up the nodes' running totals: at each timestamp where a
// node has a sample, the sum over the nodes of their latest value, each
// corrected for its resets (a node's value going down starts a new run on
// top of the previous one). A node starts from its baseline (its last value
// before the range, by series key), if any; samples before startMs only
// set the nodes' values.
func (e *Engine) mergeTotals(g *remoteGroup, samples map[string]promql.Series, base map[string]float64, startMs int64) *pb.Series {
	s := e.newSeries(g.ls)
	pts, _ := memberPoints(g, samples)
	last := make([]float64, len(g.members))
	offset := make([]float64, len(g.members))
	seen := make([]bool, len(g.members))
	for m, ls := range g.members {
		if v, ok := base[string(appendKey(nil, ls))]; ok {
			last[m], seen[m] = v, true
		}
	}
	for i := 0; i < len(pts); {
		t := pts[i].T
		for ; i < len(pts) && pts[i].T == t; i++ {
			p := pts[i]
			if seen[p.m] && p.F < last[p.m] {
				offset[p.m] += last[p.m]
			}
			last[p.m], seen[p.m] = p.F, true
		}
		if t < startMs {
			continue
		}
		var sum float64
		for m := range last {
			if seen[m] {
				sum += offset[m] + last[m]
			}
		}
		s.Samples = append(s.Samples, floatSample(t, sum))
	}
	return s
}

// mergeUnion interleaves the nodes' samples in time order from startMs;
// at one timestamp the last node's sample wins.
func (e *Engine) mergeUnion(g *remoteGroup, samples map[string]promql.Series, startMs int64) *pb.Series {
	s := e.newSeries(g.ls)
	pts, hs := memberPoints(g, samples)
	for _, p := range pts {
		if p.T < startMs {
			continue
		}
		if n := len(s.Samples); n > 0 && s.Samples[n-1].GetTimestamp().AsTime().UnixMilli() == p.T {
			s.Samples[n-1] = floatSample(p.T, p.F)
			continue
		}
		s.Samples = append(s.Samples, floatSample(p.T, p.F))
	}
	for _, h := range hs {
		if h.T >= startMs {
			s.Samples = append(s.Samples, histogramSample(h.T, h.H))
		}
	}
	if len(hs) > 0 && len(pts) > 0 {
		sort.SliceStable(s.Samples, func(i, j int) bool {
			return s.Samples[i].GetTimestamp().AsTime().Before(s.Samples[j].GetTimestamp().AsTime())
		})
	}
	return s
}
