package dedup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The journal keeps the remembered results across a restart, kill -9
// included: one checksummed record per acknowledged request, appended with
// one write(2) right after the request's data was committed and before its
// answer is sent. Data written to the kernel survives the death of the
// process; only a power loss can lose the last records (there is no fsync
// per record). Two generations bound the disk: when the current file holds
// MaxBytes or MaxEntries records, or its first record is older than Window,
// it becomes <path>.old (replacing the previous one, whose records are then
// either expired or older than a full generation of newer ones) and a new
// file starts. Open replays both, skips what expired or is beyond the
// bounds, and writes the rest to a fresh file.
//
// Record layout (little endian):
//
//	uint32 payload length | uint32 CRC-32C of payload | payload
//	payload: byte version (1) | byte kind | int64 unix ns | uvarint key length | key | result
//
// A record whose length runs past the end of the file is a torn write (the
// process died in the middle of it) and ends the replay; a record whose
// checksum does not match is skipped and counted.

// recordVersion is the payload version written.
const recordVersion = 1

// recordHeader is the length and checksum in front of each payload.
const recordHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrJournalClosed is returned by Append after Close.
var ErrJournalClosed = errors.New("dedup journal is closed")

// Record is one remembered result in the journal.
type Record struct {
	// Key is the request id.
	Key string
	// Kind tells the caller's caches apart (e.g. the RPC method).
	Kind uint8
	// Result is the encoded result to replay.
	Result []byte
	// At is when the result was remembered; it expires at At+Window.
	At time.Time
}

// JournalOptions bound a journal. Zero MaxBytes or MaxEntries: no bound.
type JournalOptions struct {
	// Window is how long a record is replayed after it was written.
	Window time.Duration
	// MaxBytes is the size of a generation (the file holds at most two).
	MaxBytes int64
	// MaxEntries is the most records of a generation.
	MaxEntries int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Replay is what Open found in the journal.
type Replay struct {
	// Records are the live records, oldest first, one per key (the last).
	Records []Record
	// Expired counts records older than the window, Dropped those beyond
	// MaxBytes or MaxEntries.
	Expired, Dropped int
	// Corrupt counts records whose checksum or payload was bad.
	Corrupt int
	// Torn is set when a file ended in the middle of a record.
	Torn bool
}

// Journal is an append-only file of remembered results. It is safe for
// concurrent use.
type Journal struct {
	path string
	opts JournalOptions

	mu      sync.Mutex
	f       *os.File
	bytes   int64
	entries int
	first   time.Time // of the current generation
}

// OpenJournal replays the journal at path (and its previous generation),
// rewrites the live records to a fresh file and opens it for appending.
func OpenJournal(path string, opts JournalOptions) (*Journal, Replay, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j := &Journal{path: path, opts: opts}
	var rp Replay
	var all []Record
	for _, p := range []string{path + ".old", path} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, rp, fmt.Errorf("read dedup journal: %w", err)
		}
		recs, corrupt, torn := decodeRecords(b)
		all = append(all, recs...)
		rp.Corrupt += corrupt
		rp.Torn = rp.Torn || torn
	}
	rp.Records, rp.Expired, rp.Dropped = j.live(all)

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, rp, fmt.Errorf("create dedup journal directory: %w", err)
	}
	var buf []byte
	for _, r := range rp.Records {
		buf = appendRecord(buf, r)
	}
	if err := writeFileSync(path+".tmp", buf); err != nil {
		return nil, rp, fmt.Errorf("write dedup journal: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return nil, rp, fmt.Errorf("write dedup journal: %w", err)
	}
	if err := os.Remove(path + ".old"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, rp, fmt.Errorf("remove old dedup journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, rp, fmt.Errorf("open dedup journal: %w", err)
	}
	j.f, j.bytes, j.entries = f, int64(len(buf)), len(rp.Records)
	j.first = opts.Now()
	if len(rp.Records) > 0 {
		j.first = rp.Records[0].At
	}
	return j, rp, nil
}

// live keeps the newest record of each key that is within the window, and
// of those the newest within MaxBytes and MaxEntries, oldest first.
func (j *Journal) live(all []Record) (keep []Record, expired, dropped int) {
	now := j.opts.Now()
	seen := map[string]bool{}
	var size int64
	for i := len(all) - 1; i >= 0; i-- {
		r := all[i]
		if seen[r.Key] {
			continue
		}
		seen[r.Key] = true
		if !r.At.Add(j.opts.Window).After(now) {
			expired++
			continue
		}
		n := int64(recordSize(r))
		if (j.opts.MaxBytes > 0 && size+n > j.opts.MaxBytes) || (j.opts.MaxEntries > 0 && len(keep) >= j.opts.MaxEntries) {
			dropped++
			continue
		}
		size += n
		keep = append(keep, r)
	}
	for i, k := 0, len(keep)-1; i < k; i, k = i+1, k-1 {
		keep[i], keep[k] = keep[k], keep[i]
	}
	return keep, expired, dropped
}

// Append writes r with one write call. It starts a new generation first
// when the current one is full or older than the window.
func (j *Journal) Append(r Record) error {
	b := appendRecord(nil, r)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return ErrJournalClosed
	}
	if j.full(int64(len(b)), r.At) {
		if err := j.rotateLocked(r.At); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("append to dedup journal %s: %w", j.path, err)
	}
	j.bytes += int64(len(b))
	j.entries++
	return nil
}

func (j *Journal) full(n int64, at time.Time) bool {
	if j.entries == 0 {
		return false
	}
	return (j.opts.MaxBytes > 0 && j.bytes+n > j.opts.MaxBytes) ||
		(j.opts.MaxEntries > 0 && j.entries >= j.opts.MaxEntries) ||
		at.Sub(j.first) >= j.opts.Window
}

// rotateLocked makes the current file the previous generation and starts
// an empty one.
func (j *Journal) rotateLocked(at time.Time) error {
	if err := j.f.Close(); err != nil {
		j.f = nil
		return fmt.Errorf("close dedup journal: %w", err)
	}
	j.f = nil
	if err := os.Rename(j.path, j.path+".old"); err != nil {
		return fmt.Errorf("rotate dedup journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("rotate dedup journal: %w", err)
	}
	j.f, j.bytes, j.entries, j.first = f, 0, 0, at
	return nil
}

// Size returns the bytes of the current generation.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.bytes
}

// Close syncs and closes the file; Append then fails. It is idempotent.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := errors.Join(j.f.Sync(), j.f.Close())
	j.f = nil
	return err
}

func recordSize(r Record) int {
	return recordHeader + 2 + 8 + binary.PutUvarint(make([]byte, binary.MaxVarintLen64), uint64(len(r.Key))) + len(r.Key) + len(r.Result)
}

// appendRecord appends the encoding of r to b.
func appendRecord(b []byte, r Record) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeader)...)
	b = append(b, recordVersion, r.Kind)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.At.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = append(b, r.Result...)
	payload := b[start+recordHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// decodeRecords reads the records of one file: corrupt counts those skipped
// for a bad checksum or payload, torn is set when the file ends inside one.
func decodeRecords(b []byte) (recs []Record, corrupt int, torn bool) {
	for len(b) > 0 {
		if len(b) < recordHeader {
			return recs, corrupt, true
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-recordHeader) {
			return recs, corrupt, true
		}
		payload := b[recordHeader : recordHeader+int(n)]
		sum := binary.LittleEndian.Uint32(b[4:])
		b = b[recordHeader+int(n):]
		if crc32.Checksum(payload, castagnoli) != sum {
			corrupt++
			continue
		}
		r, ok := decodePayload(payload)
		if !ok {
			corrupt++
			continue
		}
		recs = append(recs, r)
	}
	return recs, corrupt, false
}

func decodePayload(p []byte) (Record, bool) {
	if len(p) < 10 || p[0] != recordVersion {
		return Record{}, false
	}
	r := Record{Kind: p[1], At: time.Unix(0, int64(binary.LittleEndian.Uint64(p[2:])))}
	p = p[10:]
	kl, n := binary.Uvarint(p)
	if n <= 0 || kl > uint64(len(p)-n) {
		return Record{}, false
	}
	p = p[n:]
	r.Key = string(p[:kl])
	if rest := p[kl:]; len(rest) > 0 {
		r.Result = append([]byte(nil), rest...)
	}
	return r, true
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
