package metricsservicereceiver

import (
	"context"
	"encoding/base64"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/definitions"
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
// from a backup (internal/definitions).
func (s *metricsService) RegisterMetric(ctx context.Context, req *pb.RegisterMetricRequest) (*pb.RegisterMetricResponse, error) {
	if err := s.needRegistry("RegisterMetric"); err != nil {
		return nil, err
	}
	d := &s.r.defs
	if req.RestoreBackupId != "" {
		e, err := d.engine.Restore(ctx, req.RestoreBackupId, req.DryRun)
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
// (internal/definitions).
func (s *metricsService) UnregisterMetric(ctx context.Context, req *pb.UnregisterMetricRequest) (*pb.UnregisterMetricResponse, error) {
	if err := s.needRegistry("UnregisterMetric"); err != nil {
		return nil, err
	}
	if req.BackupFormat == pb.BackupFormat_BACKUP_FORMAT_PROMETHEUS_SNAPSHOT {
		return nil, status.Error(codes.InvalidArgument, "backup_format: only BACKUP_FORMAT_OTLP_JSON is restorable per metric (fix: use BACKUP_FORMAT_OTLP_JSON)")
	}
	res, err := s.r.defs.engine.Unregister(ctx, definitions.UnregisterRequest{
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
// seen but not registered): definition, history, usage and health
// (internal/definitions).
func (s *metricsService) GetMetricMetadata(ctx context.Context, req *pb.GetMetricMetadataRequest) (*pb.GetMetricMetadataResponse, error) {
	if err := s.needRegistry("GetMetricMetadata"); err != nil {
		return nil, err
	}
	pageSize := int(req.PageSize)
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	after, err := decodePageToken(req.PageToken)
	if err != nil {
		return nil, err
	}
	page, err := s.r.defs.engine.Metadata(ctx, definitions.MetadataRequest{
		Names: req.Names, IncludeHistory: req.IncludeHistory, IncludeUnregistered: req.IncludeUnregistered,
		IncludeUsage: req.IncludeUsage, After: after, PageSize: pageSize,
	})
	if err != nil {
		return nil, statusOf(err)
	}
	resp := &pb.GetMetricMetadataResponse{TotalCount: int64(page.Total), Metadata: page.Metadata}
	if page.Last != "" {
		resp.NextPageToken = encodePageToken(page.Last)
	}
	return resp, nil
}

// defaultPageSize is the page size of ListMetricDefinitions when unset.
const defaultPageSize = 100

// encodePageToken is a page token of ListMetricDefinitions: the position
// after the last item of a page, so pages stay stable when items are added.
func encodePageToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + after))
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "v1:") {
		return "", status.Error(codes.InvalidArgument, "page_token: is not a token of this API (pass next_page_token unchanged)")
	}
	return strings.TrimPrefix(string(b), "v1:"), nil
}
