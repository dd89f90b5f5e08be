// Package registry keeps metric definitions (schemas): versions with
// compatibility checks, persistence, and checks of records at ingest with
// messages that name the rule broken and the fix.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Mode says what happens to records of metrics that are not registered.
type Mode string

const (
	// ModeOpen accepts unregistered metrics.
	ModeOpen Mode = "open"
	// ModeStrict refuses them.
	ModeStrict Mode = "strict"
)

const stateKey = "registry/v1"

// Version is one saved version of a definition.
type Version struct {
	Version    uint64
	Definition *pb.MetricDefinition
	CreatedAt  time.Time
	Compatible bool
	Changes    []*pb.SchemaChange
}

// Entry is a registered metric with its history.
type Entry struct {
	Name      string
	Versions  []Version // oldest first
	CreatedAt time.Time
	UpdatedAt time.Time
	Index     bool
}

// Current returns the newest version.
func (e *Entry) Current() Version { return e.Versions[len(e.Versions)-1] }

// Deletion is data deletion scheduled by UnregisterMetric.
type Deletion struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Registry holds the definitions. Reads at ingest are lock free.
type Registry struct {
	kv   KV           // local backend (nil on etcd)
	etcd *etcdBackend // etcd backend (nil on a local one)
	mode Mode
	now  func() time.Time

	mu        sync.Mutex // writers
	lim       convert.Limits
	entries   map[string]*Entry
	deletions []Deletion
	compiled  atomic.Pointer[map[string]*compiled]
	rejects   rejections
}

// Open loads the registry from kv.
func Open(ctx context.Context, kv KV, mode Mode) (*Registry, error) {
	if mode != ModeOpen && mode != ModeStrict {
		return nil, fmt.Errorf("mode: %q is not one of open, strict", mode)
	}
	r := &Registry{kv: kv, mode: mode, now: time.Now, entries: map[string]*Entry{}, lim: convert.DefaultConfig().Limits}
	raw, err := kv.Get(ctx, stateKey)
	if err != nil {
		return nil, fmt.Errorf("load registry: %w", err)
	}
	if raw != nil {
		if err := r.decode(raw); err != nil {
			return nil, fmt.Errorf("load registry: %w", err)
		}
	}
	if err := r.recompile(); err != nil {
		return nil, err
	}
	return r, nil
}

// Close closes the underlying store (on etcd: stops following the other
// nodes; the client stays open).
func (r *Registry) Close(ctx context.Context) error {
	if r.etcd != nil {
		r.etcd.close()
		return nil
	}
	return r.kv.Close(ctx)
}

// Health returns the state of the backend.
func (r *Registry) Health() Health {
	if r.etcd != nil {
		return r.etcd.health()
	}
	return Health{Backend: "local"}
}

// SetFence makes DueDeletions on etcd run only while fence reports ok, and
// adds its comparison to the write (a leader election's fence: the write
// fails once this node's leadership lease is gone). No effect on a local
// backend.
func (r *Registry) SetFence(fence func() (clientv3.Cmp, bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.etcd != nil {
		r.etcd.fence = fence
	}
}

// DoneDeletions returns the scheduled deletions another node completed
// since the last call (etcd: the node that took them with DueDeletions
// deleted the data it holds; each other node deletes its own copy). Nil on
// a local backend.
func (r *Registry) DoneDeletions() []Deletion {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.etcd == nil {
		return nil
	}
	out := r.etcd.done
	r.etcd.done = nil
	return out
}

// Mode returns the mode.
func (r *Registry) Mode() Mode { return r.mode }

// SetClock replaces the clock (tests).
func (r *Registry) SetClock(now func() time.Time) { r.now = now }

// Validate checks a record against its definition (convert.Validator).
func (r *Registry) Validate(m *pb.MetricData) *convert.Issue {
	defs := *r.compiled.Load()
	c := defs[m.Name]
	var iss *convert.Issue
	switch {
	case c != nil:
		iss = c.check(m)
	case r.mode == ModeStrict:
		iss = refuse(".name", "unregistered_metric",
			fmt.Sprintf("metric %q is not registered and the registry is strict", m.Name),
			"register it with RegisterMetric first")
	}
	if iss != nil {
		// m.Name may point into a request buffer (internal/grpccodec)
		r.rejects.add(strings.Clone(m.Name), r.now(), iss.Message)
	}
	return iss
}

// AllowsNaN reports whether a registered metric accepts NaN values.
func (r *Registry) AllowsNaN(name string) bool {
	c := (*r.compiled.Load())[name]
	return c != nil && c.allowNaN
}

// RegisterOptions tune Register.
type RegisterOptions struct {
	DryRun        bool
	AllowBreaking bool
	Index         bool
}

// RegisterResult is the outcome of Register.
type RegisterResult struct {
	Definition *pb.MetricDefinition
	Version    uint64
	Created    bool
	Compatible bool
	Changes    []*pb.SchemaChange
	// Unchanged is true when the definition equals the current version.
	Unchanged bool
}

// InvalidError lists what is wrong with a definition.
type InvalidError struct{ Issues []*pb.ValidationIssue }

func (e *InvalidError) Error() string {
	return fmt.Sprintf("definition invalid: %s: %s", e.Issues[0].Field, e.Issues[0].Message)
}

// ErrBreaking is returned for an incompatible change without AllowBreaking.
var ErrBreaking = errors.New("the change is not backward compatible")

// BreakingError is an incompatible change without AllowBreaking: the
// changes that break (errors.Is(err, ErrBreaking) holds).
type BreakingError struct{ Changes []*pb.SchemaChange }

// Error lists the breaking changes and the fix.
func (e *BreakingError) Error() string {
	var b []string
	for _, c := range e.Changes {
		if c.Breaking {
			b = append(b, c.Description)
		}
	}
	return ErrBreaking.Error() + ": " + strings.Join(b, "; ") + " (fix: set allow_breaking to accept it, or dry_run to see every change)"
}

// Is makes errors.Is(err, ErrBreaking) hold.
func (e *BreakingError) Is(target error) bool { return target == ErrBreaking }

// Register creates or updates a definition; every change is a new version.
func (r *Registry) Register(ctx context.Context, def *pb.MetricDefinition, opts RegisterOptions) (*RegisterResult, error) {
	if issues := ValidateDefinition(def, r.limits()); len(issues) > 0 {
		return nil, &InvalidError{Issues: issues}
	}
	if _, err := compile(def, 1, opts.Index); err != nil {
		return nil, &InvalidError{Issues: []*pb.ValidationIssue{{Field: "definition", Code: "invalid", Message: err.Error(), Severity: pb.Severity_SEVERITY_ERROR}}}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	e := r.entries[def.Name]
	res := &RegisterResult{Definition: def, Compatible: true}
	if e == nil {
		res.Created, res.Version = true, 1
	} else {
		cur := e.Current()
		if proto.Equal(cur.Definition, def) && e.Index == (opts.Index || e.Index) {
			res.Unchanged, res.Version = true, cur.Version
			return res, nil
		}
		res.Changes = Compare(cur.Definition, def)
		res.Compatible = !Breaking(res.Changes)
		res.Version = cur.Version + 1
		if !res.Compatible && !opts.AllowBreaking {
			return res, &BreakingError{Changes: res.Changes}
		}
	}
	if opts.DryRun {
		return res, nil
	}
	next := cloneEntries(r.entries)
	ne := next[def.Name]
	if ne == nil {
		ne = &Entry{Name: def.Name, CreatedAt: now}
		next[def.Name] = ne
	}
	ne.Versions = append(ne.Versions, Version{Version: res.Version, Definition: proto.Clone(def).(*pb.MetricDefinition), CreatedAt: now, Compatible: res.Compatible, Changes: res.Changes})
	ne.UpdatedAt = now
	ne.Index = ne.Index || opts.Index
	if err := r.commit(ctx, next, r.deletions); err != nil {
		return nil, err
	}
	return res, nil
}

// Restore puts back an entry (with its history) saved in a backup. An
// entry over the bounds in force is refused (CheckEntry).
func (r *Registry) Restore(ctx context.Context, e *Entry) error {
	if err := r.CheckEntry(e); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.entries[e.Name]; ok {
		return fmt.Errorf("metric %q is registered: unregister it before restoring a backup", e.Name)
	}
	next := cloneEntries(r.entries)
	next[e.Name] = e
	var dels []Deletion
	for _, d := range r.deletions {
		if d.Name != e.Name {
			dels = append(dels, d)
		}
	}
	return r.commit(ctx, next, dels)
}

// Unregister removes a definition and returns it; deleteAt, when set,
// schedules the deletion of its data.
func (r *Registry) Unregister(ctx context.Context, name string, deleteAt time.Time) (*Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[name]
	if e == nil {
		return nil, ErrNotFound
	}
	next := cloneEntries(r.entries)
	delete(next, name)
	dels := append([]Deletion(nil), r.deletions...)
	if !deleteAt.IsZero() {
		dels = append(dels, Deletion{Name: name, At: deleteAt})
	}
	if err := r.commit(ctx, next, dels); err != nil {
		return nil, err
	}
	return e, nil
}

// UnregisterNow is Unregister for a metric whose data the caller deletes
// now. On etcd the same write tells every other node to delete its own
// copy of the data (they see it in DoneDeletions); on a local backend it is
// Unregister.
func (r *Registry) UnregisterNow(ctx context.Context, name string) (*Entry, error) {
	if r.etcd == nil {
		return r.Unregister(ctx, name, time.Time{})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[name]
	if e == nil {
		return nil, ErrNotFound
	}
	next := cloneEntries(r.entries)
	delete(next, name)
	kept, err := r.etcd.commit(ctx, next, r.deletions, []Deletion{{Name: name, At: r.now()}}, false)
	if err != nil {
		return nil, err
	}
	r.entries, r.deletions = next, kept
	return e, r.recompile()
}

// ErrNotFound is returned for a metric that is not registered.
var ErrNotFound = errors.New("metric is not registered")

// DueDeletions returns the scheduled deletions due at now and removes them.
// On etcd this is once-only work of the fleet: the removal is one
// compare-and-swap (and, with SetFence, only while this node leads), so
// exactly one node gets each deletion; it returns nothing on a node that
// does not lead or lost the race. The other nodes see it in DoneDeletions.
func (r *Registry) DueDeletions(ctx context.Context, now time.Time) ([]Deletion, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due, keep []Deletion
	for _, d := range r.deletions {
		if !d.At.After(now) {
			due = append(due, d)
		} else {
			keep = append(keep, d)
		}
	}
	if len(due) == 0 {
		return nil, nil
	}
	if r.etcd != nil {
		kept, err := r.etcd.commit(ctx, r.entries, keep, due, true)
		var conflict *ConflictError
		switch {
		case errors.Is(err, errNotLeading), errors.As(err, &conflict):
			return nil, nil // another node takes them (or took them)
		case err != nil:
			return nil, err
		}
		r.deletions = kept
		return due, nil
	}
	return due, r.commit(ctx, r.entries, keep)
}

// Pending returns the scheduled deletions.
func (r *Registry) Pending() []Deletion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Deletion(nil), r.deletions...)
}

// Get returns the entry of name.
func (r *Registry) Get(name string) (*Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	return e, ok
}

// List returns the entries whose names match one of the globs (all when
// none), by name.
func (r *Registry) List(globs []string) []*Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Entry
	for name, e := range r.entries {
		if MatchAny(globs, name) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MatchAny reports whether name matches one of the globs (true for none).
func MatchAny(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// IndexedValues returns the label values seen for an indexed metric.
func (r *Registry) IndexedValues(name, label string) ([]string, bool) {
	c := (*r.compiled.Load())[name]
	if c == nil || !c.index {
		return nil, false
	}
	l := c.labels[label]
	if l == nil {
		return nil, false
	}
	var out []string
	l.seen.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	sort.Strings(out)
	return out, true
}

// IndexedLabels returns the declared label names of an indexed metric.
func (r *Registry) IndexedLabels(name string) ([]string, bool) {
	c := (*r.compiled.Load())[name]
	if c == nil || !c.index {
		return nil, false
	}
	out := make([]string, 0, len(c.labels))
	for l := range c.labels {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, true
}

// Rejections returns the records of name refused in the last hour and the
// last reason.
func (r *Registry) Rejections(name string) (int64, string) {
	return r.rejects.lastHour(name, r.now())
}

// commit persists the new state, then publishes it. Callers hold r.mu.
func (r *Registry) commit(ctx context.Context, entries map[string]*Entry, dels []Deletion) error {
	if r.etcd != nil {
		kept, err := r.etcd.commit(ctx, entries, dels, nil, false)
		if err != nil {
			return err
		}
		r.entries, r.deletions = entries, kept
		return r.recompile()
	}
	raw, err := encode(entries, dels)
	if err != nil {
		return err
	}
	if err := r.kv.Set(ctx, stateKey, raw); err != nil {
		return fmt.Errorf("save registry: %w", err)
	}
	r.entries, r.deletions = entries, dels
	return r.recompile()
}

// recompile publishes compiled definitions, keeping the label state of
// definitions that did not change.
func (r *Registry) recompile() error { return r.recompileForce(nil) }

// recompileForce is recompile that compiles the names in force again even
// when their version looks unchanged (another node unregistered and
// registered them again). A definition that does not compile is left out
// (and reported); the others are published.
func (r *Registry) recompileForce(force map[string]bool) error {
	old := map[string]*compiled{}
	if p := r.compiled.Load(); p != nil {
		old = *p
	}
	var errs []error
	next := make(map[string]*compiled, len(r.entries))
	for name, e := range r.entries {
		cur := e.Current()
		if c := old[name]; c != nil && !force[name] && c.version == cur.Version && c.index == e.Index {
			next[name] = c
			continue
		}
		c, err := compile(cur.Definition, cur.Version, e.Index)
		if err != nil {
			errs = append(errs, fmt.Errorf("compile %s: %w", name, err))
			continue
		}
		next[name] = c
	}
	r.compiled.Store(&next)
	return errors.Join(errs...)
}

func cloneEntries(m map[string]*Entry) map[string]*Entry {
	out := make(map[string]*Entry, len(m)+1)
	for k, v := range m {
		c := *v
		c.Versions = append([]Version(nil), v.Versions...)
		out[k] = &c
	}
	return out
}

// wire forms of the persisted state (definitions as protojson).
type wireState struct {
	Entries   []wireEntry `json:"entries"`
	Deletions []Deletion  `json:"deletions,omitempty"`
}

type wireEntry struct {
	Name      string        `json:"name"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	Index     bool          `json:"index,omitempty"`
	Versions  []wireVersion `json:"versions"`
}

type wireVersion struct {
	Version    uint64            `json:"version"`
	Definition json.RawMessage   `json:"definition"`
	CreatedAt  time.Time         `json:"created_at"`
	Compatible bool              `json:"compatible"`
	Changes    []json.RawMessage `json:"changes,omitempty"`
}

// EncodeEntry serializes one entry (backups).
func EncodeEntry(e *Entry) ([]byte, error) {
	we, err := toWire(e)
	if err != nil {
		return nil, err
	}
	return json.Marshal(we)
}

// DecodeEntry parses an entry written by EncodeEntry.
func DecodeEntry(raw []byte) (*Entry, error) {
	var we wireEntry
	if err := json.Unmarshal(raw, &we); err != nil {
		return nil, err
	}
	return fromWire(we)
}

func toWire(e *Entry) (wireEntry, error) {
	we := wireEntry{Name: e.Name, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Index: e.Index}
	for _, v := range e.Versions {
		def, err := protojson.Marshal(v.Definition)
		if err != nil {
			return we, err
		}
		wv := wireVersion{Version: v.Version, Definition: def, CreatedAt: v.CreatedAt, Compatible: v.Compatible}
		for _, c := range v.Changes {
			raw, err := protojson.Marshal(c)
			if err != nil {
				return we, err
			}
			wv.Changes = append(wv.Changes, raw)
		}
		we.Versions = append(we.Versions, wv)
	}
	return we, nil
}

func fromWire(we wireEntry) (*Entry, error) {
	e := &Entry{Name: we.Name, CreatedAt: we.CreatedAt, UpdatedAt: we.UpdatedAt, Index: we.Index}
	for _, wv := range we.Versions {
		def := &pb.MetricDefinition{}
		if err := protojson.Unmarshal(wv.Definition, def); err != nil {
			return nil, fmt.Errorf("definition of %s v%d: %w", we.Name, wv.Version, err)
		}
		v := Version{Version: wv.Version, Definition: def, CreatedAt: wv.CreatedAt, Compatible: wv.Compatible}
		for _, raw := range wv.Changes {
			c := &pb.SchemaChange{}
			if err := protojson.Unmarshal(raw, c); err != nil {
				return nil, err
			}
			v.Changes = append(v.Changes, c)
		}
		e.Versions = append(e.Versions, v)
	}
	if len(e.Versions) == 0 {
		return nil, fmt.Errorf("entry %s has no versions", we.Name)
	}
	return e, nil
}

func encode(entries map[string]*Entry, dels []Deletion) ([]byte, error) {
	ws := wireState{Deletions: dels}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		we, err := toWire(entries[n])
		if err != nil {
			return nil, err
		}
		ws.Entries = append(ws.Entries, we)
	}
	return json.Marshal(ws)
}

func (r *Registry) decode(raw []byte) error {
	var ws wireState
	if err := json.Unmarshal(raw, &ws); err != nil {
		return err
	}
	for _, we := range ws.Entries {
		e, err := fromWire(we)
		if err != nil {
			return err
		}
		r.entries[e.Name] = e
	}
	r.deletions = ws.Deletions
	return nil
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:.]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.]*$`)
)

// ValidateDefinition lists what is wrong with a definition, its text
// bounded by the record limits lim (see SetLimits).
func ValidateDefinition(d *pb.MetricDefinition, lim convert.Limits) []*pb.ValidationIssue {
	var out []*pb.ValidationIssue
	add := func(field, code, msg, fix string) {
		out = append(out, &pb.ValidationIssue{Field: "definition." + field, Code: code, Message: msg, Suggestion: fix, Severity: pb.Severity_SEVERITY_ERROR})
	}
	if d == nil {
		return []*pb.ValidationIssue{{Field: "definition", Code: "missing", Message: "the definition is not set", Suggestion: "set definition", Severity: pb.Severity_SEVERITY_ERROR}}
	}
	if !metricNameRE.MatchString(d.Name) {
		add("name", "invalid_metric_name", fmt.Sprintf("metric name %q is invalid: it must match [a-zA-Z_:][a-zA-Z0-9_:.]*", d.Name), "use letters, digits, '_', ':' and '.'")
	}
	if d.Type == pb.MetricType_METRIC_TYPE_UNSPECIFIED || pb.MetricType_name[int32(d.Type)] == "" {
		add("type", "missing_type", "type is not set or unknown", "set METRIC_TYPE_COUNTER, _GAUGE, _HISTOGRAM, _SUMMARY or _TIMER")
	}
	seen := map[string]bool{}
	labels := d.Labels
	if tooManyLabels(d, lim) {
		labels = nil // refused by checkBounds, unchecked: the caller drops some first
	}
	for i, l := range labels {
		f := fmt.Sprintf("labels[%d]", i)
		switch {
		case !labelNameRE.MatchString(l.Name):
			add(f+".name", "invalid_label_name", fmt.Sprintf("label name %q is invalid", l.Name), "use letters, digits, '_' and '.'")
		case len(l.Name) >= 2 && l.Name[:2] == "__":
			add(f+".name", "reserved_label_name", fmt.Sprintf("label name %q is reserved", l.Name), "rename the label")
		case seen[l.Name]:
			add(f+".name", "duplicate_label", fmt.Sprintf("label %q is declared twice", l.Name), "declare each label once")
		}
		seen[l.Name] = true
		if l.Pattern != "" {
			if _, err := regexp.Compile(l.Pattern); err != nil {
				add(f+".pattern", "invalid_pattern", err.Error(), "use an RE2 regular expression")
			}
		}
		if l.Required && l.DefaultValue != "" {
			add(f+".default_value", "default_on_required", "a required label cannot have a default", "make the label optional or drop the default")
		}
		if l.DefaultValue != "" && len(l.AllowedValues) > 0 && !contains(l.AllowedValues, l.DefaultValue) {
			add(f+".default_value", "default_not_allowed", fmt.Sprintf("default %q is not an allowed value", l.DefaultValue), "add it to allowed_values")
		}
	}
	if k := d.Constraints; k != nil && k.Min != nil && k.Max != nil && *k.Min > *k.Max {
		add("constraints", "min_above_max", fmt.Sprintf("min %v is above max %v", *k.Min, *k.Max), "swap them")
	}
	for i := 1; i < len(d.HistogramBuckets); i++ {
		if d.HistogramBuckets[i] <= d.HistogramBuckets[i-1] {
			add("histogram_buckets", "unsorted_buckets", "bucket bounds must be strictly increasing", "sort them and drop duplicates")
			break
		}
	}
	for _, b := range checkBounds(d, lim) {
		add(b.field, b.code, b.msg, b.suggestion())
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rejections counts refused records per metric over the last hour.
type rejections struct {
	mu sync.Mutex
	m  map[string]*rejectLog
}

type rejectLog struct {
	times []time.Time
	last  string
}

const rejectKeep = 10_000

func (r *rejections) add(name string, at time.Time, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*rejectLog{}
	}
	l := r.m[name]
	if l == nil {
		if len(r.m) >= rejectKeep {
			return
		}
		l = &rejectLog{}
		r.m[name] = l
	}
	cut := 0
	for cut < len(l.times) && at.Sub(l.times[cut]) > time.Hour {
		cut++
	}
	l.times = append(l.times[cut:], at)
	if len(l.times) > rejectKeep {
		l.times = l.times[len(l.times)-rejectKeep:]
	}
	l.last = msg
}

func (r *rejections) lastHour(name string, now time.Time) (int64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.m[name]
	if l == nil {
		return 0, ""
	}
	var n int64
	for _, t := range l.times {
		if now.Sub(t) <= time.Hour {
			n++
		}
	}
	return n, l.last
}
