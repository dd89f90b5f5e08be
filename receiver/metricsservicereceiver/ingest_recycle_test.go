package metricsservicereceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/internal/grpccodec"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// poisonPool is a request pool that overwrites every buffer put back and
// hands it out again first: a string that still points into a recycled
// request shows up as 0xEE bytes, or as the bytes of a later request.
type poisonPool struct {
	mu   sync.Mutex
	free []*[]byte
	puts int
}

func (p *poisonPool) Get(n int) *[]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.free {
		if cap(*b) >= n {
			p.free = slices.Delete(p.free, i, i+1)
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n)
	return &b
}

func (p *poisonPool) Put(b *[]byte) {
	full := (*b)[:cap(*b)]
	for i := range full {
		full[i] = 0xEE
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.puts++
	p.free = append(p.free, b)
}

func (p *poisonPool) recycled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.puts
}

// recycleBase is the time of the test's first point.
var recycleBase = time.Now().Add(-time.Hour).Truncate(time.Second)

// recycleBatch is round r of the test's batches: the same series each
// round (from the second round on, all from the series cache), a unit and
// description that change every third round on one metric, the request's
// resource, and a request id on every other round.
func recycleBatch(r int) *pb.RecordBatchMetricsRequest {
	req := &pb.RecordBatchMetricsRequest{
		Resource: &pb.Resource{Attributes: map[string]string{"service.name": "recycle-svc", "host.name": "h1"}},
		Options:  &pb.BatchOptions{ReturnAllResults: r%4 == 1},
	}
	if r%2 == 0 {
		req.RequestId = fmt.Sprintf("recycle-%d", r)
	}
	desc := fmt.Sprintf("bytes moved, version %d", r/3)
	for i := range 40 {
		name, unit, d := "recycle_bytes", "By", desc
		if i%2 == 1 {
			name, unit, d = "recycle_seconds", "s", "time spent"
		}
		req.Metrics = append(req.Metrics, &pb.MetricData{
			Name: name, Type: pb.MetricType_METRIC_TYPE_GAUGE, Unit: unit, Description: d,
			Value:     float64(r*1000 + i),
			Timestamp: timestamppb.New(recycleBase.Add(time.Duration(r)*time.Second + time.Duration(i)*time.Millisecond)),
			Labels:    map[string]string{"path": fmt.Sprintf("/api/v%d", i/2), "method": []string{"GET", "PUT"}[i%4/2]},
		})
	}
	for i := range 3 { // counters: state kept per series across the calls
		req.Metrics = append(req.Metrics, &pb.MetricData{
			Name: "recycle_requests_total", Type: pb.MetricType_METRIC_TYPE_COUNTER, Unit: "{request}", Description: "requests",
			Value:     1,
			Timestamp: timestamppb.New(recycleBase.Add(time.Duration(r)*time.Second + time.Duration(40+i)*time.Millisecond)),
			Labels:    map[string]string{"path": fmt.Sprintf("/c%d", i), "method": "GET"},
		})
	}
	return req
}

// pointsOf flattens pdata into "name|unit|description|resource|labels" ->
// value.
func pointsOf(md pmetric.Metrics) map[string]float64 {
	out := map[string]float64{}
	for _, rm := range md.ResourceMetrics().All() {
		res := attrString(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				var dps pmetric.NumberDataPointSlice
				if m.Type() == pmetric.MetricTypeSum {
					dps = m.Sum().DataPoints()
				} else {
					dps = m.Gauge().DataPoints()
				}
				for _, dp := range dps.All() {
					out[strings.Join([]string{m.Name(), m.Unit(), m.Description(), res, attrString(dp.Attributes())}, "|")] = dp.DoubleValue()
				}
			}
		}
	}
	return out
}

func attrString(a pcommon.Map) string {
	var kvs []string
	for k, v := range a.All() {
		kvs = append(kvs, k+"="+v.AsString())
	}
	sort.Strings(kvs)
	return strings.Join(kvs, ",")
}

// wantPoints is pointsOf for the pdata of recycleBatch(r).
func wantPoints(r int) map[string]float64 {
	out := map[string]float64{}
	for _, m := range recycleBatch(r).Metrics {
		out[strings.Join([]string{m.Name, m.Unit, m.Description, "host.name=h1,service.name=recycle-svc",
			"method=" + m.Labels["method"] + ",path=" + m.Labels["path"]}, "|")] = m.Value
		if m.Type == pb.MetricType_METRIC_TYPE_COUNTER {
			// running totals of increments of 1 per round
			out[strings.Join([]string{m.Name, m.Unit, m.Description, "host.name=h1,service.name=recycle-svc",
				"method=" + m.Labels["method"] + ",path=" + m.Labels["path"]}, "|")] = float64(r + 1)
		}
	}
	return out
}

// TestRecycledRequestBuffersLeaveNoTrace sends batches whose series come
// from the series cache, so the server reuses their request buffers, over
// a pool that overwrites each buffer it gets back. Everything kept from
// earlier calls (the pdata handed on, the store's series and metadata, the
// answers) must still read as sent.
func TestRecycledRequestBuffersLeaveNoTrace(t *testing.T) {
	pool := &poisonPool{}
	t.Cleanup(grpccodec.SetRequestPool(pool))

	sink := new(consumertest.MetricsSink)
	r := startStoreReceiverTo(t, t.TempDir(), sink)
	client := dialReceiver(t, r)

	const rounds = 12
	var answers []*pb.RecordBatchMetricsResponse
	for round := range rounds {
		resp, err := client.RecordBatchMetrics(context.Background(), recycleBatch(round))
		require.NoError(t, err, "round %d", round)
		require.EqualValues(t, 43, resp.AcceptedCount, "round %d", round)
		answers = append(answers, resp)
	}
	// the first round's series were new: from the second on, every request
	// was recycled (the test means nothing otherwise)
	require.Equal(t, rounds-1, pool.recycled(), "requests whose buffers went back to the pool")

	// a retried request id answers from the answer kept
	dup, err := client.RecordBatchMetrics(context.Background(), recycleBatch(4))
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	require.EqualValues(t, 43, dup.AcceptedCount)

	// a refused item's answer quotes the request (marshaled after the
	// handler returned): that request is not recycled
	bad := recycleBatch(rounds)
	bad.Options = &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT}
	bad.Metrics = append(bad.Metrics, &pb.MetricData{Name: "recycle bad name", Type: pb.MetricType_METRIC_TYPE_GAUGE, Value: 1})
	refused, err := client.RecordBatchMetrics(context.Background(), bad)
	require.NoError(t, err)
	require.EqualValues(t, 1, refused.RejectedCount)
	require.Contains(t, refused.Results[0].Message, "recycle bad name")
	require.Equal(t, rounds-1, pool.recycled())
	_, err = client.RecordBatchMetrics(context.Background(), recycleBatch(rounds+1))
	require.NoError(t, err)
	require.Equal(t, rounds, pool.recycled())

	all := sink.AllMetrics()[:rounds]
	for round, md := range all {
		require.Equal(t, wantPoints(round), pointsOf(md), "pdata of round %d", round)
	}
	for round, resp := range answers {
		if round%4 == 1 {
			require.Len(t, resp.Results, 43)
			for _, res := range resp.Results {
				require.True(t, res.Accepted)
				require.Len(t, res.SeriesId, 16)
				require.NotContains(t, res.SeriesId, "\xee")
			}
		}
	}

	// the store's series and metadata
	base := "http://" + r.httpLn.Addr().String()
	var series struct {
		Data []map[string]string `json:"data"`
	}
	decodeJSON(t, base+"/api/v1/series?"+url.Values{"match[]": {`{__name__=~"recycle_.*"}`}}.Encode(), &series)
	var got []string
	for _, s := range series.Data {
		got = append(got, s["__name__"]+" "+s["method"]+" "+s["path"]+" "+s["job"])
	}
	var want []string
	for _, m := range recycleBatch(0).Metrics {
		want = append(want, m.Name+" "+m.Labels["method"]+" "+m.Labels["path"]+" recycle-svc")
	}
	require.ElementsMatch(t, want, got)
	var meta struct {
		Data map[string][]struct {
			Help string `json:"help"`
			Unit string `json:"unit"`
		} `json:"data"`
	}
	decodeJSON(t, base+"/api/v1/metadata", &meta)
	require.Equal(t, "time spent", meta.Data["recycle_seconds"][0].Help)
	for name, ms := range meta.Data {
		for _, m := range ms {
			require.NotContains(t, name+m.Help+m.Unit, "\xee", "metadata of %s", name)
		}
	}
}

func decodeJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u) //nolint:gosec // a test server on 127.0.0.1
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}
