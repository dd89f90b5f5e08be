package reads

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// TestRemoteBackendPagesOverOneQuery: with query.remote.endpoint (no local
// store) a page is one PromQL range selector at the backend, paged over its
// answer in key order.
func TestRemoteBackendPagesOverOneQuery(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		queries = append(queries, r.Form.Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[
			{"metric":{"__name__":"m","id":"2"},"values":[[1700000000,"1"],[1700000010,"2"]]},
			{"metric":{"__name__":"m","id":"1"},"values":[[1700000000,"3"],[1700000010,"4"]]},
			{"metric":{"__name__":"l","id":"9"},"values":[[1700000010,"5"]]}]}}`))
	}))
	defer srv.Close()
	cfg := query.DefaultConfig()
	cfg.Remote.Endpoint = srv.URL
	q, err := query.New(cfg, nil, zap.NewNop())
	require.NoError(t, err)
	e := New(q, nil)

	pages, totals := walkPages(t, e, &pb.GetMetricsRequest{PageSize: 2, LatestOnly: true, Filter: &pb.MetricFilter{Names: []string{"m", "l"}}}, false)
	require.Len(t, pages, 2)
	assert.Equal(t, []string{"l\xffid\xfe9", "m\xffid\xfe1", "m\xffid\xfe2"}, names(flatten(pages)))
	assert.Equal(t, []int64{3, 3}, totals)
	assert.InDelta(t, 4.0, pages[0][1].Samples[0].Value, 0, "latest_only: the newest sample")
	assert.Len(t, pages[0][1].Samples, 1)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, queries, 2, "one query per page")
	assert.Equal(t, `{__name__=~"m|l"}[300000ms]`, queries[0])
}
