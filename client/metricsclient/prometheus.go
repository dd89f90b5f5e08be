package metricsclient

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FromPrometheus converts Prometheus metric families (from a Gatherer or a
// parsed exposition) into items, in the order given. Counters carry their
// running totals with cumulative set (and their created timestamp as start
// time) when cumulative is true, else their values are increments. Untyped
// samples get the type untyped returns (nil: gauge). Histograms are sent
// with their classic buckets; summaries with their quantiles.
func FromPrometheus(fams []*dto.MetricFamily, cumulative bool, untyped func(name string) pb.MetricType) ([]*pb.MetricData, error) {
	if untyped == nil {
		untyped = func(string) pb.MetricType { return pb.MetricType_METRIC_TYPE_GAUGE }
	}
	var items []*pb.MetricData
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.Metric {
			d := &pb.MetricData{Name: name, Description: f.GetHelp(), Unit: f.GetUnit(), Labels: make(map[string]string, len(m.Label))}
			for _, lp := range m.Label {
				d.Labels[lp.GetName()] = lp.GetValue()
			}
			if m.TimestampMs != nil {
				d.Timestamp = timestamppb.New(time.UnixMilli(m.GetTimestampMs()))
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				d.Type, d.Value, d.Cumulative = pb.MetricType_METRIC_TYPE_COUNTER, m.GetCounter().GetValue(), cumulative
				if ct := m.GetCounter().GetCreatedTimestamp(); ct != nil && cumulative {
					d.StartTime = ct
				}
			case dto.MetricType_GAUGE:
				d.Type, d.Value = pb.MetricType_METRIC_TYPE_GAUGE, m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				d.Type, d.Value = untyped(name), m.GetUntyped().GetValue()
				if d.Type == pb.MetricType_METRIC_TYPE_COUNTER {
					d.Cumulative = cumulative
				}
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				sv := &pb.SummaryValue{Count: s.GetSampleCount(), Sum: s.GetSampleSum()}
				for _, q := range s.Quantile {
					sv.Quantiles = append(sv.Quantiles, &pb.Quantile{Quantile: q.GetQuantile(), Value: q.GetValue()})
				}
				d.Type, d.Summary = pb.MetricType_METRIC_TYPE_SUMMARY, sv
				if ct := s.GetCreatedTimestamp(); ct != nil && cumulative {
					d.StartTime = ct
				}
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				hv := &pb.HistogramValue{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
				var prev uint64
				for _, b := range h.Bucket {
					if math.IsInf(b.GetUpperBound(), 1) {
						continue
					}
					hv.ExplicitBounds = append(hv.ExplicitBounds, b.GetUpperBound())
					hv.BucketCounts = append(hv.BucketCounts, b.GetCumulativeCount()-min(prev, b.GetCumulativeCount()))
					prev = b.GetCumulativeCount()
				}
				hv.BucketCounts = append(hv.BucketCounts, hv.Count-min(prev, hv.Count))
				d.Type, d.Histogram = pb.MetricType_METRIC_TYPE_HISTOGRAM, hv
				if ct := h.GetCreatedTimestamp(); ct != nil && cumulative {
					d.StartTime = ct
				}
			default:
				return nil, fmt.Errorf("metric %s: type %s is not supported", name, f.GetType())
			}
			items = append(items, d)
		}
	}
	return items, nil
}

// RecordGatherer gathers g (e.g. prometheus.DefaultGatherer, with the
// metrics of an application already instrumented with client_golang) and
// queues every sample for the next batch: counters as running totals,
// gauges, histograms and summaries as they are. Call it periodically (or
// use GatherEvery) to forward an existing registry.
func (c *Client) RecordGatherer(g prometheus.Gatherer) error {
	fams, err := g.Gather()
	if err != nil && len(fams) == 0 {
		return fmt.Errorf("metricsclient: gather: %w", err)
	}
	items, cerr := FromPrometheus(fams, true, nil)
	for _, it := range items {
		c.Record(it)
	}
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("metricsclient: gather (partial): %w", err)
	}
	return nil
}

// GatherEvery calls RecordGatherer every interval until the client is
// closed, reporting errors to the error handler.
func (c *Client) GatherEvery(g prometheus.Gatherer, interval time.Duration) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-c.closing:
				return
			case <-t.C:
				c.report(c.RecordGatherer(g))
			}
		}
	}()
}
