package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Storage layout: one index key, one key per provider and per backup. Every
// change is one storage Batch (a transaction in file_storage).
const (
	keyIndex         = "providers/index"
	keyProviderPfx   = "providers/p/"
	keyBackupPfx     = "providers/b/"
	storeTimeout     = 10 * time.Second
	recordFormatVers = 1
)

// record is the persisted state of a provider: its config versions and
// whether it should run.
type record struct {
	Format    int       `json:"format"`
	ID        string    `json:"id"`
	Version   uint64    `json:"version"`
	Last      uint64    `json:"last_version"`
	Running   bool      `json:"running"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// DeleteAt is a scheduled deletion.
	DeleteAt *time.Time `json:"delete_at,omitempty"`
	// Deleting is set while a BACKGROUND deletion drains.
	Deleting bool            `json:"deleting,omitempty"`
	Versions []*versionEntry `json:"versions"`
	// Generation is issued at creation and never reused (0: stored before
	// generations; one is issued at restore).
	Generation uint64 `json:"generation,omitempty"`
	// modRev is the etcd mod revision this record was read or written at
	// (etcd registry only).
	modRev int64
}

// versionEntry is one config version. Applied is false for a candidate that
// was rolled back or failed to start.
type versionEntry struct {
	Version   uint64          `json:"version"`
	Config    json.RawMessage `json:"config"`
	CreatedAt time.Time       `json:"created_at"`
	Note      string          `json:"note"`
	Applied   bool            `json:"applied"`
	cfg       *pb.ProviderConfig
}

// backupRecord is a provider's record saved by an update or a deletion.
type backupRecord struct {
	ID         string    `json:"id"`
	ProviderID string    `json:"provider_id"`
	CreatedAt  time.Time `json:"created_at"`
	Reason     string    `json:"reason"`
	Record     *record   `json:"record"`
}

type index struct {
	Providers []string `json:"providers"`
	Backups   []string `json:"backups"`
	// Generation is the last provider generation issued.
	Generation uint64 `json:"generation,omitempty"`
}

func newVersion(v uint64, pc *pb.ProviderConfig, at time.Time, note string, applied bool) (*versionEntry, error) {
	raw, err := protojson.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return &versionEntry{Version: v, Config: raw, CreatedAt: at, Note: note, Applied: applied, cfg: proto.Clone(pc).(*pb.ProviderConfig)}, nil
}

// config returns the decoded config of a version.
func (v *versionEntry) config() (*pb.ProviderConfig, error) {
	if v.cfg == nil {
		pc := &pb.ProviderConfig{}
		if err := protojson.Unmarshal(v.Config, pc); err != nil {
			return nil, fmt.Errorf("decode config of version %d: %w", v.Version, err)
		}
		v.cfg = pc
	}
	return proto.Clone(v.cfg).(*pb.ProviderConfig), nil
}

// find returns the entry of version v.
func (r *record) find(v uint64) *versionEntry {
	for _, e := range r.Versions {
		if e.Version == v {
			return e
		}
	}
	return nil
}

// current returns the config of the current version.
func (r *record) current() (*pb.ProviderConfig, error) {
	e := r.find(r.Version)
	if e == nil {
		return nil, fmt.Errorf("record of %q has no version %d", r.ID, r.Version)
	}
	return e.config()
}

// addVersion appends a version, trimming the history to maxVersions (the
// current version is always kept).
func (r *record) addVersion(e *versionEntry, maxVersions int) {
	r.Versions = append(r.Versions, e)
	r.Last = max(r.Last, e.Version)
	for len(r.Versions) > max(maxVersions, 1) {
		i := 0
		if r.Versions[0].Version == r.Version || (e.Applied && r.Versions[0].Version == e.Version) {
			i = 1
		}
		r.Versions = slices.Delete(r.Versions, i, i+1)
	}
}

// clone deep-copies a record (versions share their immutable config bytes).
func (r *record) clone() *record {
	c := *r
	c.Versions = make([]*versionEntry, len(r.Versions))
	for i, e := range r.Versions {
		ce := *e
		c.Versions[i] = &ce
	}
	if r.DeleteAt != nil {
		t := *r.DeleteAt
		c.DeleteAt = &t
	}
	return &c
}

// registryStore persists the registry: a storage client (persister) or
// etcd (etcdStore).
type registryStore interface {
	apply(ctx context.Context, c change) error
	load(ctx context.Context) (recs []*record, backups []*backupRecord, gen uint64, bad []error, err error)
}

// persister writes records through a storage client; with no client the
// registry lives in memory only.
type persister struct {
	client storage.Client
}

// change is one transaction.
type change struct {
	setProviders []*record
	delProviders []string
	setBackups   []*backupRecord
	delBackups   []string
	// index after the change.
	providers, backups []string
	generation         uint64
}

func (p *persister) apply(ctx context.Context, c change) error {
	if p.client == nil {
		return nil
	}
	var ops []*storage.Operation
	for _, r := range c.setProviders {
		r.Format = recordFormatVers
		b, err := marshalRecord(r)
		if err != nil {
			return fmt.Errorf("encode provider %q: %w", r.ID, err)
		}
		ops = append(ops, storage.SetOperation(keyProviderPfx+r.ID, b))
	}
	for _, id := range c.delProviders {
		ops = append(ops, storage.DeleteOperation(keyProviderPfx+id))
	}
	for _, b := range c.setBackups {
		raw, err := marshalRecord(b)
		if err != nil {
			return fmt.Errorf("encode backup %q: %w", b.ID, err)
		}
		ops = append(ops, storage.SetOperation(keyBackupPfx+b.ID, raw))
	}
	for _, id := range c.delBackups {
		ops = append(ops, storage.DeleteOperation(keyBackupPfx+id))
	}
	sort.Strings(c.providers)
	idx, err := json.Marshal(index{Providers: c.providers, Backups: c.backups, Generation: c.generation})
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	ops = append(ops, storage.SetOperation(keyIndex, idx))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := p.client.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("write provider registry: %w", err)
	}
	return nil
}

// load reads every record and backup. Records that do not decode are
// reported and skipped.
func (p *persister) load(ctx context.Context) (recs []*record, backups []*backupRecord, gen uint64, bad []error, err error) {
	recs, backups, gen, bad, err = p.loadAll(ctx)
	for _, r := range recs {
		gen = max(gen, r.Generation)
	}
	for _, b := range backups {
		gen = max(gen, b.Record.Generation)
	}
	return recs, backups, gen, bad, err
}

func (p *persister) loadAll(ctx context.Context) (recs []*record, backups []*backupRecord, gen uint64, bad []error, err error) {
	if p.client == nil {
		return nil, nil, 0, nil, nil
	}
	raw, err := p.client.Get(ctx, keyIndex)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("read provider registry index: %w", err)
	}
	if raw == nil {
		return nil, nil, 0, nil, nil
	}
	var idx index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, nil, 0, nil, fmt.Errorf("decode provider registry index: %w", err)
	}
	for _, id := range idx.Providers {
		b, err := p.client.Get(ctx, keyProviderPfx+id)
		if err != nil {
			return nil, nil, 0, nil, fmt.Errorf("read provider %q: %w", id, err)
		}
		r := &record{}
		if b == nil {
			bad = append(bad, fmt.Errorf("provider %q is in the index but not stored", id))
			continue
		}
		if err := json.Unmarshal(b, r); err != nil {
			bad = append(bad, fmt.Errorf("decode provider %q: %w", id, err))
			continue
		}
		if _, err := r.current(); err != nil {
			bad = append(bad, err)
			continue
		}
		recs = append(recs, r)
	}
	for _, id := range idx.Backups {
		b, err := p.client.Get(ctx, keyBackupPfx+id)
		if err != nil {
			return nil, nil, 0, nil, fmt.Errorf("read backup %q: %w", id, err)
		}
		br := &backupRecord{}
		if b == nil || json.Unmarshal(b, br) != nil || br.Record == nil {
			bad = append(bad, errors.New("backup "+id+" does not decode"))
			continue
		}
		backups = append(backups, br)
	}
	return recs, backups, idx.Generation, bad, nil
}

// marshalRecord encodes a stored record as JSON without HTML escaping: a
// config full of '<', '>' or '&' would otherwise take six bytes stored per
// byte sent.
func marshalRecord(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
