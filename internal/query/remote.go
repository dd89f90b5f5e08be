package query

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// remote answers queries through a Prometheus-compatible HTTP API.
type remote struct {
	api v1.API
}

type headerRoundTripper struct {
	headers map[string]string
	next    http.RoundTripper
}

func (h headerRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return h.next.RoundTrip(r)
}

func newRemote(cfg RemoteConfig) (*remote, error) {
	c, err := api.NewClient(api.Config{
		Address:      cfg.Endpoint,
		RoundTripper: headerRoundTripper{headers: cfg.Headers, next: api.DefaultRoundTripper},
	})
	if err != nil {
		return nil, fmt.Errorf("remote.endpoint: %w", err)
	}
	return &remote{api: v1.NewAPI(c)}, nil
}

// Metadata returns the remote's metric metadata (type per family).
func (e *Engine) RemoteMetadata(ctx context.Context) (map[string]string, error) {
	if e.remote == nil {
		return nil, errors.New("no remote backend")
	}
	md, err := e.remote.api.Metadata(ctx, "", "")
	if err != nil {
		return nil, &Error{Kind: KindUnavailable, Err: fmt.Errorf("remote metadata: %w", err)}
	}
	out := make(map[string]string, len(md))
	for name, ms := range md {
		if len(ms) > 0 {
			out[name] = string(ms[0].Type)
		}
	}
	return out, nil
}

func (r *remote) query(ctx context.Context, qs string, start, end time.Time, step time.Duration) (*Result, error) {
	var v model.Value
	var warns v1.Warnings
	var err error
	if step == 0 {
		v, warns, _, err = r.api.Query(ctx, qs, start)
	} else {
		v, warns, _, err = r.api.QueryRange(ctx, qs, v1.Range{Start: start, End: end, Step: step})
	}
	if err != nil {
		return nil, remoteError(err)
	}
	res := &Result{Value: fromModel(v)}
	res.Warnings = append(res.Warnings, warns...)
	return res, nil
}

// remoteError classifies an error of the remote API.
func remoteError(err error) error {
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Type {
		case v1.ErrBadData:
			return &Error{Kind: KindBadQuery, Err: fmt.Errorf("remote: %s", apiErr.Msg)}
		case v1.ErrTimeout:
			return &Error{Kind: KindTimeout, Err: fmt.Errorf("remote: %s", apiErr.Msg)}
		case v1.ErrCanceled:
			return &Error{Kind: KindCanceled, Err: fmt.Errorf("remote: %s", apiErr.Msg)}
		case v1.ErrExec:
			return &Error{Kind: KindTooLarge, Err: fmt.Errorf("remote: %s", apiErr.Msg)}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Err: err}
	}
	return &Error{Kind: KindUnavailable, Err: fmt.Errorf("remote query: %w", err)}
}

func metricLabels(m model.Metric) labels.Labels {
	b := labels.NewScratchBuilder(len(m))
	for k, v := range m {
		b.Add(string(k), string(v))
	}
	b.Sort()
	return b.Labels()
}

func fromModel(v model.Value) parser.Value {
	switch v := v.(type) {
	case model.Vector:
		out := make(promql.Vector, 0, len(v))
		for _, s := range v {
			ps := promql.Sample{Metric: metricLabels(s.Metric), T: int64(s.Timestamp)}
			if s.Histogram != nil {
				ps.H = fromModelHistogram(s.Histogram)
			} else {
				ps.F = float64(s.Value)
			}
			out = append(out, ps)
		}
		return out
	case model.Matrix:
		out := make(promql.Matrix, 0, len(v))
		for _, ss := range v {
			s := promql.Series{Metric: metricLabels(ss.Metric)}
			for _, p := range ss.Values {
				s.Floats = append(s.Floats, promql.FPoint{T: int64(p.Timestamp), F: float64(p.Value)})
			}
			for _, p := range ss.Histograms {
				s.Histograms = append(s.Histograms, promql.HPoint{T: int64(p.Timestamp), H: fromModelHistogram(p.Histogram)})
			}
			out = append(out, s)
		}
		return out
	case *model.Scalar:
		return promql.Scalar{T: int64(v.Timestamp), V: float64(v.Value)}
	case *model.String:
		return promql.String{T: int64(v.Timestamp), V: v.Value}
	default:
		return promql.Matrix{}
	}
}

// fromModelHistogram converts an API histogram (buckets with bounds) into a
// float histogram with custom bounds, which keeps count, sum and buckets.
func fromModelHistogram(h *model.SampleHistogram) *histogram.FloatHistogram {
	fh := &histogram.FloatHistogram{
		Schema: histogram.CustomBucketsSchema,
		Count:  float64(h.Count),
		Sum:    float64(h.Sum),
	}
	for _, b := range h.Buckets {
		fh.CustomValues = append(fh.CustomValues, float64(b.Upper))
		fh.PositiveBuckets = append(fh.PositiveBuckets, float64(b.Count))
	}
	if len(fh.PositiveBuckets) > 0 {
		fh.PositiveSpans = []histogram.Span{{Offset: 0, Length: uint32(len(fh.PositiveBuckets))}}
	}
	return fh
}

// RemoteSeries returns the label sets of the remote backend's series that
// match the selector and have samples in [start, end] (its /api/v1/series:
// the index, no samples), refusing more than limit of them (limit <= 0: no
// bound) with a KindTooLarge error that names query.max_series.
func (e *Engine) RemoteSeries(ctx context.Context, selector string, start, end time.Time, limit int) ([]labels.Labels, error) {
	if e.remote == nil {
		return nil, errors.New("no remote backend")
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	ms, _, _, err := e.remote.api.Series(ctx, []string{selector}, start, end)
	if err != nil {
		return nil, remoteError(err)
	}
	if limit > 0 && len(ms) > limit {
		return nil, &Error{Kind: KindTooLarge, Err: fmt.Errorf("the selection has %d series at the remote backend, more than %d; narrow the filter or raise query.max_series", len(ms), limit)}
	}
	out := make([]labels.Labels, len(ms))
	for i, m := range ms {
		out[i] = metricLabels(model.Metric(m))
	}
	return out, nil
}

// LookbackDelta is query.lookback_delta: how far back a read looks for a
// series' last sample before a time range.
func (e *Engine) LookbackDelta() time.Duration { return e.cfg.LookbackDelta }
