package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/metadata"
)

// The TSDB keeps samples, not types: the store keeps the type, unit and help
// of each metric family, and which OTel metric claimed each stored name, in
// a snapshot (metadataFile) plus an append-only journal (journalFile) that
// every commit changing them appends to, one JSON line per change. Open and
// Close fold the journal into the snapshot. A torn last line (a crash in
// the middle of a write) is ignored.
const (
	metadataFile = "metadata.json"
	journalFile  = "metadata.journal"
)

// claim is the OTel metric that first used a stored series name.
type claim struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Unit string `json:"unit,omitempty"`
}

// journalLine is one change: a family's metadata or a name claim.
type journalLine struct {
	Family string             `json:"f,omitempty"`
	Meta   *metadata.Metadata `json:"m,omitempty"`
	Series string             `json:"s,omitempty"`
	Claim  *claim             `json:"c,omitempty"`
}

// snapshot is the metadataFile format (version 2; version 1 was the bare
// family -> metadata map).
type snapshot struct {
	Version  int                          `json:"version"`
	Metadata map[string]metadata.Metadata `json:"metadata"`
	Claims   map[string]claim             `json:"claims"`
}

// metaIndex maps metric family names to metadata and stored names to the
// OTel metrics that claimed them.
type metaIndex struct {
	mu     sync.RWMutex
	m      map[string]metadata.Metadata
	claims map[string]claim
	cache  map[metricKey]*metricEntry // by OTel metric; entries claimed or refused
	// gen counts the changes to claims (bumped with mu held, after the
	// change): see Store.ClaimsGeneration.
	gen atomic.Uint64

	jmu          sync.Mutex // orders memory updates with journal writes
	journal      *os.File
	journalBytes int
	dir          string
}

func newMetaIndex() *metaIndex {
	return &metaIndex{m: map[string]metadata.Metadata{}, claims: map[string]claim{}, cache: map[metricKey]*metricEntry{}}
}

// open loads the snapshot and the journal from dir, folds them into a new
// snapshot and opens an empty journal. skipped counts unreadable lines.
func (x *metaIndex) open(dir string) (skipped int, err error) {
	x.dir = dir
	loadErr := x.loadSnapshot(filepath.Join(dir, metadataFile))
	skipped, jErr := x.replay(filepath.Join(dir, journalFile))
	if err := x.compact(); err != nil {
		return skipped, errors.Join(loadErr, jErr, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, journalFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return skipped, errors.Join(loadErr, jErr, fmt.Errorf("open metadata journal: %w", err))
	}
	x.journal = f
	return skipped, errors.Join(loadErr, jErr)
}

// close folds the journal into the snapshot and closes it.
func (x *metaIndex) close() error {
	x.jmu.Lock()
	defer x.jmu.Unlock()
	if x.journal == nil {
		return nil
	}
	err := x.compactLocked()
	if cerr := x.journal.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	x.journal = nil
	return err
}

func (x *metaIndex) compact() error {
	x.jmu.Lock()
	defer x.jmu.Unlock()
	return x.compactLocked()
}

// compactLocked writes the snapshot, then empties the journal. A crash in
// between replays the journal onto the new snapshot: the same state.
func (x *metaIndex) compactLocked() error {
	x.mu.RLock()
	b, err := json.Marshal(snapshot{Version: 2, Metadata: x.m, Claims: x.claims})
	x.mu.RUnlock()
	if err != nil {
		return err
	}
	path := filepath.Join(x.dir, metadataFile)
	if err := writeFileSync(path+".tmp", b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if x.journal != nil {
		if err := x.journal.Truncate(0); err != nil {
			return fmt.Errorf("truncate metadata journal: %w", err)
		}
		x.journalBytes = 0
		return nil
	}
	if err := os.Truncate(filepath.Join(x.dir, journalFile), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("truncate metadata journal: %w", err)
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func (x *metaIndex) loadSnapshot(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	var v int
	if raw, ok := probe["version"]; ok && json.Unmarshal(raw, &v) == nil && v == 2 {
		var snap snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		x.mu.Lock()
		for k, m := range snap.Metadata {
			x.m[k] = m
		}
		for k, c := range snap.Claims {
			x.claims[k] = c
		}
		x.gen.Add(1)
		x.mu.Unlock()
		return nil
	}
	old := map[string]metadata.Metadata{}
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	x.mu.Lock()
	for k, m := range old {
		x.m[k] = m
	}
	x.mu.Unlock()
	return nil
}

// replay applies the journal lines; lines that do not parse (a torn last
// line after a crash) are skipped and counted.
func (x *metaIndex) replay(path string) (skipped int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	x.mu.Lock()
	defer x.mu.Unlock()
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var jl journalLine
		if json.Unmarshal(line, &jl) != nil {
			skipped++
			continue
		}
		if jl.Family != "" && jl.Meta != nil {
			x.m[jl.Family] = *jl.Meta
		}
		if jl.Series != "" && jl.Claim != nil {
			x.claims[jl.Series] = *jl.Claim
		}
	}
	x.gen.Add(1)
	return skipped, sc.Err()
}

// commit records a committed batch's metadata and the claims of its
// metrics not yet persisted, appending what changed to the journal.
func (x *metaIndex) commit(m map[string]metadata.Metadata, entries []*metricEntry) error {
	if len(m) == 0 && len(entries) == 0 {
		return nil
	}
	changed := len(entries) > 0
	if !changed {
		x.mu.RLock()
		for k, v := range m {
			if x.m[k] != v {
				changed = true
				break
			}
		}
		x.mu.RUnlock()
	}
	if !changed {
		return nil
	}
	x.jmu.Lock()
	defer x.jmu.Unlock()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	x.mu.Lock()
	for k, v := range m {
		if x.m[k] != v {
			x.m[k] = v
			_ = enc.Encode(journalLine{Family: k, Meta: &v})
		}
	}
	for _, e := range entries {
		if !e.persisted.CompareAndSwap(false, true) {
			continue
		}
		for _, sn := range e.series {
			c := e.owner
			_ = enc.Encode(journalLine{Series: sn, Claim: &c})
		}
	}
	x.mu.Unlock()
	if x.journal == nil || buf.Len() == 0 {
		return nil
	}
	if _, err := x.journal.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("append to metadata journal: %w", err)
	}
	// metadata that flips between two sources must not grow it forever
	if x.journalBytes += buf.Len(); x.journalBytes > maxJournalBytes {
		return x.compactLocked()
	}
	return nil
}

// maxJournalBytes is when a commit folds the journal into the snapshot.
const maxJournalBytes = 4 << 20

func (x *metaIndex) get(k string) (metadata.Metadata, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	v, ok := x.m[k]
	return v, ok
}

func (x *metaIndex) claimOf(series string) (claim, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	c, ok := x.claims[series]
	return c, ok
}

func (x *metaIndex) snapshot() map[string]metadata.Metadata {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string]metadata.Metadata, len(x.m))
	for k, v := range x.m {
		out[k] = v
	}
	return out
}
