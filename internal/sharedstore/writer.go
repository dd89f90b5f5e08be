package sharedstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"go.uber.org/zap"
)

// Writer writes batches to the backend by Prometheus remote write 1.0,
// one synchronous request per batch.
type Writer struct {
	cfg    Config
	client *http.Client
	logger *zap.Logger
	down   atomic.Bool // the last write failed (logged once per outage)

	written atomic.Int64 // samples accepted by the backend
	refused atomic.Int64 // batches not accepted
}

// NewWriter returns a writer; cfg must be valid. It logs when the backend
// stops accepting batches and when it accepts them again (not per batch).
func NewWriter(cfg Config, logger *zap.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Writer{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, logger: logger}, nil
}

// Config returns the writer's settings.
func (w *Writer) Config() Config { return w.cfg }

// Stats returns the samples the backend accepted and the batches it did
// not accept since start.
func (w *Writer) Stats() (samples, refusedBatches int64) {
	return w.written.Load(), w.refused.Load()
}

// Batch collects the samples of one batch (a store.SampleRecorder).
type Batch struct {
	series  []prompb.TimeSeries
	meta    map[string]metadata.Metadata
	samples int
	native  int // native histogram samples
}

// NewBatch returns an empty batch.
func (w *Writer) NewBatch() *Batch { return &Batch{} }

// Len returns the samples in the batch.
func (b *Batch) Len() int { return b.samples }

// Sample adds one sample as the store keeps it (the node identity is
// already a label of the running totals the metrics_service receiver
// builds).
func (b *Batch) Sample(ls labels.Labels, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, md metadata.Metadata) {
	ts := prompb.TimeSeries{Labels: toLabels(ls)}
	switch {
	case h != nil:
		ts.Histograms = []prompb.Histogram{prompb.FromIntHistogram(t, h)}
		b.native++
	case fh != nil:
		ts.Histograms = []prompb.Histogram{prompb.FromFloatHistogram(t, fh)}
		b.native++
	default:
		ts.Samples = []prompb.Sample{{Timestamp: t, Value: v}}
	}
	b.series = append(b.series, ts)
	b.samples++
	if md.Type != "" {
		family := ls.Get(labels.MetricName)
		for _, suf := range [...]string{"_bucket", "_count", "_sum"} {
			if (md.Type == "histogram" || md.Type == "summary") && strings.HasSuffix(family, suf) {
				family = strings.TrimSuffix(family, suf)
				break
			}
		}
		if b.meta == nil {
			b.meta = map[string]metadata.Metadata{}
		}
		if _, ok := b.meta[family]; !ok {
			b.meta[family] = md
		}
	}
}

// toLabels converts ls.
func toLabels(ls labels.Labels) []prompb.Label {
	out := make([]prompb.Label, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		out = append(out, prompb.Label{Name: l.Name, Value: l.Value})
	})
	return out
}

// WriteError is a batch the backend did not accept. Retryable errors
// (unreachable, timeout, HTTP 5xx and 429) may succeed when resent; others
// (HTTP 4xx) will not.
type WriteError struct {
	// Endpoint is the write endpoint.
	Endpoint string
	// StatusCode is the backend's HTTP status; 0 when it did not answer.
	StatusCode int
	// Retryable says whether resending the batch may succeed.
	Retryable bool
	// Message is the backend's answer or the transport error.
	Message string
}

func (e *WriteError) Error() string {
	fix := "the batch is not kept; resend it when the backend is back (metrics_store shared.write_endpoint, shared.timeout)"
	if !e.Retryable {
		fix = "the batch is not kept and resending it as is will not help"
	}
	if e.StatusCode == 0 {
		return fmt.Sprintf("shared store %s did not accept the batch: %s; %s", e.Endpoint, e.Message, fix)
	}
	return fmt.Sprintf("shared store %s refused the batch (HTTP %d: %s); %s", e.Endpoint, e.StatusCode, e.Message, fix)
}

// errNoBatch is a nil batch.
var errNoBatch = errors.New("no batch")

// Write sends b and returns when the backend accepted it (2xx), or a
// *WriteError.
func (w *Writer) Write(ctx context.Context, b *Batch) error {
	if b == nil {
		return errNoBatch
	}
	if len(b.series) == 0 {
		return nil
	}
	if b.native > 0 && !w.cfg.NativeHistograms {
		w.refused.Add(1)
		return &WriteError{Endpoint: w.cfg.WriteEndpoint, Message: fmt.Sprintf(
			"the batch has %d native histogram samples (exponential histograms, or store.histograms: native) and shared.native_histograms is false "+
				"(VictoriaMetrics 1.79 answers OK and drops them): send explicit-bucket histograms with store.histograms: classic, or set "+
				"shared.native_histograms: true when the backend keeps native histograms", b.native)}
	}
	req := prompb.WriteRequest{Timeseries: b.series}
	if len(b.meta) > 0 {
		names := make([]string, 0, len(b.meta))
		for n := range b.meta {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			md := b.meta[n]
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{
				Type: prompb.FromMetadataType(md.Type), MetricFamilyName: n, Help: md.Help, Unit: md.Unit,
			})
		}
	}
	raw, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("encode remote write request: %w", err)
	}
	if err := w.post(ctx, snappy.Encode(nil, raw)); err != nil {
		w.refused.Add(1)
		if w.down.CompareAndSwap(false, true) {
			w.logger.Warn("The shared store does not accept batches: writes are refused until it does", zap.Error(err))
		}
		return err
	}
	if w.down.CompareAndSwap(true, false) {
		w.logger.Info("The shared store accepts batches again", zap.String("write_endpoint", w.cfg.WriteEndpoint))
	}
	w.written.Add(int64(b.samples))
	return nil
}

func (w *Writer) post(ctx context.Context, body []byte) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.WriteEndpoint, bytes.NewReader(body))
	if err != nil {
		return &WriteError{Endpoint: w.cfg.WriteEndpoint, Message: err.Error()}
	}
	for k, v := range w.cfg.Headers {
		hreq.Header.Set(k, v)
	}
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := w.client.Do(hreq)
	if err != nil {
		return &WriteError{Endpoint: w.cfg.WriteEndpoint, Retryable: true, Message: err.Error()}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &WriteError{
		Endpoint:   w.cfg.WriteEndpoint,
		StatusCode: resp.StatusCode,
		Retryable:  resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests,
		Message:    strings.TrimSpace(string(msg)),
	}
}
