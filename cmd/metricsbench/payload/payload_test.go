package payload

import (
	"fmt"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestEquivalent checks that both encodings of a payload carry the same
// datapoints: decoded from the wire, the MetricsService request run through
// the ingest engine yields the same resource, metrics, series, values and
// timestamps as the OTLP request (start timestamps aside: the engine assigns
// them to counters recorded as increments).
func TestEquivalent(t *testing.T) {
	ts := time.Now().Truncate(time.Millisecond)
	for _, shape := range Shapes {
		for _, cumulative := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cumulative=%v", shape, cumulative), func(t *testing.T) {
				p, err := Build(shape, Options{Client: 3, Time: ts, CumulativeCounters: cumulative})
				require.NoError(t, err)

				wantPoints := map[Shape]int{ShapeTestbed: 700, Shape1000x4: 1000}[shape]
				assert.Equal(t, wantPoints, p.DataPoints)
				assert.Len(t, p.Ours.Metrics, wantPoints)

				otlpBytes, err := p.OTLP.MarshalProto()
				require.NoError(t, err)
				otlpReq := pmetricotlp.NewExportRequest()
				require.NoError(t, otlpReq.UnmarshalProto(otlpBytes))
				want := otlpReq.Metrics()
				assert.Equal(t, wantPoints, want.DataPointCount())

				oursBytes, err := p.Ours.MarshalVT()
				require.NoError(t, err)
				var req pb.RecordBatchMetricsRequest
				require.NoError(t, req.UnmarshalVT(oursBytes))

				acc := convert.NewAccumulator(convert.DefaultConfig(), convert.Scope{})
				acc.SetClock(func() time.Time { return ts })
				b := acc.Prepare(req.Metrics, req.Resource, false)
				require.Empty(t, b.Issues)
				var got pmetric.Metrics
				_, err = acc.Apply(b, true, func(md pmetric.Metrics) error {
					got = md
					return nil
				})
				require.NoError(t, err)
				assert.Equal(t, wantPoints, got.DataPointCount())
				assert.Equal(t, wantPoints, acc.SeriesCount()+countGauges(&req), "every datapoint is its own series")

				require.NoError(t, pmetrictest.CompareMetrics(want, got,
					pmetrictest.IgnoreStartTimestamp(),
					pmetrictest.IgnoreMetricsOrder(),
					pmetrictest.IgnoreMetricDataPointsOrder(),
					pmetrictest.IgnoreDatapointAttributesOrder(),
				))
			})
		}
	}
}

func countGauges(req *pb.RecordBatchMetricsRequest) int {
	n := 0
	for _, m := range req.Metrics {
		if m.Type == pb.MetricType_METRIC_TYPE_GAUGE {
			n++
		}
	}
	return n
}

// TestClientsDisjoint checks that two clients write different series.
func TestClientsDisjoint(t *testing.T) {
	for _, shape := range Shapes {
		a, err := Build(shape, Options{Client: 0})
		require.NoError(t, err)
		b, err := Build(shape, Options{Client: 1})
		require.NoError(t, err)
		acc := convert.NewAccumulator(convert.DefaultConfig(), convert.Scope{})
		ba := acc.Prepare(a.Ours.Metrics, a.Ours.Resource, false)
		bb := acc.Prepare(b.Ours.Metrics, b.Ours.Resource, false)
		seen := map[uint64]bool{}
		for i := range ba.Len() {
			seen[ba.SeriesKey(i)] = true
		}
		for i := range bb.Len() {
			assert.False(t, seen[bb.SeriesKey(i)], "%s: item %d of client 1 is a series of client 0", shape, i)
		}
		assert.Len(t, seen, a.DataPoints, "%s: series per request", shape)
	}
}

func TestParseShape(t *testing.T) {
	for _, s := range Shapes {
		got, err := ParseShape(string(s))
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	_, err := ParseShape("nope")
	assert.Error(t, err)
}
