// Package definitions serves the metric-definition methods that span the
// definitions (package registry) and the store: UnregisterMetric's count,
// backup, unregister and delete; the restore of a backup into both; and
// GetMetricMetadata's listing with usage read from the store. A backup is
// one JSON file: the definition with its history and the metric's stored
// data as OTLP JSON. Errors are *Error with a Kind for the server to map;
// registry errors pass through unchanged.
package definitions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Store is what backups read and write in the store. *store.Store
// implements it.
type Store interface {
	// Count returns the series and float samples matching ms.
	Count(ctx context.Context, ms ...*labels.Matcher) (series, samples int64, err error)
	// Export returns the float samples of the series matching ms.
	Export(ctx context.Context, ms ...*labels.Matcher) ([]store.SeriesData, error)
	// Delete removes the series matching ms.
	Delete(ctx context.Context, ms ...*labels.Matcher) error
	// Backfill writes series as a new block, whatever their age.
	Backfill(ctx context.Context, data []store.SeriesData) error
	// MetadataOf returns the type of a metric family.
	MetadataOf(family string) (metadata.Metadata, bool)
	// LabelNames returns the label names of the matching series in [mint, maxt].
	LabelNames(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) ([]string, error)
	// SeriesPerLabel counts the matching series in [mint, maxt] per label pair.
	SeriesPerLabel(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) (map[labels.Label]int64, error)
	// Stats returns the per-minute ingest counts.
	Stats() *store.IngestStats
}

var _ Store = (*store.Store)(nil)

// Definitions is what backups read and write of the metric definitions.
// *registry.Registry implements it.
type Definitions interface {
	Get(name string) (*registry.Entry, bool)
	List(globs []string) []*registry.Entry
	Rejections(name string) (int64, string)
	Unregister(ctx context.Context, name string, deleteAt time.Time) (*registry.Entry, error)
	Restore(ctx context.Context, e *registry.Entry) error
	// CheckEntry refuses an entry over the bounds in force
	// (*registry.InvalidError naming the field).
	CheckEntry(e *registry.Entry) error
}

var _ Definitions = (*registry.Registry)(nil)

// nowUnregisterer unregisters a metric whose data is deleted now, telling
// the other nodes of a fleet to delete theirs (*registry.Registry).
type nowUnregisterer interface {
	UnregisterNow(ctx context.Context, name string) (*registry.Entry, error)
}

var _ nowUnregisterer = (*registry.Registry)(nil)

// Kind classifies an Error.
type Kind int

const (
	// KindInvalid is a request field that is wrong: fix the request.
	KindInvalid Kind = iota + 1
	// KindNotFound is a metric or backup that does not exist.
	KindNotFound
	// KindAlreadyExists is a restore over a registered metric.
	KindAlreadyExists
	// KindFailedPrecondition is an operation the configuration does not
	// allow (no store, no backup directory).
	KindFailedPrecondition
	// KindDataLoss is a backup file that cannot be read back.
	KindDataLoss
	// KindInternal is a failure of the store or the file system.
	KindInternal
)

// Error is a refused or failed operation: Field names the request field
// when one is at fault, Message says what happened, Fix how to correct it.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	Fix     string
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		msg += " (fix: " + e.Fix + ")"
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// BackupStore keeps backups where every node of a fleet reads them
// (*registry.Registry on etcd implements it).
type BackupStore interface {
	// PutBackup stores backup id.
	PutBackup(ctx context.Context, id string, raw []byte) (where string, err error)
	// GetBackup reads backup id (ok false: not there).
	GetBackup(ctx context.Context, id string) (raw []byte, ok bool, err error)
	// MaxBackupBytes is the largest backup it keeps.
	MaxBackupBytes() int
}

// Engine unregisters and restores metric definitions with their data.
type Engine struct {
	// Dir is where backups are written and read ("" refuses backups,
	// unless Backups is set).
	Dir string
	// Backups, when set, keeps the backups for the whole fleet (etcd): a
	// backup written on one node is restored on any. One larger than
	// Backups.MaxBackupBytes goes to Dir (this node only) when Dir is set.
	Backups BackupStore
	// Store is the metric data (nil: definitions only).
	Store Store
	// Definitions are the metric definitions.
	Definitions Definitions
	// Seen lists the metrics the receiver has seen, registered or not,
	// with their type (nil: none).
	Seen func() map[string]pb.MetricType
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (g *Engine) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// SeriesMatchers select the stored series of a metric: its name and the
// suffixes the Prometheus translation adds (_total, _bucket, _sum, _count).
func SeriesMatchers(name string) []*labels.Matcher {
	return []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName,
		regexp.QuoteMeta(name)+"(_total|_bucket|_sum|_count)?")}
}

// UnregisterRequest is what UnregisterMetric asks.
type UnregisterRequest struct {
	Name string
	// DeleteData deletes the stored data now, or after DataRetention.
	DeleteData    bool
	DataRetention time.Duration
	// Backup writes definition and data to Dir first.
	Backup bool
	// DryRun only counts and reports.
	DryRun bool
}

// UnregisterResult is what was (or, on a dry run, would be) done.
type UnregisterResult struct {
	SeriesAffected, SamplesAffected int64
	// DeleteAt is when the data is deleted (zero: now or never).
	DeleteAt             time.Time
	BackupID, BackupPath string
}

// Unregister removes a definition: counts its data, writes a backup when
// asked, unregisters it and deletes its data now or schedules the deletion
// (the registry keeps the schedule).
func (g *Engine) Unregister(ctx context.Context, req UnregisterRequest) (*UnregisterResult, error) {
	if req.Name == "" {
		return nil, &Error{Kind: KindInvalid, Field: "name", Message: "is empty", Fix: "name the metric to unregister"}
	}
	e, ok := g.Definitions.Get(req.Name)
	if !ok {
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("metric %q is not registered", req.Name)}
	}
	if (req.DeleteData || req.Backup) && g.Store == nil {
		return nil, &Error{Kind: KindFailedPrecondition, Message: "delete_data and backup need the store",
			Fix: "add the metrics_store extension (and the metrics_store processor to the pipelines) to the collector config"}
	}
	res := &UnregisterResult{}
	if g.Store != nil {
		series, samples, err := g.Store.Count(ctx, SeriesMatchers(req.Name)...)
		if err != nil {
			return nil, &Error{Kind: KindInternal, Message: "count data", Err: err}
		}
		res.SeriesAffected, res.SamplesAffected = series, samples
	}
	if req.DeleteData && req.DataRetention > 0 {
		res.DeleteAt = g.now().Add(req.DataRetention)
	}
	if req.DryRun {
		return res, nil
	}
	if req.Backup {
		id, path, err := g.Write(ctx, e)
		if err != nil {
			return nil, err
		}
		res.BackupID, res.BackupPath = id, path
	}
	now, ok := g.Definitions.(nowUnregisterer)
	if req.DeleteData && res.DeleteAt.IsZero() && ok {
		// on etcd the other nodes delete their own copy of the data too
		if _, err := now.UnregisterNow(ctx, req.Name); err != nil {
			return nil, err
		}
	} else if _, err := g.Definitions.Unregister(ctx, req.Name, res.DeleteAt); err != nil {
		return nil, err
	}
	if req.DeleteData && res.DeleteAt.IsZero() {
		if err := g.Store.Delete(ctx, SeriesMatchers(req.Name)...); err != nil {
			return nil, &Error{Kind: KindInternal, Message: "definition removed, but deleting its data failed", Err: err}
		}
	}
	return res, nil
}

// file is the backup file: the definition with its history and the
// metric's stored data as OTLP JSON.
type file struct {
	Entry json.RawMessage `json:"entry"`
	Data  json.RawMessage `json:"data,omitempty"`
}

var idRE = regexp.MustCompile(`^[a-zA-Z0-9_:.-]+$`)

// Write writes a backup of e and its stored data to Dir and returns its id
// and path.
func (g *Engine) Write(ctx context.Context, e *registry.Entry) (id, path string, err error) {
	fail := func(err error) (string, string, error) {
		return "", "", &Error{Kind: KindInternal, Message: "backup " + e.Name, Err: err}
	}
	if g.Dir == "" && g.Backups == nil {
		return "", "", &Error{Kind: KindFailedPrecondition, Message: "backup " + e.Name + ": no backup directory",
			Fix: "set definitions.backup_dir of the metrics_service receiver, or add the metrics_store extension (backups go next to its data)"}
	}
	entry, err := registry.EncodeEntry(e)
	if err != nil {
		return fail(err)
	}
	var otlp []byte
	if g.Store != nil {
		data, err := g.Store.Export(ctx, SeriesMatchers(e.Name)...)
		if err != nil {
			return fail(err)
		}
		if otlp, err = (&pmetric.JSONMarshaler{}).MarshalMetrics(ToOTLP(data, g.Store.MetadataOf)); err != nil {
			return fail(err)
		}
	}
	raw, err := json.Marshal(file{Entry: entry, Data: otlp})
	if err != nil {
		return fail(err)
	}
	id = fmt.Sprintf("%s-%s", e.Name, g.now().UTC().Format("20060102T150405.000000000Z"))
	if g.Backups != nil {
		switch limit := g.Backups.MaxBackupBytes(); {
		case len(raw) <= limit:
			where, err := g.Backups.PutBackup(ctx, id, raw)
			if err != nil {
				return "", "", err
			}
			return id, where, nil
		case g.Dir == "":
			return "", "", &Error{Kind: KindFailedPrecondition,
				Message: fmt.Sprintf("backup %s: it is %d bytes, more than the %d etcd keeps in one value", e.Name, len(raw), limit),
				Fix:     "set definitions.backup_dir to keep large backups on this node's disk, or unregister without backup"}
		}
	}
	if err := os.MkdirAll(g.Dir, 0o750); err != nil {
		return fail(err)
	}
	path = filepath.Join(g.Dir, id+".json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fail(err)
	}
	return id, path, nil
}

// Read reads backup id: the definition entry and the OTLP JSON of its data
// (empty when none).
func (g *Engine) Read(id string) (*registry.Entry, []byte, error) {
	if !idRE.MatchString(id) {
		return nil, nil, &Error{Kind: KindInvalid, Field: "restore_backup_id", Message: fmt.Sprintf("%q is not a backup id", id),
			Fix: "use the backup_id UnregisterMetric returned"}
	}
	if g.Backups != nil {
		raw, ok, err := g.Backups.GetBackup(context.Background(), id)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return decodeBackup(id, raw)
		}
	}
	if g.Dir == "" {
		return nil, nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("backup %q does not exist", id)}
	}
	raw, err := os.ReadFile(filepath.Join(g.Dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("backup %q does not exist", id)}
	}
	if err != nil {
		return nil, nil, &Error{Kind: KindInternal, Message: "read backup", Err: err}
	}
	return decodeBackup(id, raw)
}

func decodeBackup(id string, raw []byte) (*registry.Entry, []byte, error) {
	e, data, err := Decode(raw)
	if err != nil {
		return nil, nil, &Error{Kind: KindDataLoss, Message: fmt.Sprintf("backup %q is damaged", id), Err: err}
	}
	return e, data, nil
}

// Decode reads a backup file: the definition entry and the OTLP JSON of its
// data (empty when none).
func Decode(raw []byte) (*registry.Entry, []byte, error) {
	var b file
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, nil, err
	}
	e, err := registry.DecodeEntry(b.Entry)
	if err != nil {
		return nil, nil, err
	}
	return e, b.Data, nil
}

// Restore registers the definition of backup id again and writes its data
// back into the store (a new block); on a dry run it only checks. It
// returns the restored entry.
func (g *Engine) Restore(ctx context.Context, id string, dryRun bool) (*registry.Entry, error) {
	e, data, err := g.Read(id)
	if err != nil {
		return nil, err
	}
	if _, exists := g.Definitions.Get(e.Name); exists {
		return nil, &Error{Kind: KindAlreadyExists, Message: fmt.Sprintf("metric %q is registered", e.Name),
			Fix: fmt.Sprintf("unregister it before restoring backup %q", id)}
	}
	// Checked before anything is applied: a backup over the bounds in
	// force (an oversized allowed value, say) restores neither its data
	// nor its definition.
	if err := g.Definitions.CheckEntry(e); err != nil {
		return nil, err
	}
	if dryRun {
		return e, nil
	}
	if len(data) > 0 && g.Store != nil {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return nil, &Error{Kind: KindDataLoss, Message: fmt.Sprintf("backup %q data is damaged", id), Err: err}
		}
		if err := g.Store.Backfill(ctx, FromOTLP(md)); err != nil {
			return nil, &Error{Kind: KindInternal, Message: "restore data", Err: err}
		}
	}
	if err := g.Definitions.Restore(ctx, e); err != nil {
		if errors.Is(err, registry.ErrUnavailable) || errors.Is(err, registry.ErrConflict) {
			return nil, err // etcd down, or another node registered it meanwhile
		}
		return nil, &Error{Kind: KindInternal, Message: "restore definition", Err: err}
	}
	return e, nil
}
