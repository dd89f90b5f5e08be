// Package payload builds the request payloads of the metricsbench load
// generator and of the ingest benchmarks: the same datapoints once as a
// MetricsService RecordBatchMetricsRequest and once as an OTLP
// ExportMetricsServiceRequest, so both receivers get equivalent work.
package payload

import (
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Shape names a request layout.
type Shape string

const (
	// ShapeTestbed is the collector testbed's metrics request: 100 gauge
	// metrics of 7 points each (700 datapoints), every point with the labels
	// item_index and batch_index, every metric with a description and unit.
	ShapeTestbed Shape = "testbed"
	// Shape1000x4 is 1,000 datapoints with 4 labels each: 10 metrics (5
	// monotonic counters, 5 gauges) of 100 series each (host x path, plus
	// method and status).
	Shape1000x4 Shape = "1000x4"
)

// Shapes lists the known shapes.
var Shapes = []Shape{ShapeTestbed, Shape1000x4}

// ParseShape returns the shape named s.
func ParseShape(s string) (Shape, error) {
	for _, sh := range Shapes {
		if string(sh) == s {
			return sh, nil
		}
	}
	return "", fmt.Errorf("unknown shape %q (known: testbed, 1000x4)", s)
}

// Options tune the built requests.
type Options struct {
	// Client numbers the sending client. It goes into the resource
	// (service.instance.id) and, for the testbed shape, into batch_index, so
	// that concurrent clients write disjoint series as separate producers do.
	Client int
	// Time is the timestamp of every point; the zero value means time.Now().
	Time time.Time
	// CumulativeCounters sends counters to the MetricsService as running
	// totals (cumulative=true) instead of increments. OTLP counters are
	// always cumulative sums carrying the same numbers.
	CumulativeCounters bool
}

// Payload is one request in both encodings.
type Payload struct {
	// Shape is the layout.
	Shape Shape
	// Ours is the MetricsService request.
	Ours *pb.RecordBatchMetricsRequest
	// OTLP is the equivalent OTLP request.
	OTLP pmetricotlp.ExportRequest
	// DataPoints is the number of datapoints each request carries.
	DataPoints int
}

// point is one datapoint, before it is encoded for either side.
type point struct {
	metric      string
	description string
	unit        string
	counter     bool
	value       float64
	labels      [][2]string
}

// Build returns the request of shape for the client in opts.
func Build(shape Shape, opts Options) (Payload, error) {
	ts := opts.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	var pts []point
	switch shape {
	case ShapeTestbed:
		pts = testbedPoints(opts.Client)
	case Shape1000x4:
		pts = points1000x4()
	default:
		return Payload{}, fmt.Errorf("unknown shape %q", shape)
	}
	res := [][2]string{
		{"service.name", "metricsbench"},
		{"service.instance.id", "client-" + strconv.Itoa(opts.Client)},
	}
	return Payload{
		Shape:      shape,
		Ours:       ours(pts, res, ts, opts.CumulativeCounters),
		OTLP:       otlp(pts, res, ts),
		DataPoints: len(pts),
	}, nil
}

// testbedPoints mirrors the testbed's perfTestDataProvider.GenerateMetrics
// with ItemsPerBatch 100: 100 gauges x 7 points, labels item_index and
// batch_index (one batch index per metric and request). The testbed sends
// int gauges without names; MetricsService values are doubles and names are
// required, so both sides get named double gauges here.
func testbedPoints(client int) []point {
	const metrics, perMetric = 100, 7
	pts := make([]point, 0, metrics*perMetric)
	seq := 0
	for i := range metrics {
		batch := "batch_" + strconv.Itoa(client*metrics+i+1)
		for j := range perMetric {
			seq++
			pts = append(pts, point{
				metric:      "load_generator_" + strconv.Itoa(i),
				description: "Load Generator Counter #" + strconv.Itoa(i),
				unit:        "1",
				value:       float64(seq),
				labels:      [][2]string{{"item_index", "item_" + strconv.Itoa(j)}, {"batch_index", batch}},
			})
		}
	}
	return pts
}

var methods = [...]string{"GET", "POST"}
var statuses = [...]string{"200", "200", "200", "404", "500"}

// points1000x4 is 10 metrics x 100 series with 4 labels; even metrics are
// counters, odd ones gauges.
func points1000x4() []point {
	const metrics, perMetric = 10, 100
	pts := make([]point, 0, metrics*perMetric)
	for m := range metrics {
		counter := m%2 == 0
		name := "bench_gauge_" + strconv.Itoa(m)
		if counter {
			name = "bench_requests_" + strconv.Itoa(m) + "_total"
		}
		for p := range perMetric {
			host, path := p/10, p%10
			v := float64(1 + p%7)
			if !counter {
				v = float64(m*perMetric+p) + 0.25
			}
			pts = append(pts, point{
				metric:  name,
				counter: counter,
				value:   v,
				labels: [][2]string{
					{"host", "host-" + strconv.Itoa(host)},
					{"path", "/api/v1/resource-" + strconv.Itoa(path)},
					{"method", methods[p%len(methods)]},
					{"status", statuses[p%len(statuses)]},
				},
			})
		}
	}
	return pts
}

func ours(pts []point, res [][2]string, ts time.Time, cumulative bool) *pb.RecordBatchMetricsRequest {
	req := &pb.RecordBatchMetricsRequest{
		Metrics:  make([]*pb.MetricData, 0, len(pts)),
		Resource: &pb.Resource{Attributes: make(map[string]string, len(res))},
	}
	for _, kv := range res {
		req.Resource.Attributes[kv[0]] = kv[1]
	}
	start := timestamppb.New(ts.Add(-time.Hour))
	for _, p := range pts {
		md := &pb.MetricData{
			Name:        p.metric,
			Type:        pb.MetricType_METRIC_TYPE_GAUGE,
			Value:       p.value,
			Labels:      make(map[string]string, len(p.labels)),
			Timestamp:   timestamppb.New(ts),
			Unit:        p.unit,
			Description: p.description,
		}
		if p.counter {
			md.Type = pb.MetricType_METRIC_TYPE_COUNTER
			if cumulative {
				md.Cumulative = true
				md.StartTime = start
			}
		}
		for _, kv := range p.labels {
			md.Labels[kv[0]] = kv[1]
		}
		req.Metrics = append(req.Metrics, md)
	}
	return req
}

func otlp(pts []point, res [][2]string, ts time.Time) pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	for _, kv := range res {
		rm.Resource().Attributes().PutStr(kv[0], kv[1])
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	now := pcommon.NewTimestampFromTime(ts)
	start := pcommon.NewTimestampFromTime(ts.Add(-time.Hour))
	var cur pmetric.Metric
	for i, p := range pts {
		if i == 0 || pts[i-1].metric != p.metric {
			cur = sm.Metrics().AppendEmpty()
			cur.SetName(p.metric)
			cur.SetDescription(p.description)
			cur.SetUnit(p.unit)
			if p.counter {
				s := cur.SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			} else {
				cur.SetEmptyGauge()
			}
		}
		var dp pmetric.NumberDataPoint
		if p.counter {
			dp = cur.Sum().DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
		} else {
			dp = cur.Gauge().DataPoints().AppendEmpty()
		}
		dp.SetTimestamp(now)
		dp.SetDoubleValue(p.value)
		dp.Attributes().EnsureCapacity(len(p.labels))
		for _, kv := range p.labels {
			dp.Attributes().PutStr(kv[0], kv[1])
		}
	}
	return pmetricotlp.NewExportRequestFromMetrics(md)
}
