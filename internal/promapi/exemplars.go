package promapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/metricsmodule/metricsmodule/internal/query"
)

// exemplarResult is Prometheus' exemplar.QueryResult as its API encodes it.
type exemplarResult struct {
	SeriesLabels labels.Labels  `json:"seriesLabels"`
	Exemplars    []exemplarJSON `json:"exemplars"`
}

// exemplarJSON is one exemplar: value as a string, timestamp in seconds.
type exemplarJSON struct {
	Labels    labels.Labels `json:"labels"`
	Value     string        `json:"value"`
	Timestamp json.Number   `json:"timestamp"`
}

// queryExemplars answers the exemplars the store keeps for the series the
// query's selectors select, between start and end, as Prometheus does.
func (a *api) queryExemplars(w http.ResponseWriter, r *http.Request) {
	start, err := parseTime(r.FormValue("start"), minTime)
	if err != nil {
		fail(w, badData("invalid parameter \"start\": %v", err))
		return
	}
	end, err := parseTime(r.FormValue("end"), maxTime)
	if err != nil {
		fail(w, badData("invalid parameter \"end\": %v", err))
		return
	}
	if end.Before(start) {
		fail(w, badData("invalid parameter \"end\": end timestamp must not be before start timestamp"))
		return
	}
	expr, err := selectorParser.ParseExpr(r.FormValue("query"))
	if err != nil {
		fail(w, badData("invalid parameter \"query\": %v", err))
		return
	}
	selectors := parser.ExtractSelectors(expr)
	if len(selectors) == 0 || a.st == nil {
		ok(w, []exemplarResult{}, nil)
		return
	}
	eq, err := a.st.ExemplarQuerier(r.Context())
	if err != nil {
		fail(w, &query.Error{Kind: query.KindUnavailable, Err: errors.New("the store is closed; retry")})
		return
	}
	res, err := eq.Select(start.UnixMilli(), end.UnixMilli(), selectors...)
	if err != nil {
		fail(w, err)
		return
	}
	ok(w, exemplarsJSON(res), nil)
}

func exemplarsJSON(res []exemplar.QueryResult) []exemplarResult {
	out := make([]exemplarResult, 0, len(res))
	for _, qr := range res {
		er := exemplarResult{SeriesLabels: qr.SeriesLabels, Exemplars: make([]exemplarJSON, 0, len(qr.Exemplars))}
		for _, e := range qr.Exemplars {
			er.Exemplars = append(er.Exemplars, exemplarJSON{
				Labels:    e.Labels,
				Value:     formatFloat(e.Value),
				Timestamp: json.Number(strconv.FormatFloat(float64(e.Ts)/1000, 'f', -1, 64)),
			})
		}
		out = append(out, er)
	}
	return out
}

// formatFloat writes a sample value as Prometheus' API does.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// formatQuery answers the query pretty-printed by Prometheus' parser.
func (a *api) formatQuery(w http.ResponseWriter, r *http.Request) {
	expr, err := selectorParser.ParseExpr(r.FormValue("query"))
	if err != nil {
		fail(w, badData("invalid parameter \"query\": %v", err))
		return
	}
	ok(w, expr.Pretty(0), nil)
}
