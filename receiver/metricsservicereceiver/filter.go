package metricsservicereceiver

import (
	"errors"
	"strings"

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
