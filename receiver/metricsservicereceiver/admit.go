package metricsservicereceiver

import (
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	"github.com/metricsmodule/metricsmodule/internal/store"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// storeAdmitter refuses, per item and before anything is applied, the
// records the store would not keep: timestamps outside its window, and
// names or labels that collide with others after Prometheus translation.
// (The store checks every batch again when the pipeline stores it; what
// slips between the two, e.g. a window that moved meanwhile, refuses the
// whole request.)
type storeAdmitter struct {
	st  *store.Store
	acc *convert.Accumulator
	now func() time.Time
}

var _ convert.SeriesAdmitter = storeAdmitter{}

// Admit implements convert.Admitter.
func (a storeAdmitter) Admit(m *pb.MetricData, labelNames iter.Seq[string], ts int64) *convert.Issue {
	if iss := a.AdmitPoint(m, ts); iss != nil {
		return iss
	}
	return a.AdmitSeries(m, labelNames)
}

// AdmitPoint implements convert.SeriesAdmitter: the store's time window.
func (a storeAdmitter) AdmitPoint(_ *pb.MetricData, ts int64) *convert.Issue {
	oldest, newest := a.st.Window(a.now())
	t := time.Unix(0, ts)
	if !t.Before(oldest) && !t.After(newest) {
		return nil
	}
	fix := "send points newer than " + oldest.UTC().Format(time.RFC3339Nano) +
		" (late points are kept up to store.out_of_order_window behind the newest sample, and within store.retention), or omit timestamp to use the receive time"
	if t.After(newest) {
		fix = "send points at most store.max_future ahead of the server clock (check the client's clock), or omit timestamp to use the receive time"
	}
	return &convert.Issue{
		Field: ".timestamp", Code: "outside_store_window", Kind: convert.KindOutOfRange,
		Message: fmt.Sprintf("%s is outside the window the store keeps now, [%s, %s]",
			t.UTC().Format(time.RFC3339Nano), oldest.UTC().Format(time.RFC3339Nano), newest.UTC().Format(time.RFC3339Nano)),
		Suggestion: fix,
	}
}

// AdmitSeries implements convert.SeriesAdmitter: name and label collisions
// after Prometheus translation.
func (a storeAdmitter) AdmitSeries(m *pb.MetricData, labelNames iter.Seq[string]) *convert.Issue {
	typ, temporality, monotonic := a.acc.PdataKind(m.Type)
	if r := a.st.CheckMetric(m.Name, m.Unit, typ, temporality, monotonic, labelNames); r != nil {
		return &convert.Issue{
			Field: itemField(r.Field), Code: string(r.Reason), Kind: convert.KindInvalid,
			Message: r.Message, Suggestion: r.Fix,
		}
	}
	return nil
}

// Generation implements convert.SeriesAdmitter: a pass of AdmitSeries holds
// until the store's name claims change.
func (a storeAdmitter) Generation() uint64 { return a.st.ClaimsGeneration() }

// itemField turns a field of the store's refusal into a path relative to a
// record: attributes are the record's labels.
func itemField(f string) string {
	switch {
	case f == "":
		return ""
	case strings.HasPrefix(f, "attributes"):
		return ".labels" + strings.TrimPrefix(f, "attributes")
	default:
		return "." + f
	}
}
