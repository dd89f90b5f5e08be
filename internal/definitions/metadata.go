package definitions

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// MetadataRequest is what GetMetricMetadata asks.
type MetadataRequest struct {
	// Names are globs (path.Match syntax) of the metrics to describe; empty: all.
	Names []string
	// IncludeHistory adds every schema version.
	IncludeHistory bool
	// IncludeUnregistered adds metrics seen but not registered, described
	// from the store (type, unit, help, label names of the last hour).
	IncludeUnregistered bool
	// IncludeUsage adds series, samples, rate, last seen and the top label
	// values of each metric of the page.
	IncludeUsage bool
	// After is the name after which the page starts ("" for the first).
	After string
	// PageSize is the most metrics of the page (> 0).
	PageSize int
}

// MetadataPage is one page of descriptions, by name.
type MetadataPage struct {
	Metadata []*pb.MetricMetadata
	// Total is the number of metrics of every page.
	Total int
	// Last is the name of the page's last metric when more follow ("" otherwise).
	Last string
}

// topLabelValues is how many label values a usage reports.
const topLabelValues = 10

// Metadata describes the registered metrics (and, on request, the metrics
// seen but not registered) whose names match: definition, history, health
// and usage, one page at a time in name order.
func (g *Engine) Metadata(ctx context.Context, req MetadataRequest) (*MetadataPage, error) {
	for i, n := range req.Names {
		if _, err := filepath.Match(n, ""); err != nil {
			return nil, &Error{Kind: KindInvalid, Field: fmt.Sprintf("names[%d]", i), Message: fmt.Sprintf("%q is not a valid glob", n),
				Fix: "use *, ? and [...] classes"}
		}
	}
	var all []*pb.MetricMetadata
	registered := map[string]bool{}
	for _, e := range g.Definitions.List(req.Names) {
		registered[e.Name] = true
		cur := e.Current()
		md := &pb.MetricMetadata{
			Definition: cur.Definition, Registered: true, SchemaVersion: cur.Version,
			CreatedAt: timestamppb.New(e.CreatedAt), UpdatedAt: timestamppb.New(e.UpdatedAt),
		}
		if req.IncludeHistory {
			for _, v := range e.Versions {
				md.History = append(md.History, &pb.SchemaVersion{Version: v.Version, Definition: v.Definition,
					CreatedAt: timestamppb.New(v.CreatedAt), Compatible: v.Compatible, Changes: v.Changes})
			}
		}
		all = append(all, md)
	}
	if req.IncludeUnregistered && g.Seen != nil {
		for name, typ := range g.Seen() {
			if !registered[name] && registry.MatchAny(req.Names, name) {
				registered[name] = true
				all = append(all, &pb.MetricMetadata{Definition: g.infer(ctx, name, typ)})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Definition.Name < all[j].Definition.Name })
	first := sort.Search(len(all), func(i int) bool { return all[i].Definition.Name > req.After })
	last := min(first+max(req.PageSize, 1), len(all))
	page := &MetadataPage{Metadata: all[first:last], Total: len(all)}
	if last < len(all) {
		page.Last = all[last-1].Definition.Name
	}
	for _, md := range page.Metadata {
		md.Health = g.health(md.Definition.Name)
		if req.IncludeUsage {
			md.Usage = g.usage(ctx, md.Definition.Name)
		}
	}
	return page, nil
}

// infer describes a metric seen but not registered: its type, the store's
// unit and help, and the label names found in the store in the last hour.
func (g *Engine) infer(ctx context.Context, name string, typ pb.MetricType) *pb.MetricDefinition {
	def := &pb.MetricDefinition{Name: name, Type: typ, AllowUndeclaredLabels: true}
	if g.Store == nil {
		return def
	}
	if meta, ok := g.Store.MetadataOf(name); ok {
		def.Unit, def.Description = meta.Unit, meta.Help
	}
	now := g.now()
	names, err := g.Store.LabelNames(ctx, now.Add(-time.Hour).UnixMilli(), now.UnixMilli(), SeriesMatchers(name)...)
	if err != nil {
		return def
	}
	for _, l := range names {
		if l != labels.MetricName && l != "le" && l != "quantile" {
			def.Labels = append(def.Labels, &pb.LabelDefinition{Name: l})
		}
	}
	return def
}

// health reports the schema refusals of the last hour.
func (g *Engine) health(name string) *pb.MetricHealth {
	n, last := g.Definitions.Rejections(name)
	h := &pb.MetricHealth{Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY, RejectedLastHour: n, LastRejectionReason: last}
	if n > 0 {
		h.Status = pb.HealthStatus_HEALTH_STATUS_DEGRADED
		h.Issues = append(h.Issues, fmt.Sprintf("%d records refused by the schema in the last hour", n))
	}
	return h
}

// usage reads the metric's footprint from the store; a failed read leaves
// its part empty.
func (g *Engine) usage(ctx context.Context, name string) *pb.UsageStats {
	u := &pb.UsageStats{}
	if g.Store == nil {
		return u
	}
	if series, samples, err := g.Store.Count(ctx, SeriesMatchers(name)...); err == nil {
		u.SeriesCount, u.SampleCount = series, samples
	}
	stats := g.Store.Stats()
	seen := stats.LastSeen()
	for _, fam := range []string{name, name + "_total"} {
		if t, ok := seen[fam]; ok {
			u.LastSeen = timestamppb.New(t)
		}
	}
	for _, fr := range stats.FamilyRates(5 * time.Minute) {
		if fr.Family == name || fr.Family == name+"_total" {
			u.IngestRate = fr.Rate
		}
	}
	now := g.now()
	counts, err := g.Store.SeriesPerLabel(ctx, now.Add(-time.Hour).UnixMilli(), now.UnixMilli(), SeriesMatchers(name)...)
	if err != nil {
		return u
	}
	for l, n := range counts {
		if l.Name != labels.MetricName && l.Name != "le" {
			u.TopLabelValues = append(u.TopLabelValues, &pb.LabelValueCount{Label: l.Name, Value: l.Value, SeriesCount: n})
		}
	}
	sort.Slice(u.TopLabelValues, func(i, j int) bool {
		a, b := u.TopLabelValues[i], u.TopLabelValues[j]
		if a.SeriesCount != b.SeriesCount {
			return a.SeriesCount > b.SeriesCount
		}
		return a.Label+a.Value < b.Label+b.Value
	})
	if len(u.TopLabelValues) > topLabelValues {
		u.TopLabelValues = u.TopLabelValues[:topLabelValues]
	}
	return u
}
