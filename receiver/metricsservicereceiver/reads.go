package metricsservicereceiver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const (
	defaultPageSize = 100
	maxPageSize     = 10_000
	defaultWindow   = 5 * time.Minute
)

// errNoReads is the answer of read methods when neither the store nor a
// remote backend is configured.
func errNoReads(method string) error {
	return status.Errorf(codes.FailedPrecondition,
		"%s: reads are disabled: add the store block (or query.remote.endpoint) to the metrics_service receiver config", method)
}

// queryStatus maps a query failure to a gRPC status.
func queryStatus(err error) error {
	var qe *query.Error
	if !errors.As(err, &qe) {
		if s, ok := status.FromError(err); ok {
			return s.Err()
		}
		return status.Error(codes.Internal, err.Error())
	}
	switch qe.Kind {
	case query.KindBadQuery:
		return status.Error(codes.InvalidArgument, qe.Error())
	case query.KindTimeout:
		return status.Error(codes.DeadlineExceeded, qe.Error())
	case query.KindCanceled:
		return status.Error(codes.Canceled, qe.Error())
	case query.KindTooLarge:
		return status.Error(codes.ResourceExhausted, qe.Error())
	case query.KindUnavailable:
		return status.Error(codes.Unavailable, qe.Error())
	case query.KindOverloaded:
		return status.Error(codes.ResourceExhausted, qe.Error())
	case query.KindExecution:
		return status.Error(codes.InvalidArgument, qe.Error())
	default:
		return status.Error(codes.Internal, qe.Error())
	}
}

// QueryMetrics runs a PromQL instant or range query.
func (s *metricsService) QueryMetrics(ctx context.Context, req *pb.QueryMetricsRequest) (*pb.QueryMetricsResponse, error) {
	eng := s.r.engine
	if eng == nil {
		return nil, errNoReads("QueryMetrics")
	}
	q := query.Request{Query: req.Query, NoCache: req.DisableCache}
	if err := queryLimits(req.Limits, &q); err != nil {
		return nil, err
	}
	var err error
	rangeQuery := req.Type == pb.QueryType_QUERY_TYPE_RANGE || (req.Type == pb.QueryType_QUERY_TYPE_UNSPECIFIED && req.Start != nil && req.End != nil)
	if rangeQuery {
		if req.Start == nil || req.End == nil {
			return nil, status.Error(codes.InvalidArgument, "start, end: a range query needs both")
		}
		if q.Start, err = queryTime("start", req.Start); err != nil {
			return nil, err
		}
		if q.End, err = queryTime("end", req.End); err != nil {
			return nil, err
		}
		if req.Step == nil {
			q.Step = defaultStep(q.Start, q.End)
		} else if q.Step, err = positiveDuration("step", req.Step); err != nil {
			return nil, err
		}
	} else {
		q.Instant = true
		q.Time = time.Now()
		if req.Time != nil {
			if q.Time, err = queryTime("time", req.Time); err != nil {
				return nil, err
			}
		}
	}
	res, err := eng.Do(ctx, q)
	if err != nil {
		return nil, queryStatus(err)
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
		for _, smp := range v {
			resp.Series = append(resp.Series, s.r.toSeries(smp.Metric, []promql.FPoint{{T: smp.T, F: smp.F}}, nil, smp.H, smp.T))
		}
	case promql.Matrix:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_MATRIX
		for _, ser := range v {
			resp.Series = append(resp.Series, s.r.toSeries(ser.Metric, ser.Floats, ser.Histograms, nil, 0))
		}
	case promql.Scalar:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_SCALAR
		resp.Scalar = &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(v.T)), Value: v.V}
	case promql.String:
		resp.ResultType = pb.QueryResultType_QUERY_RESULT_TYPE_STRING
		resp.StringValue = v.V
	}
	return resp, nil
}

// queryLimits copies a request's limits, refusing negative ones: they may
// only lower the server's.
func queryLimits(l *pb.QueryLimits, q *query.Request) error {
	if l == nil {
		return nil
	}
	switch {
	case l.MaxSamples < 0:
		return status.Errorf(codes.InvalidArgument, "limits.max_samples: %d is negative; use a positive number, or 0 for the server's query.max_samples", l.MaxSamples)
	case l.MaxSeries < 0:
		return status.Errorf(codes.InvalidArgument, "limits.max_series: %d is negative; use a positive number, or 0 for the server's query.max_series", l.MaxSeries)
	}
	if l.Timeout != nil {
		d, err := positiveDuration("limits.timeout", l.Timeout)
		if err != nil {
			return err
		}
		q.Timeout = d
	}
	q.MaxSamples = int(l.MaxSamples)
	q.MaxSeries = int(l.MaxSeries)
	return nil
}

// queryTime converts a timestamp the engine can evaluate at, refusing
// invalid ones and those outside [query.MinTime, query.MaxTime] (int64
// nanoseconds) instead of letting them wrap around.
func queryTime(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	t := ts.AsTime()
	if t.Before(query.MinTime) || t.After(query.MaxTime) {
		return time.Time{}, status.Errorf(codes.InvalidArgument, "%s: %s is outside the range a query can be evaluated at, [%s, %s]",
			field, t.Format(time.RFC3339Nano), query.MinTime.Format(time.RFC3339), query.MaxTime.Format(time.RFC3339))
	}
	return t, nil
}

// positiveDuration converts a duration, refusing invalid, zero and
// negative ones.
func positiveDuration(field string, d *durationpb.Duration) (time.Duration, error) {
	if err := d.CheckValid(); err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	v := d.AsDuration()
	if v <= 0 {
		return 0, status.Errorf(codes.InvalidArgument, "%s: %s must be positive", field, v)
	}
	return v, nil
}

// defaultStep picks about 250 points over a range, at least one second.
func defaultStep(start, end time.Time) time.Duration {
	return max(end.Sub(start)/250, time.Second).Truncate(time.Second)
}

// toSeries converts engine output to the API form. For a vector sample with
// a histogram, h and ht are set instead of floats.
func (r *metricsReceiver) toSeries(ls labels.Labels, floats []promql.FPoint, hists []promql.HPoint, h *histogram.FloatHistogram, ht int64) *pb.Series {
	out := &pb.Series{Labels: make(map[string]string, ls.Len())}
	ls.Range(func(l labels.Label) {
		if l.Name == labels.MetricName {
			out.Name = l.Value
			return
		}
		out.Labels[l.Name] = l.Value
	})
	out.Type = r.typeOf(out.Name)
	if h != nil {
		out.Samples = append(out.Samples, &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(ht)), Histogram: toHistogramValue(h)})
		return out
	}
	out.Samples = make([]*pb.Sample, 0, len(floats)+len(hists))
	for _, p := range floats {
		out.Samples = append(out.Samples, &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(p.T)), Value: p.F})
	}
	for _, p := range hists {
		out.Samples = append(out.Samples, &pb.Sample{Timestamp: timestamppb.New(time.UnixMilli(p.T)), Histogram: toHistogramValue(p.H)})
	}
	if len(hists) > 0 && len(floats) > 0 {
		sort.Slice(out.Samples, func(i, j int) bool {
			return out.Samples[i].Timestamp.AsTime().Before(out.Samples[j].Timestamp.AsTime())
		})
	}
	return out
}

// toHistogramValue converts a native histogram: custom-bucket histograms to
// explicit buckets, exponential ones to exponential buckets.
func toHistogramValue(h *histogram.FloatHistogram) *pb.HistogramValue {
	out := &pb.HistogramValue{Count: uint64(h.Count), Sum: h.Sum}
	if h.UsesCustomBuckets() {
		out.ExplicitBounds = append(out.ExplicitBounds, h.CustomValues...)
		counts := make([]uint64, len(h.CustomValues)+1)
		it := h.PositiveBucketIterator()
		i := 0
		for it.Next() {
			b := it.At()
			for i < len(h.CustomValues) && h.CustomValues[i] < b.Upper {
				i++
			}
			counts[i] = uint64(b.Count)
		}
		out.BucketCounts = counts
		return out
	}
	e := &pb.ExponentialBuckets{Scale: h.Schema, ZeroCount: uint64(h.ZeroCount), ZeroThreshold: h.ZeroThreshold}
	if len(h.PositiveSpans) > 0 {
		e.PositiveOffset = h.PositiveSpans[0].Offset
		for it := h.PositiveBucketIterator(); it.Next(); {
			e.PositiveBucketCounts = append(e.PositiveBucketCounts, uint64(it.At().Count))
		}
	}
	if len(h.NegativeSpans) > 0 {
		e.NegativeOffset = h.NegativeSpans[0].Offset
		for it := h.NegativeBucketIterator(); it.Next(); {
			e.NegativeBucketCounts = append(e.NegativeBucketCounts, uint64(it.At().Count))
		}
	}
	out.Exponential = e
	return out
}

// typeOf returns the metric type of a stored series name, from the store's
// metadata (classic histogram and summary series by their family).
func (r *metricsReceiver) typeOf(name string) pb.MetricType {
	t, _ := r.storedType(name)
	return t
}

// aggregationQuery compiles GetMetrics' aggregation into PromQL.
func aggregationQuery(sel string, a *pb.Aggregation) (string, error) {
	by := ""
	if len(a.GroupBy) > 0 {
		quoted := make([]string, len(a.GroupBy))
		for i, g := range a.GroupBy {
			if !labelNameRE.MatchString(g) {
				return "", status.Errorf(codes.InvalidArgument, "aggregation.group_by[%d]: %q is not a label name", i, g)
			}
			quoted[i] = g
		}
		by = " by (" + strings.Join(quoted, ", ") + ")"
	}
	switch a.Function {
	case pb.AggregationFunction_AGGREGATION_FUNCTION_SUM:
		return "sum" + by + " (" + sel + ")", nil
	case pb.AggregationFunction_AGGREGATION_FUNCTION_AVG:
		return "avg" + by + " (" + sel + ")", nil
	case pb.AggregationFunction_AGGREGATION_FUNCTION_MIN:
		return "min" + by + " (" + sel + ")", nil
	case pb.AggregationFunction_AGGREGATION_FUNCTION_MAX:
		return "max" + by + " (" + sel + ")", nil
	case pb.AggregationFunction_AGGREGATION_FUNCTION_COUNT:
		return "count" + by + " (" + sel + ")", nil
	case pb.AggregationFunction_AGGREGATION_FUNCTION_RATE:
		rng := 5 * time.Minute
		if a.Range != nil {
			var err error
			if rng, err = positiveDuration("aggregation.range", a.Range); err != nil {
				return "", err
			}
		}
		return "sum" + by + " (rate(" + sel + "[" + promDuration(rng) + "]))", nil
	default:
		return "", status.Errorf(codes.InvalidArgument, "aggregation.function: %v is not supported", a.Function)
	}
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func promDuration(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// pageToken is the position after the last series of a page: the series'
// label string, so pages stay stable when series are added.
func encodePageToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + after))
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "v1:") {
		return "", status.Error(codes.InvalidArgument, "page_token: is not a token of this API (pass next_page_token unchanged)")
	}
	return strings.TrimPrefix(string(b), "v1:"), nil
}

// GetMetrics lists series: raw samples of the matching series, or an
// aggregation over a step, a page at a time.
func (s *metricsService) GetMetrics(ctx context.Context, req *pb.GetMetricsRequest) (*pb.GetMetricsResponse, error) {
	eng := s.r.engine
	if eng == nil {
		return nil, errNoReads("GetMetrics")
	}
	pageSize := int(req.PageSize)
	switch {
	case pageSize == 0:
		pageSize = defaultPageSize
	case pageSize < 0 || pageSize > maxPageSize:
		return nil, status.Errorf(codes.InvalidArgument, "page_size: %d is outside [1, %d]", pageSize, maxPageSize)
	}
	after, err := decodePageToken(req.PageToken)
	if err != nil {
		return nil, err
	}
	end := time.Now()
	start := end.Add(-defaultWindow)
	if tr := req.TimeRange; tr != nil {
		if tr.End != nil {
			if end, err = queryTime("time_range.end", tr.End); err != nil {
				return nil, err
			}
		}
		if tr.Start != nil {
			if start, err = queryTime("time_range.start", tr.Start); err != nil {
				return nil, err
			}
		} else {
			start = end.Add(-defaultWindow)
		}
	}
	if !end.After(start) {
		return nil, status.Error(codes.InvalidArgument, "time_range: end must be after start")
	}
	if end.Sub(start) == time.Duration(math.MaxInt64) {
		return nil, status.Errorf(codes.InvalidArgument, "time_range: %s to %s is longer than %s; use a shorter range",
			start.Format(time.RFC3339), end.Format(time.RFC3339), time.Duration(math.MaxInt64).Truncate(time.Hour))
	}
	flt, err := compileFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	sel := flt.Selector()
	q := query.Request{}
	if a := req.Aggregation; a != nil && a.Function != pb.AggregationFunction_AGGREGATION_FUNCTION_UNSPECIFIED {
		if q.Query, err = aggregationQuery(sel, a); err != nil {
			return nil, err
		}
		q.Step = time.Minute
		if a.Step != nil {
			if q.Step, err = positiveDuration("aggregation.step", a.Step); err != nil {
				return nil, err
			}
		}
		q.Start, q.End = start.Truncate(q.Step), end.Truncate(q.Step)
		if req.LatestOnly {
			q.Instant, q.Time = true, end
		}
	} else {
		// raw samples: a range selector evaluated at the end of the range
		q.Instant, q.Time = true, end
		if req.LatestOnly {
			q.Query = "last_over_time(" + sel + "[" + promDuration(end.Sub(start)) + "])"
		} else {
			q.Query = sel + "[" + promDuration(end.Sub(start)) + "]"
		}
	}
	q.MaxSeries = -1 // pagination bounds the answer, not the series limit
	res, err := eng.Do(ctx, q)
	if err != nil {
		return nil, queryStatus(err)
	}
	var all []*pb.Series
	switch v := res.Value.(type) {
	case promql.Matrix:
		for _, ser := range v {
			all = append(all, s.r.toSeries(ser.Metric, ser.Floats, ser.Histograms, nil, 0))
		}
	case promql.Vector:
		for _, smp := range v {
			all = append(all, s.r.toSeries(smp.Metric, []promql.FPoint{{T: smp.T, F: smp.F}}, nil, smp.H, smp.T))
		}
	}
	// type filter (the timer rule needs the stored unit), then a stable
	// order by labels
	if flt.HasTypes() {
		kept := all[:0]
		for _, ser := range all {
			if t, unit := s.r.storedType(ser.Name); flt.MatchType(t, unit) {
				kept = append(kept, ser)
			}
		}
		all = kept
	}
	keys := make([]string, len(all))
	for i, ser := range all {
		keys[i] = seriesKey(ser)
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	first := sort.Search(len(idx), func(i int) bool { return keys[idx[i]] > after })
	resp := &pb.GetMetricsResponse{
		TotalCount: int64(len(all)),
		Stats: &pb.QueryStats{
			SamplesRead:    res.Stats.SamplesRead,
			ExecutionTime:  durationpb.New(res.Stats.Duration),
			CacheHit:       res.Stats.CacheHit,
			SeriesReturned: int64(len(all)),
		},
	}
	last := min(first+pageSize, len(idx))
	for _, i := range idx[first:last] {
		resp.Series = append(resp.Series, all[i])
	}
	if last < len(idx) {
		resp.NextPageToken = encodePageToken(keys[idx[last-1]])
	}
	resp.Stats.SeriesReturned = int64(len(resp.Series))
	return resp, nil
}

// seriesKey orders series by name, then labels.
func seriesKey(s *pb.Series) string {
	names := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(s.Name)
	for _, k := range names {
		fmt.Fprintf(&b, "\xff%s\xfe%s", k, s.Labels[k])
	}
	return b.String()
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}
