package metricsservicereceiver

import (
	"fmt"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/dedup"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Kinds of the dedup journal's records: which method answered.
const (
	journalRecordMetric      uint8 = 1
	journalRecordBatchMetric uint8 = 2
)

// journalPath is where the dedup journal lives: dedup.path, or next to the
// store; empty keeps request ids in memory only.
func (r *metricsReceiver) journalPath() string {
	return journalPathFor(r.cfg.Dedup, r.settings.ID, r.dataDir())
}

// journalPathFor is journalPath for a receiver id whose store's parent
// directory is dir ("" without a store).
func journalPathFor(d DedupConfig, id component.ID, dir string) string {
	if d.Window <= 0 || !d.Persist {
		return ""
	}
	if d.Path != "" {
		return d.Path
	}
	if dir == "" {
		return ""
	}
	if name := id.Name(); name != "" {
		return filepath.Join(dir, "dedup-"+name+".journal")
	}
	return filepath.Join(dir, "dedup.journal")
}

// openDedupJournal replays the dedup journal into the caches and journals
// every new result from then on (call before serving).
func (r *metricsReceiver) openDedupJournal() error {
	path := r.journalPath()
	if path == "" || r.in.dedupOne == nil {
		return nil
	}
	d := r.cfg.Dedup
	j, rp, err := dedup.OpenJournal(path, dedup.JournalOptions{Window: d.Window, MaxBytes: d.MaxBytes, MaxEntries: d.MaxEntries})
	if err != nil {
		return fmt.Errorf("dedup.path: %w (fix: make the directory writable, set dedup.path elsewhere, or dedup.persist: false)", err)
	}
	restored := 0
	for _, rec := range rp.Records {
		ok := false
		switch rec.Kind {
		case journalRecordMetric:
			resp := &pb.RecordMetricResponse{}
			ok = resp.UnmarshalVT(rec.Result) == nil && r.in.dedupOne.Restore(rec.Key, resp, rec.At)
		case journalRecordBatchMetric:
			resp := &pb.RecordBatchMetricsResponse{}
			ok = resp.UnmarshalVT(rec.Result) == nil && r.in.dedupMany.Restore(rec.Key, resp, rec.At)
		}
		if ok {
			restored++
		} else {
			rp.Corrupt++
		}
	}
	r.in.journal = j
	r.in.dedupOne.OnRemember(func(key string, resp *pb.RecordMetricResponse) {
		b, err := resp.MarshalVT()
		r.appendJournal(journalRecordMetric, key, b, err)
	})
	r.in.dedupMany.OnRemember(func(key string, resp *pb.RecordBatchMetricsResponse) {
		b, err := resp.MarshalVT()
		r.appendJournal(journalRecordBatchMetric, key, b, err)
	})
	fields := []zap.Field{zap.String("path", path), zap.Int("restored", restored), zap.Int("expired", rp.Expired), zap.Int("dropped", rp.Dropped)}
	if rp.Corrupt > 0 || rp.Torn {
		r.settings.Logger.Warn("Dedup journal had unreadable records (skipped; a torn last record is the trace of a crash in the middle of a write)",
			append(fields, zap.Int("corrupt", rp.Corrupt), zap.Bool("torn", rp.Torn))...)
	} else {
		r.settings.Logger.Info("Opened dedup journal: request ids are remembered across restarts", fields...)
	}
	return nil
}

// appendJournal writes one acknowledged result to the journal, in the
// goroutine of the request, after the pipeline committed its data and
// before the answer is sent. A result whose data the pipeline did not store
// before the answer is not journaled: after a crash its retry must run
// again. A failed write is logged once (the result is still remembered in
// memory).
func (r *metricsReceiver) appendJournal(kind uint8, key string, b []byte, err error) {
	if r.in.unsyncedWarned.Load() {
		return
	}
	if err == nil {
		err = r.in.journal.Append(dedup.Record{Key: key, Kind: kind, Result: b, At: time.Now()})
	}
	if err != nil {
		if r.in.journalFailing.CompareAndSwap(false, true) {
			r.settings.Logger.Warn("Cannot write the dedup journal: a retry after a crash may count its request again", zap.Error(err))
		}
		return
	}
	if r.in.journalFailing.CompareAndSwap(true, false) {
		r.settings.Logger.Info("Writing the dedup journal again")
	}
}

// closeDedupJournal closes the journal (after the server stopped).
func (r *metricsReceiver) closeDedupJournal() error {
	if r.in.journal == nil {
		return nil
	}
	return r.in.journal.Close()
}
