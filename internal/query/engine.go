package query

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"go.uber.org/zap"
)

// maxCachedEngines bounds the engines kept per requested max_samples
// value; requests asking for other values get a fresh engine.
const maxCachedEngines = 16

// MinTime and MaxTime bound the times a query may be evaluated at: the
// engine converts them to int64 nanoseconds (1677-09-21 to 2262-04-11).
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// promParser is the PromQL parser of the engine (default options).
var promParser = parser.NewParser(parser.Options{})

// Request is one query.
type Request struct {
	// Query is the PromQL expression.
	Query string
	// Instant evaluates at Time; otherwise over [Start, End] every Step.
	Instant bool
	Time    time.Time
	Start   time.Time
	End     time.Time
	Step    time.Duration
	// Timeout, MaxSamples and MaxSeries lower the server limits when
	// positive; zero keeps them; a negative Timeout or MaxSamples is refused.
	// A negative MaxSeries lifts the series limit (for callers that page;
	// never take it from a client).
	Timeout    time.Duration
	MaxSamples int
	MaxSeries  int
	// NoCache bypasses the results cache.
	NoCache bool
}

// Stats report what a query cost.
type Stats struct {
	// SamplesRead is the engine's count of samples processed.
	SamplesRead int64
	// Duration is the wall time of the evaluation.
	Duration time.Duration
	// CacheHit is true when (part of) the answer came from the results cache.
	CacheHit bool
	// Series is the number of series in the answer.
	Series int
	// PeakSamples is the most samples the engine held at once.
	PeakSamples int
	// QueueTime is the time waited for an evaluation slot.
	QueueTime time.Duration
	// Cost is the bound computed before evaluation.
	Cost Cost
}

// Result is the answer of a query: a promql.Vector, promql.Matrix,
// promql.Scalar or promql.String.
type Result struct {
	Value parser.Value
	Stats Stats
	// Warnings say the answer may be wrong (not cached); Infos are hints.
	Warnings []string
	Infos    []string
}

// Engine runs queries.
type Engine struct {
	cfg     Config
	q       storage.Queryable
	logger  *zap.Logger
	engines sync.Map // max samples (int) -> *promql.Engine
	nEngine atomic.Int32
	cache   *cache
	limiter *limiter
	remote  *remote
	telemetryHolder
}

// New returns an engine over q, or over the remote API when configured.
func New(cfg Config, q storage.Queryable, logger *zap.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, q: q, logger: logger, limiter: newLimiter(cfg.MaxConcurrent, cfg.MaxQueued)}
	if cfg.Cache.Enabled {
		e.cache = newCache(cfg.Cache.MaxBytes)
	}
	if cfg.Remote.Endpoint != "" {
		r, err := newRemote(cfg.Remote)
		if err != nil {
			return nil, err
		}
		e.remote = r
	} else if q == nil {
		return nil, fmt.Errorf("query: no store and no remote.endpoint to answer queries")
	}
	return e, nil
}

// Remote reports whether queries go to a remote API.
func (e *Engine) Remote() bool { return e.remote != nil }

// Queryable returns the local store (nil in remote mode).
func (e *Engine) Queryable() storage.Queryable { return e.q }

// InvalidateFrom drops cached results at or after t: call it when samples
// older than the freshness limit were stored.
func (e *Engine) InvalidateFrom(t time.Time) {
	if e.cache != nil {
		e.cache.invalidateFrom(t.UnixMilli())
	}
}

// FreshnessLimit is the age beyond which new samples invalidate the cache.
func (e *Engine) FreshnessLimit() time.Duration { return e.cfg.Cache.MaxFreshness }

// CacheStats returns the results cache's entries and bytes.
func (e *Engine) CacheStats() (entries int, bytes int64) {
	if e.cache == nil {
		return 0, 0
	}
	return e.cache.stats()
}

// Limits returns query.max_samples and query.max_concurrent: other read
// paths (remote read) hold to the same bounds.
func (e *Engine) Limits() (maxSamples, maxConcurrent int) {
	return e.cfg.MaxSamples, e.cfg.MaxConcurrent
}

// Running reports the queries being evaluated.
func (e *Engine) Running() int { return e.limiter.running() }

// Queued reports the queries waiting for an evaluation slot.
func (e *Engine) Queued() int { return e.limiter.queued() }

func (e *Engine) engine(maxSamples int) *promql.Engine {
	if v, ok := e.engines.Load(maxSamples); ok {
		return v.(*promql.Engine)
	}
	eng := promql.NewEngine(promql.EngineOpts{
		MaxSamples:           maxSamples,
		Timeout:              e.cfg.Timeout,
		LookbackDelta:        e.cfg.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               promParser,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return defaultSubqueryStep.Milliseconds()
		},
	})
	if e.nEngine.Add(1) > maxCachedEngines {
		e.nEngine.Add(-1)
		return eng
	}
	v, loaded := e.engines.LoadOrStore(maxSamples, eng)
	if loaded {
		e.nEngine.Add(-1)
	}
	return v.(*promql.Engine)
}

// Check validates a request without running it, and refuses it when its
// cost (computed from the expression) is over the configured limits.
func (e *Engine) Check(req *Request) error {
	_, err := e.check(req)
	return err
}

func (e *Engine) check(req *Request) (Cost, error) {
	var cost Cost
	if strings.TrimSpace(req.Query) == "" {
		return cost, newError(KindBadQuery, "query: is empty")
	}
	switch {
	case req.Timeout < 0:
		return cost, newError(KindBadQuery, "timeout: %s is negative; use a positive duration, or 0 for query.timeout (%s)", req.Timeout, e.cfg.Timeout)
	case req.MaxSamples < 0:
		return cost, newError(KindBadQuery, "max_samples: %d is negative; use a positive number, or 0 for query.max_samples (%d)", req.MaxSamples, e.cfg.MaxSamples)
	}
	expr, err := promParser.ParseExpr(req.Query)
	if err != nil {
		return cost, classify(err)
	}
	if req.Instant {
		if err := checkTime("time", req.Time); err != nil {
			return cost, err
		}
		cost, err = estimateCost(expr, req.Time, req.Time, 0)
		if err != nil {
			return cost, classify(err)
		}
		return cost, e.cfg.checkCost(cost)
	}
	if err := checkTime("start", req.Start); err != nil {
		return cost, err
	}
	if err := checkTime("end", req.End); err != nil {
		return cost, err
	}
	switch {
	case req.Step <= 0:
		return cost, newError(KindBadQuery, "step: %s must be positive for a range query", req.Step)
	case req.End.Before(req.Start):
		return cost, newError(KindBadQuery, "end: %s is before start %s", req.End.Format(time.RFC3339), req.Start.Format(time.RFC3339))
	}
	if steps := int64(req.End.Sub(req.Start) / req.Step); steps > e.cfg.MaxRangeSteps {
		return cost, &Error{Kind: KindBadQuery, Err: &LimitError{
			Key:   "query.max_range_steps",
			What:  fmt.Sprintf("the number of steps of %s over [%s, %s]", req.Step, req.Start.Format(time.RFC3339), req.End.Format(time.RFC3339)),
			Value: steps, Limit: e.cfg.MaxRangeSteps,
			Fix: fmt.Sprintf("use a step of at least %s or a shorter range", fmtDuration(minStep(req.End.Sub(req.Start), e.cfg.MaxRangeSteps+1))),
		}}
	}
	cost, err = estimateCost(expr, req.Start, req.End, req.Step)
	if err != nil {
		return cost, classify(err)
	}
	return cost, e.cfg.checkCost(cost)
}

// checkTime refuses evaluation times the engine cannot represent.
func checkTime(field string, t time.Time) error {
	if t.Before(MinTime) || t.After(MaxTime) {
		return newError(KindBadQuery, "%s: %s is outside the range a query can be evaluated at, [%s, %s]",
			field, t.Format(time.RFC3339Nano), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return nil
}

// Do runs one query.
// The query's context is ctx bounded by the smaller of req.Timeout and
// query.timeout; the wait for an evaluation slot counts against it.
func (e *Engine) Do(ctx context.Context, req Request) (res *Result, err error) {
	defer func(start time.Time) { e.record(start, err) }(time.Now())
	return e.do(ctx, req)
}

func (e *Engine) do(ctx context.Context, req Request) (*Result, error) {
	cost, err := e.check(&req)
	if err != nil {
		return nil, err
	}
	timeout := e.cfg.Timeout
	if req.Timeout > 0 && req.Timeout < timeout {
		timeout = req.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	waited, err := e.limiter.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer e.limiter.release()
	maxSamples := e.cfg.MaxSamples
	if req.MaxSamples > 0 && req.MaxSamples < maxSamples {
		maxSamples = req.MaxSamples
	}
	maxSeries := e.cfg.MaxSeries
	if req.MaxSeries > 0 && req.MaxSeries < maxSeries {
		maxSeries = req.MaxSeries
	}

	start := time.Now()
	var res *Result
	switch {
	case req.Instant:
		res, err = e.eval(ctx, req.Query, req.Time, req.Time, 0, maxSamples)
	case e.cache != nil && !req.NoCache && cacheable(req):
		res, err = e.cache.do(ctx, req, time.Now().Add(-e.cfg.Cache.MaxFreshness), func(ctx context.Context, s, t time.Time) (*Result, error) {
			return e.eval(ctx, req.Query, s, t, req.Step, maxSamples)
		})
	default:
		res, err = e.eval(ctx, req.Query, req.Start, req.End, req.Step, maxSamples)
	}
	if err != nil {
		return nil, classify(err)
	}
	res.Stats.Duration = time.Since(start)
	res.Stats.QueueTime = waited
	res.Stats.Cost = cost
	switch v := res.Value.(type) {
	case promql.Matrix:
		res.Stats.Series = len(v)
	case promql.Vector:
		res.Stats.Series = len(v)
	}
	if req.MaxSeries >= 0 && res.Stats.Series > maxSeries {
		return nil, newError(KindTooLarge, "query returned %d series, the limit is %d (query.max_series; aggregate with sum by (...) or narrow the selector)", res.Stats.Series, maxSeries)
	}
	return res, nil
}

// eval runs an instant (step 0) or range query locally or remotely.
func (e *Engine) eval(ctx context.Context, qs string, start, end time.Time, step time.Duration, maxSamples int) (*Result, error) {
	if e.remote != nil {
		return e.remote.query(ctx, qs, start, end, step)
	}
	eng := e.engine(maxSamples)
	opts := promql.NewPrometheusQueryOpts(false, e.cfg.LookbackDelta, nil)
	var qry promql.Query
	var err error
	if step == 0 {
		qry, err = eng.NewInstantQuery(ctx, e.q, opts, qs, start)
	} else {
		qry, err = eng.NewRangeQuery(ctx, e.q, opts, qs, start, end, step)
	}
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	r := qry.Exec(ctx)
	if r.Err != nil {
		return nil, r.Err
	}
	res := &Result{Value: r.Value}
	if st := qry.Stats(); st != nil && st.Samples != nil {
		res.Stats.SamplesRead = st.Samples.TotalSamples
		res.Stats.PeakSamples = st.Samples.PeakSamples
	}
	res.Warnings, res.Infos = r.Warnings.AsStrings(qs, 0, 0)
	// The engine's result may reference pooled memory released by Close.
	res.Value = copyValue(res.Value)
	return res, nil
}

// copyValue deep-copies a result so it outlives the query.
func copyValue(v parser.Value) parser.Value {
	switch v := v.(type) {
	case promql.Matrix:
		out := make(promql.Matrix, len(v))
		for i, s := range v {
			out[i] = promql.Series{Metric: s.Metric.Copy(), Floats: append([]promql.FPoint(nil), s.Floats...)}
			for _, h := range s.Histograms {
				out[i].Histograms = append(out[i].Histograms, promql.HPoint{T: h.T, H: h.H.Copy()})
			}
		}
		sort.Sort(out)
		return out
	case promql.Vector:
		out := make(promql.Vector, len(v))
		for i, s := range v {
			out[i] = s
			out[i].Metric = s.Metric.Copy()
			if s.H != nil {
				out[i].H = s.H.Copy()
			}
		}
		return out
	default:
		return v
	}
}
