package promapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slowQueryable answers selects only when the query's context ends.
type slowQueryable struct{ selects atomic.Int64 }

func (s *slowQueryable) Querier(int64, int64) (storage.Querier, error) { return slowQuerier{s}, nil }

type slowQuerier struct{ s *slowQueryable }

func (q slowQuerier) Select(ctx context.Context, _ bool, _ *storage.SelectHints, _ ...*labels.Matcher) storage.SeriesSet {
	q.s.selects.Add(1)
	<-ctx.Done()
	return storage.ErrSeriesSet(ctx.Err())
}

func (slowQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (slowQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (slowQuerier) Close() error { return nil }

func newServer(t *testing.T, mutate func(*query.Config)) (*httptest.Server, *query.Engine, *slowQueryable) {
	t.Helper()
	cfg := query.DefaultConfig()
	cfg.Timeout = time.Minute
	if mutate != nil {
		mutate(&cfg)
	}
	sq := &slowQueryable{}
	eng, err := query.New(cfg, sq, zap.NewNop())
	require.NoError(t, err)
	h, err := Handler(eng, nil, "", nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, eng, sq
}

type apiError struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func get(t *testing.T, u string) (int, apiError) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out apiError
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestTimeoutParameterIsHonoured(t *testing.T) {
	srv, _, _ := newServer(t, nil)
	start := time.Now()
	code, body := get(t, srv.URL+"/api/v1/query?query=up&timeout=200ms")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "error", body.Status)
	assert.Equal(t, "timeout", body.ErrorType)
	assert.Less(t, time.Since(start), 30*time.Second, "timeout=200ms, not query.timeout (1m)")
}

func TestQueryErrorsAsPrometheus(t *testing.T) {
	srv, _, _ := newServer(t, nil)
	now := time.Now().Unix()
	tests := []struct {
		name     string
		path     string
		code     int
		errType  string
		contains string
	}{
		{"hostile HTTP subquery", "/api/v1/query?query=" + url.QueryEscape(`count_over_time(vector(1)[6h:1ms])`) + "&timeout=2s",
			http.StatusUnprocessableEntity, "execution", "query.max_subquery_steps"},
		{"hostile gRPC subquery", "/api/v1/query?query=" + url.QueryEscape(`sum_over_time(vector(1)[30d:1ms])`),
			http.StatusUnprocessableEntity, "execution", "is 2592000000, the limit is 1000000"},
		{"too many range steps", "/api/v1/query_range?query=up&start=0&end=86400&step=1",
			http.StatusBadRequest, "bad_data", "query.max_range_steps"},
		{"negative timeout", "/api/v1/query?query=up&timeout=-5s", http.StatusBadRequest, "bad_data", `invalid parameter "timeout": "-5s" is negative`},
		{"negative timeout in seconds", "/api/v1/query?query=up&timeout=-1", http.StatusBadRequest, "bad_data", `invalid parameter "timeout"`},
		{"zero timeout", "/api/v1/query?query=up&timeout=0", http.StatusBadRequest, "bad_data", `invalid parameter "timeout": must be positive`},
		{"overflowing timeout", "/api/v1/query?query=up&timeout=1e300", http.StatusBadRequest, "bad_data", "overflows int64"},
		{"negative step", "/api/v1/query_range?query=up&start=0&end=60&step=-15", http.StatusBadRequest, "bad_data", `invalid parameter "step"`},
		{"zero step", "/api/v1/query_range?query=up&start=0&end=60&step=0", http.StatusBadRequest, "bad_data", "step: 0s must be positive"},
		{"time 9999-12-31", "/api/v1/query?query=vector(1)&time=9999-12-31T00:00:00Z", http.StatusBadRequest, "bad_data",
			"time: 9999-12-31T00:00:00Z is outside the range a query can be evaluated at"},
		{"time beyond int64 ms", "/api/v1/query?query=vector(1)&time=1e300", http.StatusBadRequest, "bad_data", `invalid parameter "time": "1e300" is outside the representable range`},
		{"NaN time", "/api/v1/query?query=vector(1)&time=NaN", http.StatusBadRequest, "bad_data", `invalid parameter "time"`},
		{"negative limit", "/api/v1/series?match[]=up&limit=-1", http.StatusBadRequest, "bad_data", `invalid parameter "limit"`},
		{"end before start", "/api/v1/query_range?query=up&start=" + itoa(now) + "&end=" + itoa(now-60) + "&step=15", http.StatusBadRequest, "bad_data", "is before start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, body := get(t, srv.URL+tt.path)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, "error", body.Status)
			assert.Equal(t, tt.errType, body.ErrorType)
			assert.Contains(t, body.Error, tt.contains)
			assert.Less(t, time.Since(start), 10*time.Second, "refused before evaluation")
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestOverloadedIsUnavailable(t *testing.T) {
	srv, eng, sq := newServer(t, func(c *query.Config) { c.MaxConcurrent, c.MaxQueued = 1, 0 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/query?query=up", http.NoBody)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return sq.selects.Load() == 1 && eng.Running() == 1 }, 10*time.Second, time.Millisecond)
	code, body := get(t, srv.URL+"/api/v1/query?query=up")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "unavailable", body.ErrorType)
	assert.Contains(t, body.Error, "query.max_queued")
	cancel()
	<-done
	require.Eventually(t, func() bool { return eng.Running() == 0 }, 10*time.Second, time.Millisecond,
		"the client went away: its query is cancelled and frees its slot")
}
