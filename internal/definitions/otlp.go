package definitions

import (
	"time"

	"github.com/metricsmodule/metricsmodule/internal/store"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// ToOTLP writes stored series as OTLP metrics named like the series:
// counters (a series of a counter family, by metaOf) as cumulative sums,
// every other series as a gauge; labels become attributes.
func ToOTLP(data []store.SeriesData, metaOf func(string) (metadata.Metadata, bool)) pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	for _, sd := range data {
		name := sd.Labels.Get(labels.MetricName)
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		meta, _ := metaOf(name)
		var dps pmetric.NumberDataPointSlice
		if meta.Type == "counter" {
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = sum.DataPoints()
		} else {
			dps = m.SetEmptyGauge().DataPoints()
		}
		for _, smp := range sd.Samples {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(pcommon.Timestamp(smp.T * int64(time.Millisecond)))
			dp.SetDoubleValue(smp.V)
			sd.Labels.Range(func(l labels.Label) {
				if l.Name != labels.MetricName {
					dp.Attributes().PutStr(l.Name, l.Value)
				}
			})
		}
	}
	return md
}

// FromOTLP reads back what ToOTLP wrote: one series per name and attribute
// set, samples in file order.
func FromOTLP(md pmetric.Metrics) []store.SeriesData {
	byKey := map[string]*store.SeriesData{}
	var order []string
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				default:
					continue
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					b := labels.NewScratchBuilder(dp.Attributes().Len() + 1)
					b.Add(labels.MetricName, m.Name())
					dp.Attributes().Range(func(k string, v pcommon.Value) bool {
						b.Add(k, v.AsString())
						return true
					})
					b.Sort()
					ls := b.Labels()
					key := ls.String()
					sd := byKey[key]
					if sd == nil {
						sd = &store.SeriesData{Labels: ls}
						byKey[key] = sd
						order = append(order, key)
					}
					sd.Samples = append(sd.Samples, store.Sample{T: int64(dp.Timestamp()) / int64(time.Millisecond), V: dp.DoubleValue()})
				}
			}
		}
	}
	out := make([]store.SeriesData, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	return out
}
