package reads

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// promqlPage answers GetMetrics with one PromQL query over the whole
// selection, paged over its answer: an aggregation (its answer is small),
// or raw samples from a remote backend (which has no cheaper interface; a
// page there costs the whole selection's samples in the time range).
func (e *Engine) promqlPage(ctx context.Context, p *getParams) (*pb.GetMetricsResponse, error) {
	sel := p.filter.Selector()
	q := query.Request{}
	var err error
	if p.agg != nil {
		if e.merge != "" && p.agg.GetFunction() != pb.AggregationFunction_AGGREGATION_FUNCTION_RATE {
			// a fleet's nodes are parts of one series: add them up first
			// (rate sums the nodes' rates itself)
			sel = "sum without (" + e.merge + ") (" + sel + ")"
		}
		if q.Query, err = aggregationQuery(sel, p.agg); err != nil {
			return nil, err
		}
		q.Step = time.Minute
		if p.agg.GetStep() != nil {
			if q.Step, err = positiveDuration("aggregation.step", p.agg.GetStep()); err != nil {
				return nil, err
			}
		}
		q.Start, q.End = p.start.Truncate(q.Step), p.end.Truncate(q.Step)
		if p.latest {
			q.Instant, q.Time = true, p.end
		}
	} else {
		// raw samples: a range selector evaluated at the end of the range
		q.Instant, q.Time = true, p.end
		q.Query = sel + "[" + promDuration(p.end.Sub(p.start)) + "]"
	}
	q.MaxSeries = -1 // pagination bounds the answer, not the series limit
	res, err := e.q.Do(ctx, q)
	if err != nil {
		return nil, err
	}
	if hasFractionalHistogram(res.Value) {
		return nil, fractionalHistogramError("aggregation",
			"aggregate histograms with SUM (whole counts), or use QueryMetrics with histogram_quantile() or histogram_count()")
	}
	var all []*pb.Series
	switch v := res.Value.(type) {
	case promql.Matrix:
		all = e.matrixSeries(v)
	case promql.Vector:
		all = e.vectorSeries(v)
	}
	if p.agg == nil && p.latest {
		for _, s := range all {
			s.Samples = s.Samples[len(s.Samples)-1:]
		}
	}
	// type filter (the timer rule needs the stored unit)
	if p.filter.HasTypes() {
		kept := all[:0]
		for _, s := range all {
			if t, unit := e.typeOf(s.GetName()); p.filter.MatchType(t, unit) {
				kept = append(kept, s)
			}
		}
		all = kept
	}
	keys := make([]string, len(all))
	for i, s := range all {
		keys[i] = seriesKey(s)
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	first := 0 // an aggregation without group_by is one series whose key is ""
	if p.cursor {
		first = sort.Search(len(idx), func(i int) bool { return keys[idx[i]] > p.after })
	}
	last := min(first+p.pageSize, len(idx))
	resp := &pb.GetMetricsResponse{
		TotalCount: int64(len(all)),
		Stats: &pb.QueryStats{
			SamplesRead:   res.Stats.SamplesRead,
			ExecutionTime: durationpb.New(res.Stats.Duration),
			CacheHit:      res.Stats.CacheHit,
			QueueTime:     durationpb.New(res.Stats.QueueTime),
		},
	}
	for _, i := range idx[first:last] {
		resp.Series = append(resp.Series, all[i])
	}
	if last < len(idx) {
		resp.NextPageToken = encodePageToken(int64(len(all)), keys[idx[last-1]])
	}
	resp.Stats.SeriesReturned = int64(len(resp.Series))
	return resp, nil
}

// aggregationQuery compiles GetMetrics' aggregation into PromQL.
func aggregationQuery(sel string, a *pb.Aggregation) (string, error) {
	by := ""
	if len(a.GetGroupBy()) > 0 {
		for i, g := range a.GetGroupBy() {
			if !labelNameRE.MatchString(g) {
				return "", invalid(fmt.Sprintf("aggregation.group_by[%d]", i), "use a label name ([a-zA-Z_][a-zA-Z0-9_]*)", fmt.Sprintf("%q is not a label name", g))
			}
		}
		by = " by (" + strings.Join(a.GetGroupBy(), ", ") + ")"
	}
	switch a.GetFunction() {
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
		if a.GetRange() != nil {
			var err error
			if rng, err = positiveDuration("aggregation.range", a.GetRange()); err != nil {
				return "", err
			}
		}
		return "sum" + by + " (rate(" + sel + "[" + promDuration(rng) + "]))", nil
	default:
		return "", invalid("aggregation.function", "use SUM, AVG, MIN, MAX, COUNT or RATE", fmt.Sprintf("%v is not supported", a.GetFunction()))
	}
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func promDuration(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
