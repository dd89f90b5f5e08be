package metricsservicereceiver

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/backup"
	"github.com/metricsmodule/metricsmodule/internal/registry"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func (s *metricsService) needRegistry(method string) error {
	if s.r.defs.registry == nil {
		return status.Errorf(codes.Unavailable, "%s: the registry is not open", method)
	}
	return nil
}

// RegisterMetric creates or updates a metric definition, or restores one
// from a backup (internal/backup).
func (s *metricsService) RegisterMetric(ctx context.Context, req *pb.RegisterMetricRequest) (*pb.RegisterMetricResponse, error) {
	if err := s.needRegistry("RegisterMetric"); err != nil {
		return nil, err
	}
	d := &s.r.defs
	if req.RestoreBackupId != "" {
		e, err := d.backups.Restore(ctx, req.RestoreBackupId, req.DryRun)
		if err != nil {
			return nil, statusOf(err)
		}
		cur := e.Current()
		return &pb.RegisterMetricResponse{Definition: cur.Definition, SchemaVersion: cur.Version, Created: true, Compatible: true, DryRun: req.DryRun}, nil
	}
	res, err := d.registry.Register(ctx, req.Definition, registry.RegisterOptions{DryRun: req.DryRun, AllowBreaking: req.AllowBreaking, Index: req.CreateIndex})
	if err != nil {
		return nil, statusOf(err)
	}
	if !req.DryRun && !res.Unchanged {
		s.r.settings.Logger.Info("Registered metric definition")
	}
	return &pb.RegisterMetricResponse{
		Definition:    res.Definition,
		SchemaVersion: res.Version,
		Created:       res.Created,
		Compatible:    res.Compatible,
		Changes:       res.Changes,
		DryRun:        req.DryRun,
	}, nil
}

// UnregisterMetric removes a definition: keeps or deletes the data (now or
// after a retention), backs up definition and data, or only reports
// (internal/backup).
func (s *metricsService) UnregisterMetric(ctx context.Context, req *pb.UnregisterMetricRequest) (*pb.UnregisterMetricResponse, error) {
	if err := s.needRegistry("UnregisterMetric"); err != nil {
		return nil, err
	}
	if req.BackupFormat == pb.BackupFormat_BACKUP_FORMAT_PROMETHEUS_SNAPSHOT {
		return nil, status.Error(codes.InvalidArgument, "backup_format: only BACKUP_FORMAT_OTLP_JSON is restorable per metric (fix: use BACKUP_FORMAT_OTLP_JSON)")
	}
	res, err := s.r.defs.backups.Unregister(ctx, backup.UnregisterRequest{
		Name: req.Name, DeleteData: req.DeleteData, DataRetention: req.DataRetention.AsDuration(),
		Backup: req.Backup, DryRun: req.DryRun,
	})
	if err != nil {
		return nil, statusOf(err)
	}
	resp := &pb.UnregisterMetricResponse{
		DryRun: req.DryRun, Removed: true,
		SeriesAffected: res.SeriesAffected, SamplesAffected: res.SamplesAffected,
		BackupId: res.BackupID, BackupPath: res.BackupPath,
	}
	if !res.DeleteAt.IsZero() {
		resp.DataDeletionTime = timestamppb.New(res.DeleteAt)
	}
	return resp, nil
}

// GetMetricMetadata describes registered metrics (and, on request, metrics
// seen but not registered): definition, history, usage and health.
func (s *metricsService) GetMetricMetadata(ctx context.Context, req *pb.GetMetricMetadataRequest) (*pb.GetMetricMetadataResponse, error) {
	if err := s.needRegistry("GetMetricMetadata"); err != nil {
		return nil, err
	}
	r := s.r
	for i, g := range req.Names {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "names[%d]: %q is not a valid glob", i, g)
		}
	}
	pageSize := int(req.PageSize)
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	after, err := decodePageToken(req.PageToken)
	if err != nil {
		return nil, err
	}
	var all []*pb.MetricMetadata
	registered := map[string]bool{}
	for _, e := range r.defs.registry.List(req.Names) {
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
	if req.IncludeUnregistered {
		for name, typ := range r.acc.Names() {
			if !registered[name] && registry.MatchAny(req.Names, name) {
				registered[name] = true
				all = append(all, &pb.MetricMetadata{Definition: r.inferDefinition(ctx, name, typ)})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Definition.Name < all[j].Definition.Name })
	first := sort.Search(len(all), func(i int) bool { return all[i].Definition.Name > after })
	last := min(first+pageSize, len(all))
	resp := &pb.GetMetricMetadataResponse{TotalCount: int64(len(all)), Metadata: all[first:last]}
	if last < len(all) {
		resp.NextPageToken = encodePageToken(all[last-1].Definition.Name)
	}
	for _, md := range resp.Metadata {
		md.Health = r.metricHealth(md.Definition.Name)
		if req.IncludeUsage {
			md.Usage = r.usage(ctx, md.Definition.Name)
		}
	}
	return resp, nil
}

// inferDefinition describes a metric seen but not registered: its type and
// the label names found in the store.
func (r *metricsReceiver) inferDefinition(ctx context.Context, name string, typ pb.MetricType) *pb.MetricDefinition {
	def := &pb.MetricDefinition{Name: name, Type: typ, AllowUndeclaredLabels: true}
	if r.store == nil {
		return def
	}
	if meta, ok := r.store.MetadataOf(name); ok {
		def.Unit, def.Description = meta.Unit, meta.Help
	}
	q, err := r.store.Queryable().Querier(time.Now().Add(-time.Hour).UnixMilli(), time.Now().UnixMilli())
	if err != nil {
		return def
	}
	defer q.Close()
	names, _, err := q.LabelNames(ctx, nil, backup.SeriesMatchers(name)...)
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

func (r *metricsReceiver) metricHealth(name string) *pb.MetricHealth {
	n, last := r.defs.registry.Rejections(name)
	h := &pb.MetricHealth{Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY, RejectedLastHour: n, LastRejectionReason: last}
	if n > 0 {
		h.Status = pb.HealthStatus_HEALTH_STATUS_DEGRADED
		h.Issues = append(h.Issues, fmt.Sprintf("%d records refused by the schema in the last hour", n))
	}
	return h
}

// usage reads the metric's footprint from the store.
func (r *metricsReceiver) usage(ctx context.Context, name string) *pb.UsageStats {
	u := &pb.UsageStats{}
	if r.store == nil {
		return u
	}
	series, samples, err := r.store.Count(ctx, backup.SeriesMatchers(name)...)
	if err == nil {
		u.SeriesCount, u.SampleCount = series, samples
	}
	stats := r.store.Stats()
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
	q, err := r.store.Queryable().Querier(time.Now().Add(-time.Hour).UnixMilli(), time.Now().UnixMilli())
	if err != nil {
		return u
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, backup.SeriesMatchers(name)...)
	counts := map[[2]string]int64{}
	for set.Next() {
		set.At().Labels().Range(func(l labels.Label) {
			if l.Name != labels.MetricName && l.Name != "le" {
				counts[[2]string{l.Name, l.Value}]++
			}
		})
	}
	for k, n := range counts {
		u.TopLabelValues = append(u.TopLabelValues, &pb.LabelValueCount{Label: k[0], Value: k[1], SeriesCount: n})
	}
	sort.Slice(u.TopLabelValues, func(i, j int) bool {
		a, b := u.TopLabelValues[i], u.TopLabelValues[j]
		if a.SeriesCount != b.SeriesCount {
			return a.SeriesCount > b.SeriesCount
		}
		return a.Label+a.Value < b.Label+b.Value
	})
	if len(u.TopLabelValues) > 10 {
		u.TopLabelValues = u.TopLabelValues[:10]
	}
	return u
}
