package sharedstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Status reads the backend's index statistics through its Prometheus HTTP
// API: /api/v1/status/tsdb (VictoriaMetrics and Prometheus), the metric
// names (/api/v1/label/__name__/values) and series counts (a count query).
type Status struct {
	cfg    Config
	client *http.Client
}

// NewStatus returns a status reader of the backend at cfg.QueryEndpoint.
func NewStatus(cfg Config) *Status {
	return &Status{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}
}

// TSDBStatus is the backend's index: series per metric name, distinct
// values per label name, total series.
type TSDBStatus struct {
	// TotalSeries is the backend's series count (VictoriaMetrics: of the
	// current day; Prometheus: of its head).
	TotalSeries int64
	// SeriesPerMetric is the series count per metric name (complete from
	// VictoriaMetrics; Prometheus 2.x lists its top 10).
	SeriesPerMetric map[string]int64
	// LabelValues is the distinct values per label name.
	LabelValues map[string]int64
}

type nameValue struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
}

// TSDB returns the backend's index statistics, asking for every metric
// name (the number of names the backend lists).
func (s *Status) TSDB(ctx context.Context) (*TSDBStatus, error) {
	var names []string
	if err := s.get(ctx, "/api/v1/label/__name__/values", nil, &names); err != nil {
		return nil, err
	}
	limit := strconv.Itoa(max(len(names), 10))
	var raw struct {
		TotalSeries                int64 `json:"totalSeries"`
		HeadStats                  struct{ NumSeries int64 }
		SeriesCountByMetricName    []nameValue `json:"seriesCountByMetricName"`
		LabelValueCountByLabelName []nameValue `json:"labelValueCountByLabelName"`
	}
	if err := s.get(ctx, "/api/v1/status/tsdb", url.Values{"topN": {limit}, "limit": {limit}}, &raw); err != nil {
		return nil, err
	}
	out := &TSDBStatus{TotalSeries: raw.TotalSeries, SeriesPerMetric: map[string]int64{}, LabelValues: map[string]int64{}}
	if out.TotalSeries == 0 {
		out.TotalSeries = raw.HeadStats.NumSeries
	}
	for _, nv := range raw.SeriesCountByMetricName {
		out.SeriesPerMetric[nv.Name] = nv.Value
	}
	for _, nv := range raw.LabelValueCountByLabelName {
		if nv.Name != labels.MetricName {
			out.LabelValues[nv.Name] = nv.Value
		}
	}
	return out, nil
}

// SeriesPerMetricMatching counts the backend's series matching ms per
// metric name, at now (count by (__name__) over the selector).
func (s *Status) SeriesPerMetricMatching(ctx context.Context, now time.Time, ms ...*labels.Matcher) (map[string]int64, error) {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	q := "count by (__name__) ({" + strings.Join(parts, ", ") + "})"
	var res struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := s.get(ctx, "/api/v1/query", url.Values{"query": {q}, "time": {strconv.FormatInt(now.Unix(), 10)}}, &res); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(res.Result))
	for _, r := range res.Result {
		v, _ := r.Value[1].(string)
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("shared store %s: count of %s is %q: %w", s.cfg.QueryEndpoint, r.Metric[labels.MetricName], v, err)
		}
		out[r.Metric[labels.MetricName]] = int64(n)
	}
	return out, nil
}

// get reads path's JSON answer's data into into.
func (s *Status) get(ctx context.Context, path string, params url.Values, into any) error {
	u := strings.TrimSuffix(s.cfg.QueryEndpoint, "/") + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, http.NoBody)
	if err != nil {
		return fmt.Errorf("shared store: %w", err)
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("shared store %s: %w", s.cfg.QueryEndpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("shared store %s%s: %w", s.cfg.QueryEndpoint, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("shared store %s%s: HTTP %d: %s", s.cfg.QueryEndpoint, path, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 300)])))
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("shared store %s%s: %w", s.cfg.QueryEndpoint, path, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("shared store %s%s: %s", s.cfg.QueryEndpoint, path, env.Error)
	}
	return json.Unmarshal(env.Data, into)
}
