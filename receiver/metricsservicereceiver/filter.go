package metricsservicereceiver

import (
	"context"
	"errors"
	"math"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// compileFilter compiles a read filter (package metricfilter semantics); a
// refusal is INVALID_ARGUMENT naming the field and the fix.
func compileFilter(f *pb.MetricFilter) (*metricfilter.Filter, error) {
	c, err := metricfilter.Compile(f)
	if err != nil {
		var fe *metricfilter.Error
		if errors.As(err, &fe) {
			return nil, status.Error(codes.InvalidArgument, fe.Error())
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return c, nil
}

// selector compiles a filter into a PromQL vector selector (its names and
// labels; types are checked on the results).
func selector(f *pb.MetricFilter) (string, error) {
	c, err := compileFilter(f)
	if err != nil {
		return "", err
	}
	return c.Selector(), nil
}

// storedType returns the API type and unit of a stored series name from the
// store's metadata (classic histogram and summary series by their family);
// the unit is the API's ("s" for the store's "seconds"), so that
// metricfilter's timer rule applies to stored histograms as to pipeline ones.
func (r *metricsReceiver) storedType(name string) (pb.MetricType, string) {
	if r.store == nil || name == "" {
		return pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""
	}
	for _, cand := range []string{name, strings.TrimSuffix(name, "_bucket"), strings.TrimSuffix(name, "_sum"), strings.TrimSuffix(name, "_count")} {
		if md, ok := r.store.MetadataOf(cand); ok {
			unit := md.Unit
			if unit == "seconds" {
				unit = "s"
			}
			switch md.Type {
			case "counter":
				return pb.MetricType_METRIC_TYPE_COUNTER, unit
			case "gauge":
				return pb.MetricType_METRIC_TYPE_GAUGE, unit
			case "histogram", "gaugehistogram":
				return pb.MetricType_METRIC_TYPE_HISTOGRAM, unit
			case "summary":
				return pb.MetricType_METRIC_TYPE_SUMMARY, unit
			}
		}
	}
	return pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""
}

// summaryFilter returns what GetMetricsSummary keeps of a metric or family
// name: names, exclusions and types of the filter; with label matchers
// also the series count per name restricted to the matching series (nil
// without label matchers: the head's counts apply).
func (r *metricsReceiver) summaryFilter(ctx context.Context, f *pb.MetricFilter) (keep func(string) bool, series map[string]int64, err error) {
	c, err := compileFilter(f)
	if err != nil {
		return nil, nil, err
	}
	if c.Empty() {
		return func(string) bool { return true }, nil, nil
	}
	keep = func(name string) bool {
		if !c.MatchName(name) {
			return false
		}
		if c.HasTypes() {
			t, unit := r.storedType(name)
			if !c.MatchType(t, unit) {
				return false
			}
		}
		return true
	}
	if !c.HasLabelMatchers() {
		return keep, nil, nil
	}
	series, err = r.seriesPerName(ctx, c.Matchers())
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "filter.label_matchers: reading the store's series: %v", err)
	}
	names := keep
	keep = func(name string) bool {
		// a family name (rates, trends, metadata) has its classic
		// histogram or summary series under suffixed names
		matching := series[name] > 0 || series[name+"_bucket"] > 0 || series[name+"_count"] > 0
		return matching && names(name)
	}
	return keep, series, nil
}

// seriesPerName counts the stored series matching ms by metric name.
func (r *metricsReceiver) seriesPerName(ctx context.Context, ms []*labels.Matcher) (map[string]int64, error) {
	q, err := r.store.Queryable().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	out := map[string]int64{}
	set := q.Select(ctx, false, &storage.SelectHints{Start: math.MinInt64, End: math.MaxInt64, Func: "series"}, ms...)
	for set.Next() {
		out[set.At().Labels().Get(labels.MetricName)]++
	}
	return out, set.Err()
}
