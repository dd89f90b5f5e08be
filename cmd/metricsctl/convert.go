package main

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// parseExposition parses Prometheus text exposition (and, with om set,
// OpenMetrics text) into items, in a deterministic order: families by name,
// samples in file order. Counters are running totals when cumulative is set
// (exposition semantics), else increments. untyped decides the type of
// samples without a TYPE line.
func parseExposition(raw []byte, om bool, cumulative bool, untyped func(name string) pb.MetricType) ([]*pb.MetricData, error) {
	if om {
		raw = normalizeOpenMetrics(raw)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	sorted := make([]*dto.MetricFamily, 0, len(fams))
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		sorted = append(sorted, fams[name])
	}
	return metricsclient.FromPrometheus(sorted, cumulative, untyped)
}

// normalizeOpenMetrics rewrites OpenMetrics text into the Prometheus text
// format the parser reads: no "# EOF", no exemplars, no "# UNIT" lines, no
// _created samples (their value becomes nothing: start times are not
// imported), counter families named with their _total suffix, timestamps in
// milliseconds.
func normalizeOpenMetrics(raw []byte) []byte {
	var out bytes.Buffer
	counters := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[1] == "EOF", len(f) >= 2 && f[1] == "UNIT":
				continue
			case len(f) >= 4 && f[1] == "TYPE" && f[3] == "counter":
				counters[f[2]] = true
				line = "# TYPE " + f[2] + "_total counter"
			case len(f) >= 3 && f[1] == "HELP" && counters[f[2]]:
				line = strings.Replace(line, f[2], f[2]+"_total", 1)
			case len(f) >= 4 && f[1] == "TYPE" && (f[3] == "info" || f[3] == "stateset" || f[3] == "unknown"):
				line = "# TYPE " + f[2] + " untyped"
			case len(f) >= 4 && f[1] == "TYPE" && f[3] == "gaugehistogram":
				line = "# TYPE " + f[2] + " histogram"
			}
			out.WriteString(line + "\n")
			continue
		}
		if i := strings.Index(line, " # "); i >= 0 {
			line = line[:i]
		}
		name := line
		if i := strings.IndexAny(name, "{ "); i >= 0 {
			name = name[:i]
		}
		if strings.HasSuffix(name, "_created") {
			continue
		}
		// value [timestamp]: the timestamp after the label set is in seconds
		rest := line
		if i := strings.LastIndex(line, "}"); i >= 0 {
			rest = line[i+1:]
		} else if i := strings.Index(line, " "); i >= 0 {
			rest = line[i:]
		}
		if f := strings.Fields(rest); len(f) == 2 {
			if ts, err := strconv.ParseFloat(f[1], 64); err == nil {
				line = strings.TrimSuffix(strings.TrimRight(line, " "), f[1]) + strconv.FormatInt(int64(math.Round(ts*1000)), 10)
			}
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}

// parseOTLPJSON reads OTLP JSON metrics (as the collector's file exporter
// and the OTLP/HTTP JSON encoding write them) into items: one per data point.
func parseOTLPJSON(raw []byte) ([]*pb.MetricData, error) {
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(raw)
	if err != nil {
		return nil, err
	}
	var items []*pb.MetricData
	for _, rm := range md.ResourceMetrics().All() {
		res := &pb.Resource{Attributes: attrs(rm.Resource().Attributes())}
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				base := func(labels pcommon.Map, ts, start pcommon.Timestamp) *pb.MetricData {
					d := &pb.MetricData{Name: m.Name(), Unit: m.Unit(), Description: m.Description(), Labels: attrs(labels), Resource: res}
					if ts != 0 {
						d.Timestamp = timestamppb.New(ts.AsTime())
					}
					if start != 0 {
						d.StartTime = timestamppb.New(start.AsTime())
					}
					return d
				}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						d := base(dp.Attributes(), dp.Timestamp(), 0)
						d.Type, d.Value = pb.MetricType_METRIC_TYPE_GAUGE, numberValue(dp)
						items = append(items, d)
					}
				case pmetric.MetricTypeSum:
					s := m.Sum()
					for _, dp := range s.DataPoints().All() {
						d := base(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp())
						d.Value = numberValue(dp)
						switch {
						case !s.IsMonotonic():
							d.Type, d.StartTime = pb.MetricType_METRIC_TYPE_GAUGE, nil
						case s.AggregationTemporality() == pmetric.AggregationTemporalityDelta:
							d.Type, d.StartTime = pb.MetricType_METRIC_TYPE_COUNTER, nil
						default:
							d.Type, d.Cumulative = pb.MetricType_METRIC_TYPE_COUNTER, true
						}
						items = append(items, d)
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						d := base(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp())
						hv := &pb.HistogramValue{Count: dp.Count(), Sum: dp.Sum(), ExplicitBounds: dp.ExplicitBounds().AsRaw(), BucketCounts: dp.BucketCounts().AsRaw()}
						if dp.HasMin() {
							hv.Min = new(dp.Min())
						}
						if dp.HasMax() {
							hv.Max = new(dp.Max())
						}
						d.Type, d.Histogram = pb.MetricType_METRIC_TYPE_HISTOGRAM, hv
						items = append(items, d)
					}
				case pmetric.MetricTypeExponentialHistogram:
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						d := base(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp())
						d.Type, d.Histogram = pb.MetricType_METRIC_TYPE_HISTOGRAM, &pb.HistogramValue{Count: dp.Count(), Sum: dp.Sum(),
							Exponential: &pb.ExponentialBuckets{Scale: dp.Scale(), ZeroCount: dp.ZeroCount(), ZeroThreshold: dp.ZeroThreshold(),
								PositiveOffset: dp.Positive().Offset(), PositiveBucketCounts: dp.Positive().BucketCounts().AsRaw(),
								NegativeOffset: dp.Negative().Offset(), NegativeBucketCounts: dp.Negative().BucketCounts().AsRaw()}}
						items = append(items, d)
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						d := base(dp.Attributes(), dp.Timestamp(), dp.StartTimestamp())
						sv := &pb.SummaryValue{Count: dp.Count(), Sum: dp.Sum()}
						for _, q := range dp.QuantileValues().All() {
							sv.Quantiles = append(sv.Quantiles, &pb.Quantile{Quantile: q.Quantile(), Value: q.Value()})
						}
						d.Type, d.Summary = pb.MetricType_METRIC_TYPE_SUMMARY, sv
						items = append(items, d)
					}
				}
			}
		}
	}
	return items, nil
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func attrs(m pcommon.Map) map[string]string {
	if m.Len() == 0 {
		return nil
	}
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

// detectFormat picks the format of an import file from its name and content.
func detectFormat(name string, head []byte) string {
	switch {
	case strings.HasSuffix(name, ".json"), bytes.HasPrefix(bytes.TrimSpace(head), []byte("{")):
		return "otlp-json"
	case strings.HasSuffix(name, ".om"), bytes.Contains(head, []byte("# EOF")):
		return "openmetrics"
	}
	return "prometheus"
}

// readAllLimited reads r whole.
func readAllLimited(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
