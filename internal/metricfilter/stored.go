package metricfilter

import (
	"strings"

	"github.com/prometheus/prometheus/model/metadata"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// StoredType returns the API type and unit of a stored series name from
// the store's metadata, looked up by family (classic histogram and summary
// series are found under their family name without _bucket, _sum or
// _count). The unit is the API's ("s" for the store's "seconds"), so that
// the timer rule applies to stored histograms as to pipeline ones.
func StoredType(lookup func(family string) (metadata.Metadata, bool), name string) (pb.MetricType, string) {
	if lookup == nil || name == "" {
		return pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""
	}
	for _, cand := range []string{name, strings.TrimSuffix(name, "_bucket"), strings.TrimSuffix(name, "_sum"), strings.TrimSuffix(name, "_count")} {
		md, ok := lookup(cand)
		if !ok {
			continue
		}
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
	return pb.MetricType_METRIC_TYPE_UNSPECIFIED, ""
}
