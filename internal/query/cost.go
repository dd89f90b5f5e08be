package query

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// defaultSubqueryStep is the step of a subquery written without one
// (`x[1h:]`); the engine is configured with the same value.
const defaultSubqueryStep = time.Minute

// Cost is an upper bound, computed from the expression before evaluation,
// of the points one query evaluates per series. The engine evaluates each
// subquery once, over the whole range of the evaluation around it plus its
// own range, at its own step (nested subqueries over the grid of their
// parent); the function around the subquery then scans the subquery's
// window at every step of the enclosing evaluation.
type Cost struct {
	// RangeSteps is the number of evaluation steps (1 for an instant query).
	RangeSteps int64
	// SubquerySteps is the number of steps of the largest subquery evaluation.
	SubquerySteps int64
	// Subquery is that subquery, as written.
	Subquery string
	// SubqueryRange is the time that subquery covers: its range plus the
	// range of the evaluation around it.
	SubqueryRange time.Duration
	// SubqueryPoints is, per series, the sum over subqueries of their
	// evaluated steps and of the points the enclosing function scans.
	SubqueryPoints int64
}

// estimateCost computes the cost of a parsed expression evaluated at
// [start, end] every step (step 0: an instant query at start).
func estimateCost(expr parser.Expr, start, end time.Time, step time.Duration) (Cost, error) {
	var c Cost
	pre, err := promql.PreprocessExpr(expr, start, end, step)
	if err != nil {
		return c, err
	}
	s, t := start.UnixMilli(), end.UnixMilli()
	interval := max(step.Milliseconds(), 1)
	if step <= 0 {
		t = s
	}
	c.RangeSteps = gridSteps(s, t, interval)
	parser.Inspect(pre, func(node parser.Node, path []parser.Node) error {
		sq, ok := node.(*parser.SubqueryExpr)
		if !ok {
			return nil
		}
		ps, pt, pi := evaluationGrid(s, t, interval, path)
		parentSteps := gridSteps(ps, pt, pi)
		ss, st, si := subqueryGrid(ps, pt, pi, sq)
		steps := gridSteps(ss, st, si)
		window := max(sq.Range.Milliseconds()/si, 1)
		c.SubqueryPoints = addSat(c.SubqueryPoints, addSat(steps, mulSat(parentSteps, window)))
		if steps > c.SubquerySteps {
			c.SubquerySteps = steps
			c.Subquery = sq.String()
			c.SubqueryRange = time.Duration(mulSat(addSat(max(pt-ps, 0), sq.Range.Milliseconds()), int64(time.Millisecond)))
		}
		return nil
	})
	return c, nil
}

// evaluationGrid follows the evaluator boundaries along path (subqueries
// and step-invariant expressions), as the engine does, and returns the grid
// the node below path is evaluated on.
func evaluationGrid(start, end, interval int64, path []parser.Node) (int64, int64, int64) {
	for _, node := range path {
		switch n := node.(type) {
		case *parser.StepInvariantExpr:
			end = start
		case *parser.SubqueryExpr:
			start, end, interval = subqueryGrid(start, end, interval, n)
		}
	}
	return start, end, interval
}

// subqueryGrid mirrors the engine's subqueryEvaluationTimes: the subquery
// is evaluated at its own step, aligned to it, from the parent's first step
// minus offset and range to the parent's last step minus offset.
func subqueryGrid(start, end, interval int64, n *parser.SubqueryExpr) (int64, int64, int64) {
	step := n.Step
	if step <= 0 {
		step = defaultSubqueryStep
	}
	sub := max(step.Milliseconds(), 1)
	offset := n.OriginalOffset.Milliseconds()
	if n.Timestamp != nil {
		offset += start - *n.Timestamp
		end = start
	} else if interval > 0 {
		end = start + ((end-start)/interval)*interval
	}
	rng := n.Range.Milliseconds()
	subStart := sub * ((start - offset - rng) / sub)
	if subStart <= start-offset-rng {
		subStart += sub
	}
	return subStart, end - offset, sub
}

// gridSteps is the number of steps of [start, end] every interval.
func gridSteps(start, end, interval int64) int64 {
	if end < start {
		return 0
	}
	// (end-start) may overflow for absurd offsets: saturate
	d := end - start
	if d < 0 {
		return math.MaxInt64
	}
	return d/interval + 1
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// checkCost refuses a query whose cost is over the configured limits.
func (c *Config) checkCost(cost Cost) error {
	if cost.SubquerySteps > c.MaxSubquerySteps {
		return &Error{Kind: KindTooLarge, Err: &LimitError{
			Key:   "query.max_subquery_steps",
			What:  fmt.Sprintf("the number of steps the subquery %s evaluates over %s", cost.Subquery, fmtDuration(cost.SubqueryRange)),
			Value: cost.SubquerySteps, Limit: c.MaxSubquerySteps,
			Fix: fmt.Sprintf("use a subquery step of at least %s, a shorter subquery range or query range, or raise query.max_subquery_steps",
				fmtDuration(minStep(cost.SubqueryRange, c.MaxSubquerySteps))),
		}}
	}
	if cost.SubqueryPoints > c.MaxSubqueryPoints {
		return &Error{Kind: KindTooLarge, Err: &LimitError{
			Key:   "query.max_subquery_points",
			What:  fmt.Sprintf("the number of points per series the subqueries evaluate and scan over %d steps", cost.RangeSteps),
			Value: cost.SubqueryPoints, Limit: c.MaxSubqueryPoints,
			Fix: "use larger subquery steps, shorter subquery ranges, fewer query steps (a larger step), or raise query.max_subquery_points",
		}}
	}
	return nil
}

// minStep is the smallest step that keeps rng under limit steps, rounded
// up to a whole second (or millisecond below one second).
func minStep(rng time.Duration, limit int64) time.Duration {
	d := rng / time.Duration(max(limit-1, 1))
	unit := time.Second
	if d < time.Second {
		unit = time.Millisecond
	}
	return (d/unit + 1) * unit
}

// fmtDuration prints a duration as PromQL does ("30d", "1h30m").
func fmtDuration(d time.Duration) string {
	return model.Duration(d).String()
}
