package definitions

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/proto"

	"github.com/metricsmodule/metricsmodule/internal/registry"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// FuzzBackupFile reads any backup file: no panic; what decodes encodes and
// decodes back to the same entry; its data converts to series.
func FuzzBackupFile(f *testing.F) {
	e := &registry.Entry{Name: "orders_total", CreatedAt: time.Unix(1700000000, 0).UTC(), UpdatedAt: time.Unix(1700000100, 0).UTC(),
		Versions: []registry.Version{{Version: 1, Compatible: true, CreatedAt: time.Unix(1700000000, 0).UTC(),
			Definition: &pb.MetricDefinition{Name: "orders_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Unit: "1", Description: "orders"}}}}
	entry, err := registry.EncodeEntry(e)
	if err != nil {
		f.Fatal(err)
	}
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("orders_total")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.SetDoubleValue(5)
	dp.Attributes().PutStr("shop", "eu")
	data, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil {
		f.Fatal(err)
	}
	withData, _ := json.Marshal(file{Entry: entry, Data: data})
	noData, _ := json.Marshal(file{Entry: entry})
	f.Add(withData)
	f.Add(noData)
	f.Add([]byte(`{"entry":{"name":"x","versions":[]}}`))
	f.Add([]byte(`{"entry":null,"data":"x"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, data, err := Decode(raw)
		if err != nil {
			return
		}
		_ = got.Current()
		enc, err := registry.EncodeEntry(got)
		if err != nil {
			t.Fatalf("encode a decoded entry: %v", err)
		}
		back, err := registry.DecodeEntry(enc)
		if err != nil {
			t.Fatalf("decode a re-encoded entry: %v", err)
		}
		if back.Name != got.Name || len(back.Versions) != len(got.Versions) ||
			!proto.Equal(back.Current().Definition, got.Current().Definition) {
			t.Fatalf("round trip changed the entry: %+v vs %+v", got, back)
		}
		if len(data) > 0 {
			if md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(data); err == nil {
				_ = FromOTLP(md)
			}
		}
	})
}
