package promapi

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

type sample struct {
	lbls labels.Labels
	t    int64
	v    float64
}

// newTSDBServer serves the API over a fresh TSDB holding samples.
func newTSDBServer(t *testing.T, samples []sample) (*httptest.Server, *tsdb.DB) {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.OutOfOrderTimeWindow = (24 * time.Hour).Milliseconds()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	app := db.Appender(context.Background())
	for _, s := range samples {
		_, err := app.Append(0, s.lbls, s.t, s.v)
		require.NoError(t, err)
	}
	require.NoError(t, app.Commit())
	eng, err := query.New(query.DefaultConfig(), db, zap.NewNop())
	require.NoError(t, err)
	h, err := Handler(eng, nil, "", nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, db
}

func readRequest(t *testing.T, url string, req *prompb.ReadRequest) *http.Response {
	t.Helper()
	raw, err := proto.Marshal(req)
	require.NoError(t, err)
	hr, err := http.NewRequest(http.MethodPost, url+"/api/v1/read", bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func jobQuery(start, end int64) *prompb.Query {
	return &prompb.Query{StartTimestampMs: start, EndTimestampMs: end, Matchers: []*prompb.LabelMatcher{
		{Type: prompb.LabelMatcher_EQ, Name: "job", Value: "x"},
	}}
}

var readSamples = []sample{
	{labels.FromStrings("__name__", "up", "job", "x", "host", "a"), 1000, 1},
	{labels.FromStrings("__name__", "up", "job", "x", "host", "a"), 2000, 2},
	{labels.FromStrings("__name__", "up", "job", "x", "host", "b"), 1500, 7},
	{labels.FromStrings("__name__", "up", "job", "y"), 1000, 9},
}

func TestRemoteReadSamplesReturnsTheStoredSeries(t *testing.T) {
	srv, _ := newTSDBServer(t, readSamples)
	resp := readRequest(t, srv.URL, &prompb.ReadRequest{Queries: []*prompb.Query{jobQuery(0, 10_000)}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "snappy", resp.Header.Get("Content-Encoding"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	raw, err := snappy.Decode(nil, body)
	require.NoError(t, err)
	var rr prompb.ReadResponse
	require.NoError(t, proto.Unmarshal(raw, &rr))
	require.Len(t, rr.Results, 1)
	ts := rr.Results[0].Timeseries
	require.Len(t, ts, 2)
	assert.Equal(t, []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "host", Value: "a"}, {Name: "job", Value: "x"}}, ts[0].Labels)
	assert.Equal(t, []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}, ts[0].Samples)
	assert.Equal(t, []prompb.Sample{{Value: 7, Timestamp: 1500}}, ts[1].Samples)
}

func TestRemoteReadStreamedChunksReturnsTheStoredSeries(t *testing.T) {
	srv, _ := newTSDBServer(t, readSamples)
	resp := readRequest(t, srv.URL, &prompb.ReadRequest{
		Queries:               []*prompb.Query{jobQuery(0, 10_000)},
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS},
	})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse", resp.Header.Get("Content-Type"))
	cr := remote.NewChunkedReader(resp.Body, config.DefaultChunkedReadLimit, nil)
	got := map[string][]prompb.Sample{}
	for {
		var res prompb.ChunkedReadResponse
		err := cr.NextProto(&res)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		for _, s := range res.ChunkedSeries {
			host := ""
			for _, l := range s.Labels {
				if l.Name == "host" {
					host = l.Value
				}
			}
			for _, c := range s.Chunks {
				require.Equal(t, prompb.Chunk_XOR, c.Type)
				chk, err := chunkenc.FromData(chunkenc.EncXOR, c.Data)
				require.NoError(t, err)
				it := chk.Iterator(nil)
				for it.Next() == chunkenc.ValFloat {
					ts, v := it.At()
					got[host] = append(got[host], prompb.Sample{Timestamp: ts, Value: v})
				}
			}
		}
	}
	assert.Equal(t, map[string][]prompb.Sample{
		"a": {{Timestamp: 1000, Value: 1}, {Timestamp: 2000, Value: 2}},
		"b": {{Timestamp: 1500, Value: 7}},
	}, got)
}

func TestRemoteReadRefusals(t *testing.T) {
	srv, db := newTSDBServer(t, readSamples)
	t.Run("a body that is not snappy is 400", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/api/v1/read", "application/x-protobuf", strings.NewReader("not snappy"))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
	t.Run("more samples than the limit is 400", func(t *testing.T) {
		lsrv := httptest.NewServer(newReadHandler(db, 2, RemoteReadConcurrency))
		defer lsrv.Close()
		resp := readRequest(t, lsrv.URL, &prompb.ReadRequest{Queries: []*prompb.Query{jobQuery(0, 10_000)}})
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		body, _ := io.ReadAll(resp.Body)
		assert.Contains(t, string(body), "exceeded sample limit (2)")
	})
}

// samplesOnly hides the TSDB's chunk querier.
type samplesOnly struct{ storage.Queryable }

func TestRemoteReadStreamsChunksFromASamplesOnlyQueryable(t *testing.T) {
	_, db := newTSDBServer(t, readSamples)
	srv := httptest.NewServer(newReadHandler(samplesOnly{db}, RemoteReadSampleLimit, RemoteReadConcurrency))
	defer srv.Close()
	resp := readRequest(t, srv.URL, &prompb.ReadRequest{
		Queries:               []*prompb.Query{jobQuery(0, 10_000)},
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS},
	})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var res prompb.ChunkedReadResponse
	require.NoError(t, remote.NewChunkedReader(resp.Body, config.DefaultChunkedReadLimit, nil).NextProto(&res))
	assert.NotEmpty(t, res.ChunkedSeries)
}

func TestFederateServesTheLatestSampleOfEachSelectedSeries(t *testing.T) {
	now := time.Now().UnixMilli()
	srv, _ := newTSDBServer(t, []sample{
		{labels.FromStrings("__name__", "up", "job", "x", "host", "a"), now - 20_000, 1},
		{labels.FromStrings("__name__", "up", "job", "x", "host", "a"), now - 10_000, 2},
		{labels.FromStrings("__name__", "rps", "job", "x", "instance", "i:1"), now - 10_000, 3.5},
		{labels.FromStrings("__name__", "old", "job", "x"), now - (10 * time.Minute).Milliseconds(), 4},
		{labels.FromStrings("__name__", "gone", "job", "x"), now - 10_000, math.Float64frombits(value.StaleNaN)},
		{labels.FromStrings("__name__", "up", "job", "y"), now - 10_000, 9},
	})
	resp, err := http.Get(srv.URL + `/federate?match[]={job="x"}`)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	want := "# TYPE rps untyped\n" +
		"rps{instance=\"i:1\",job=\"x\"} 3.5 " + itoa(now-10_000) + "\n" +
		"# TYPE up untyped\n" +
		"up{host=\"a\",job=\"x\",instance=\"\"} 2 " + itoa(now-10_000) + "\n"
	assert.Equal(t, want, string(body))
}

func TestFederateRefusals(t *testing.T) {
	srv, _ := newTSDBServer(t, nil)
	for _, tc := range []struct{ name, query, want string }{
		{"no match[]", "", "no match[] parameter provided"},
		{"a bad selector", `?match[]={job=`, `invalid parameter "match[]"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/federate" + tc.query)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			body, _ := io.ReadAll(resp.Body)
			assert.Contains(t, string(body), tc.want)
		})
	}
}

func TestFederateNegotiatesProtobuf(t *testing.T) {
	now := time.Now().UnixMilli()
	srv, _ := newTSDBServer(t, []sample{{labels.FromStrings("__name__", "up", "job", "x"), now, 1}})
	req, err := http.NewRequest(http.MethodGet, srv.URL+`/federate?match[]=up`, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "application/vnd.google.protobuf")
}

func TestRemoteReadAndFederateAreProxiedToARemoteBackend(t *testing.T) {
	var paths []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
	}))
	defer backend.Close()
	h, err := Handler(nil, nil, backend.URL, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, p := range []string{"/api/v1/read", "/federate?match[]=up"} {
		resp, err := http.Post(srv.URL+p, "application/x-protobuf", nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, []string{"/api/v1/read", "/federate"}, paths)
}

func TestRemoteReadAcceptsABodyTheServerAlreadyDecompressed(t *testing.T) {
	srv, _ := newTSDBServer(t, readSamples)
	raw, err := proto.Marshal(&prompb.ReadRequest{Queries: []*prompb.Query{jobQuery(0, 10_000)}})
	require.NoError(t, err)
	// confighttp decodes "Content-Encoding: snappy" and drops the header
	resp, err := http.Post(srv.URL+"/api/v1/read", "application/x-protobuf", bytes.NewReader(raw))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	dec, err := snappy.Decode(nil, body)
	require.NoError(t, err)
	var rr prompb.ReadResponse
	require.NoError(t, proto.Unmarshal(dec, &rr))
	require.Len(t, rr.Results, 1)
	assert.Len(t, rr.Results[0].Timeseries, 2)
}
