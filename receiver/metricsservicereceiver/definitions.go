package metricsservicereceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// seriesMatchers select the stored series of a metric: its name and the
// suffixes the Prometheus translation adds (_total, _bucket, _sum, _count).
func seriesMatchers(name string) []*labels.Matcher {
	return []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName,
		regexp.QuoteMeta(name)+"(_total|_bucket|_sum|_count)?")}
}

// registryStatus maps a registry error to a gRPC status with details.
func registryStatus(err error, changes []*pb.SchemaChange) error {
	var inv *registry.InvalidError
	if errors.As(err, &inv) {
		st := status.New(codes.InvalidArgument, inv.Error()+" (fix: "+inv.Issues[0].Suggestion+")")
		br := &errdetails.BadRequest{}
		for _, iss := range inv.Issues {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: iss.Field, Description: iss.Message, Reason: iss.Code})
		}
		if d, derr := st.WithDetails(br); derr == nil {
			st = d
		}
		return st.Err()
	}
	if errors.Is(err, registry.ErrBreaking) {
		var b []string
		for _, c := range changes {
			if c.Breaking {
				b = append(b, c.Description)
			}
		}
		return status.Errorf(codes.FailedPrecondition, "the change is not backward compatible: %s (fix: set allow_breaking to accept it, or dry_run to see every change)", strings.Join(b, "; "))
	}
	return status.Error(registry.StatusOf(err), err.Error())
}

func (s *metricsService) needRegistry(method string) error {
	if s.r.registry == nil {
		return status.Errorf(codes.Unavailable, "%s: the registry is not open", method)
	}
	return nil
}

// RegisterMetric creates or updates a metric definition, or restores one
// from a backup.
func (s *metricsService) RegisterMetric(ctx context.Context, req *pb.RegisterMetricRequest) (*pb.RegisterMetricResponse, error) {
	if err := s.needRegistry("RegisterMetric"); err != nil {
		return nil, err
	}
	if req.RestoreBackupId != "" {
		return s.r.restoreBackup(ctx, req.RestoreBackupId, req.DryRun)
	}
	res, err := s.r.registry.Register(ctx, req.Definition, registry.RegisterOptions{DryRun: req.DryRun, AllowBreaking: req.AllowBreaking, Index: req.CreateIndex})
	if err != nil {
		var changes []*pb.SchemaChange
		if res != nil {
			changes = res.Changes
		}
		return nil, registryStatus(err, changes)
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

// backup is the file UnregisterMetric writes: the definition with its
// history and the metric's stored data as OTLP JSON.
type backup struct {
	Entry json.RawMessage `json:"entry"`
	Data  json.RawMessage `json:"data,omitempty"`
}

var backupIDRE = regexp.MustCompile(`^[a-zA-Z0-9_:.-]+$`)

// UnregisterMetric removes a definition: keeps or deletes the data (now or
// after a retention), backs up definition and data, or only reports.
func (s *metricsService) UnregisterMetric(ctx context.Context, req *pb.UnregisterMetricRequest) (*pb.UnregisterMetricResponse, error) {
	if err := s.needRegistry("UnregisterMetric"); err != nil {
		return nil, err
	}
	r := s.r
	if req.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "name: is empty (fix: name the metric to unregister)")
	}
	e, ok := r.registry.Get(req.Name)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "metric %q is not registered", req.Name)
	}
	if (req.DeleteData || req.Backup) && r.store == nil {
		return nil, status.Error(codes.FailedPrecondition, "delete_data and backup need the store: add the store block to the receiver config")
	}
	if req.BackupFormat == pb.BackupFormat_BACKUP_FORMAT_PROMETHEUS_SNAPSHOT {
		return nil, status.Error(codes.InvalidArgument, "backup_format: only BACKUP_FORMAT_OTLP_JSON is restorable per metric (fix: use BACKUP_FORMAT_OTLP_JSON)")
	}
	resp := &pb.UnregisterMetricResponse{DryRun: req.DryRun}
	if r.store != nil {
		series, samples, err := r.store.Count(ctx, seriesMatchers(req.Name)...)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "count data: %v", err)
		}
		resp.SeriesAffected, resp.SamplesAffected = series, samples
	}
	var deleteAt time.Time
	if req.DeleteData && req.DataRetention != nil && req.DataRetention.AsDuration() > 0 {
		deleteAt = time.Now().Add(req.DataRetention.AsDuration())
		resp.DataDeletionTime = timestamppb.New(deleteAt)
	}
	if req.DryRun {
		resp.Removed = true
		return resp, nil
	}
	if req.Backup {
		id, path, err := r.writeBackup(ctx, e)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "backup %s: %v", req.Name, err)
		}
		resp.BackupId, resp.BackupPath = id, path
	}
	if _, err := r.registry.Unregister(ctx, req.Name, deleteAt); err != nil {
		return nil, registryStatus(err, nil)
	}
	resp.Removed = true
	if req.DeleteData && deleteAt.IsZero() {
		if err := r.store.Delete(ctx, seriesMatchers(req.Name)...); err != nil {
			return nil, status.Errorf(codes.Internal, "definition removed, but deleting its data failed: %v", err)
		}
	}
	return resp, nil
}

func (r *metricsReceiver) writeBackup(ctx context.Context, e *registry.Entry) (id, path string, err error) {
	dir := r.backupDir()
	if dir == "" {
		return "", "", errors.New("no backup directory: set registry.backup_dir")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", "", err
	}
	entry, err := registry.EncodeEntry(e)
	if err != nil {
		return "", "", err
	}
	data, err := r.store.Export(ctx, seriesMatchers(e.Name)...)
	if err != nil {
		return "", "", err
	}
	md := toOTLP(data, r.store)
	otlp, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil {
		return "", "", err
	}
	raw, err := json.Marshal(backup{Entry: entry, Data: otlp})
	if err != nil {
		return "", "", err
	}
	id = fmt.Sprintf("%s-%s", e.Name, time.Now().UTC().Format("20060102T150405.000000000Z"))
	path = filepath.Join(dir, id+".json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", "", err
	}
	return id, path, nil
}

// toOTLP writes stored series as OTLP metrics named like the series:
// counters (a _total series of a counter family) as cumulative sums, every
// other series as a gauge; labels become attributes.
func toOTLP(data []store.SeriesData, st *store.Store) pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	for _, sd := range data {
		name := sd.Labels.Get(labels.MetricName)
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		meta, _ := st.MetadataOf(name)
		var dps pmetric.NumberDataPointSlice
		if meta.Type == "counter" {
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = sum.DataPoints()
		} else {
			dps = m.SetEmptyGauge().DataPoints()
		}
		for _, smp := range sd.Samples {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(pcommon.Timestamp(smp.T * int64(time.Millisecond)))
			dp.SetDoubleValue(smp.V)
			sd.Labels.Range(func(l labels.Label) {
				if l.Name != labels.MetricName {
					dp.Attributes().PutStr(l.Name, l.Value)
				}
			})
		}
	}
	return md
}

// fromOTLP reads back what toOTLP wrote.
func fromOTLP(md pmetric.Metrics) []store.SeriesData {
	byKey := map[string]*store.SeriesData{}
	var order []string
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				default:
					continue
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					b := labels.NewScratchBuilder(dp.Attributes().Len() + 1)
					b.Add(labels.MetricName, m.Name())
					dp.Attributes().Range(func(k string, v pcommon.Value) bool {
						b.Add(k, v.AsString())
						return true
					})
					b.Sort()
					ls := b.Labels()
					key := ls.String()
					sd := byKey[key]
					if sd == nil {
						sd = &store.SeriesData{Labels: ls}
						byKey[key] = sd
						order = append(order, key)
					}
					sd.Samples = append(sd.Samples, store.Sample{T: int64(dp.Timestamp()) / int64(time.Millisecond), V: dp.DoubleValue()})
				}
			}
		}
	}
	out := make([]store.SeriesData, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out
}

// decodeBackup reads a backup file: the definition entry and the OTLP JSON
// of its data (empty when none).
func decodeBackup(raw []byte) (*registry.Entry, []byte, error) {
	var b backup
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, nil, err
	}
	e, err := registry.DecodeEntry(b.Entry)
	if err != nil {
		return nil, nil, err
	}
	return e, b.Data, nil
}

// restoreBackup registers the backed-up definition again and writes its
// data back into the store.
func (r *metricsReceiver) restoreBackup(ctx context.Context, id string, dryRun bool) (*pb.RegisterMetricResponse, error) {
	if !backupIDRE.MatchString(id) {
		return nil, status.Errorf(codes.InvalidArgument, "restore_backup_id: %q is not a backup id", id)
	}
	dir := r.backupDir()
	raw, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) || dir == "" {
		return nil, status.Errorf(codes.NotFound, "backup %q does not exist", id)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read backup: %v", err)
	}
	e, data, err := decodeBackup(raw)
	if err != nil {
		return nil, status.Errorf(codes.DataLoss, "backup %q is damaged: %v", id, err)
	}
	cur := e.Current()
	resp := &pb.RegisterMetricResponse{Definition: cur.Definition, SchemaVersion: cur.Version, Created: true, Compatible: true, DryRun: dryRun}
	if _, exists := r.registry.Get(e.Name); exists {
		return nil, status.Errorf(codes.AlreadyExists, "metric %q is registered: unregister it before restoring backup %q", e.Name, id)
	}
	if dryRun {
		return resp, nil
	}
	if len(data) > 0 && r.store != nil {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return nil, status.Errorf(codes.DataLoss, "backup %q data is damaged: %v", id, err)
		}
		if err := r.store.Backfill(ctx, fromOTLP(md)); err != nil {
			return nil, status.Errorf(codes.Internal, "restore data: %v", err)
		}
	}
	if err := r.registry.Restore(ctx, e); err != nil {
		return nil, status.Errorf(codes.Internal, "restore definition: %v", err)
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
	for _, e := range r.registry.List(req.Names) {
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
	names, _, err := q.LabelNames(ctx, nil, seriesMatchers(name)...)
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
	n, last := r.registry.Rejections(name)
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
	series, samples, err := r.store.Count(ctx, seriesMatchers(name)...)
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
	set := q.Select(ctx, false, nil, seriesMatchers(name)...)
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
