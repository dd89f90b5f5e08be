package reads

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/promql"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Page sizes and the default window of GetMetrics.
const (
	// DefaultPageSize is the page_size of a request that sets none.
	DefaultPageSize = 100
	// MaxPageSize is the largest page_size.
	MaxPageSize = 10_000
	// DefaultWindow is the time range of a request that sets none (ending
	// now), or the start of one that sets only its end.
	DefaultWindow = 5 * time.Minute
)

// Store is what the engine reads of the store besides its samples, which
// it reads through the query engine's Queryable.
type Store interface {
	// MetadataOf returns the stored type and unit of a metric family.
	MetadataOf(family string) (metadata.Metadata, bool)
	// CountSeries counts the series matching ms that may hold samples in
	// [mint, maxt] from the store's index, cheaply; ok false: it cannot.
	CountSeries(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) (n int64, ok bool, err error)
	// EachHeadSeries calls fn with the labels of the series matching ms
	// that may hold samples in [mint, maxt] from the store's index, without
	// reading their chunks; ok false: it cannot.
	EachHeadSeries(ctx context.Context, mint, maxt int64, ms []*labels.Matcher, fn func(labels.Labels) error) (ok bool, err error)
}

// Engine answers QueryMetrics and GetMetrics.
type Engine struct {
	q  *query.Engine
	st Store
	// now is the clock of default time ranges.
	now func() time.Time
	// merge is the label that raw remote pages aggregate away (WithMergeLabel).
	merge         string
	mergeLookback time.Duration
}

// New returns an engine reading through q; st (nil in remote mode) gives
// the series types, used by the type filter, and counts series.
func New(q *query.Engine, st Store, opts ...Option) *Engine {
	e := &Engine{q: q, st: st, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	return e
}

// local reports whether GetMetrics reads the store directly.
func (e *Engine) local() bool { return !e.q.Remote() && e.q.Queryable() != nil }

// QueryMetrics runs a PromQL instant or range query.
func (e *Engine) QueryMetrics(ctx context.Context, req *pb.QueryMetricsRequest) (*pb.QueryMetricsResponse, error) {
	q := query.Request{Query: req.GetQuery(), NoCache: req.GetDisableCache()}
	if err := queryLimits(req.GetLimits(), &q); err != nil {
		return nil, err
	}
	var err error
	rangeQuery := req.GetType() == pb.QueryType_QUERY_TYPE_RANGE ||
		(req.GetType() == pb.QueryType_QUERY_TYPE_UNSPECIFIED && req.GetStart() != nil && req.GetEnd() != nil)
	if rangeQuery {
		if req.GetStart() == nil || req.GetEnd() == nil {
			return nil, invalid("start, end", "set both start and end, or neither for an instant query", "a range query needs both")
		}
		if q.Start, err = queryTime("start", req.GetStart()); err != nil {
			return nil, err
		}
		if q.End, err = queryTime("end", req.GetEnd()); err != nil {
			return nil, err
		}
		if req.GetStep() == nil {
			q.Step = defaultStep(q.Start, q.End)
		} else if q.Step, err = positiveDuration("step", req.GetStep()); err != nil {
			return nil, err
		}
	} else {
		q.Instant = true
		q.Time = e.now()
		if req.GetTime() != nil {
			if q.Time, err = queryTime("time", req.GetTime()); err != nil {
				return nil, err
			}
		}
	}
	res, err := e.q.Do(ctx, q)
	if err != nil {
		return nil, err
	}
	if hasFractionalHistogram(res.Value) {
		return nil, fractionalHistogramError("query",
			"wrap the histograms in histogram_count(), histogram_sum(), histogram_quantile() or histogram_fraction(), or read the answer through the Prometheus API (/api/v1/query), whose histograms carry fractional counts")
	}
	resp := &pb.QueryMetricsResponse{
		Warnings: append(res.Warnings, prefixed("info: ", res.Infos)...),
		Stats: &pb.QueryStats{
			SamplesRead:    res.Stats.SamplesRead,
			ExecutionTime:  durationpb.New(res.Stats.Duration),
			CacheHit:       res.Stats.CacheHit,
			SeriesReturned: int64(res.Stats.Series),
			QueueTime:      durationpb.New(res.Stats.QueueTime),
		},
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_VECTOR
		resp.Series = e.vectorSeries(v)
	case promql.Matrix:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_MATRIX
		resp.Series = e.matrixSeries(v)
	case promql.Scalar:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_SCALAR
		resp.Scalar = &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(v.T)), Value: v.V}
	case promql.String:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_STRING
		resp.StringValue = v.V
	}
	return resp, nil
}

// getParams is a validated GetMetrics request.
type getParams struct {
	filter   *metricfilter.Filter
	start    time.Time
	end      time.Time
	pageSize int
	after    string // page cursor: the key of the previous page's last series
	cursor   bool   // a page token was given (after may be "", the key of a series without labels)
	total    int64  // total_count carried by the page token; -1: count
	latest   bool
	agg      *pb.Aggregation // nil: raw samples
}

// GetMetrics returns a page of series: raw samples of the matching series
// in the time range (or only the newest of each), or an aggregation over a
// step. Series come in key order (seriesKey); next_page_token holds the key
// of the page's last series, so pages stay stable when series are added.
func (e *Engine) GetMetrics(ctx context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	p, err := e.getParams(req)
	if err != nil {
		return nil, err
	}
	if p.agg == nil && e.local() {
		return e.rawPage(ctx, p)
	}
	if p.agg == nil && e.q.Remote() {
		return e.remotePage(ctx, p)
	}
	return e.promqlPage(ctx, p)
}

func (e *Engine) getParams(req *pb.GetMetricsRequest) (*getParams, error) {
	p := &getParams{pageSize: int(req.GetPageSize()), latest: req.GetLatestOnly()}
	switch {
	case p.pageSize == 0:
		p.pageSize = DefaultPageSize
	case p.pageSize < 0 || p.pageSize > MaxPageSize:
		return nil, invalid("page_size", fmt.Sprintf("use 1 to %d, or 0 for %d", MaxPageSize, DefaultPageSize),
			fmt.Sprintf("%d is outside [1, %d]", p.pageSize, MaxPageSize))
	}
	var err error
	p.cursor = req.GetPageToken() != ""
	if p.after, p.total, err = decodePageToken(req.GetPageToken()); err != nil {
		return nil, err
	}
	p.end = e.now()
	p.start = p.end.Add(-DefaultWindow)
	if tr := req.GetTimeRange(); tr != nil {
		if tr.GetEnd() != nil {
			if p.end, err = queryTime("time_range.end", tr.GetEnd()); err != nil {
				return nil, err
			}
		}
		if tr.GetStart() != nil {
			if p.start, err = queryTime("time_range.start", tr.GetStart()); err != nil {
				return nil, err
			}
		} else {
			p.start = p.end.Add(-DefaultWindow)
		}
	}
	if !p.end.After(p.start) {
		return nil, invalid("time_range", "set end after start", "end must be after start")
	}
	if p.end.Sub(p.start) == time.Duration(math.MaxInt64) {
		return nil, invalid("time_range", "use a shorter range", fmt.Sprintf("%s to %s is longer than %s",
			p.start.Format(time.RFC3339), p.end.Format(time.RFC3339), time.Duration(math.MaxInt64).Truncate(time.Hour)))
	}
	if p.filter, err = compileFilter(req.GetFilter()); err != nil {
		return nil, err
	}
	if a := req.GetAggregation(); a != nil && a.GetFunction() != pb.AggregationFunction_AGGREGATION_FUNCTION_UNSPECIFIED {
		p.agg = a
	}
	return p, nil
}

// compileFilter compiles a read filter (package metricfilter semantics).
func compileFilter(f *pb.MetricFilter) (*metricfilter.Filter, error) {
	c, err := metricfilter.Compile(f)
	if err != nil {
		var fe *metricfilter.Error
		if errors.As(err, &fe) {
			return nil, &Error{Kind: KindInvalid, Field: fe.Field, Message: fe.Message, Fix: fe.Fix}
		}
		return nil, invalid("filter", "", err.Error())
	}
	return c, nil
}

// queryLimits copies a request's limits, refusing negative ones: they may
// only lower the server's.
func queryLimits(l *pb.QueryLimits, q *query.Request) error {
	if l == nil {
		return nil
	}
	switch {
	case l.GetMaxSamples() < 0:
		return invalid("limits.max_samples", "", fmt.Sprintf("%d is negative; use a positive number, or 0 for the server's query.max_samples", l.GetMaxSamples()))
	case l.GetMaxSeries() < 0:
		return invalid("limits.max_series", "", fmt.Sprintf("%d is negative; use a positive number, or 0 for the server's query.max_series", l.GetMaxSeries()))
	}
	if l.GetTimeout() != nil {
		d, err := positiveDuration("limits.timeout", l.GetTimeout())
		if err != nil {
			return err
		}
		q.Timeout = d
	}
	q.MaxSamples = int(l.GetMaxSamples())
	q.MaxSeries = int(l.GetMaxSeries())
	return nil
}

// queryTime converts a timestamp the engine can evaluate at, refusing
// invalid ones and those outside [query.MinTime, query.MaxTime] (int64
// nanoseconds) instead of letting them wrap around.
func queryTime(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalid(field, "use a valid timestamp", err.Error())
	}
	t := ts.AsTime()
	if t.Before(query.MinTime) || t.After(query.MaxTime) {
		return time.Time{}, invalid(field, "", fmt.Sprintf("%s is outside the range a query can be evaluated at, [%s, %s]",
			t.Format(time.RFC3339Nano), query.MinTime.Format(time.RFC3339), query.MaxTime.Format(time.RFC3339)))
	}
	return t, nil
}

// positiveDuration converts a duration, refusing invalid, zero and
// negative ones.
func positiveDuration(field string, d *durationpb.Duration) (time.Duration, error) {
	if err := d.CheckValid(); err != nil {
		return 0, invalid(field, "use a valid duration", err.Error())
	}
	v := d.AsDuration()
	if v <= 0 {
		return 0, invalid(field, "", fmt.Sprintf("%s must be positive", v))
	}
	return v, nil
}

// defaultStep picks about 250 points over a range, at least one second.
func defaultStep(start, end time.Time) time.Duration {
	return max(end.Sub(start)/250, time.Second).Truncate(time.Second)
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// typeOf returns the API type and unit of a stored series name from the
// store's metadata (classic histogram and summary series by their family);
// the unit is the API's ("s" for the store's "seconds"), so that
// metricfilter's timer rule applies to stored histograms as to pipeline ones.
func (e *Engine) typeOf(name string) (pb.MetricType, string) {
	if e.st == nil {
		return pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""
	}
	return metricfilter.StoredType(e.st.MetadataOf, name)
}
