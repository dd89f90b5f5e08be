package reads

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/query"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// rawPage answers GetMetrics without an aggregation from the local store,
// holding one evaluation slot of the query engine. Series are paged in key
// order (appendKey: the metric name, then the other labels); the page
// cursor is the key of the previous page's last series.
//
//  1. The metric names of the store (its label index) that pass the
//     filter's names, name_regex, exclude_names and types are put in key
//     order; the names whose every key is at or before the cursor are
//     skipped.
//  2. Name by name, the labels of the series of the name and the filter's
//     label matchers go through a bounded heap that keeps the page_size
//     (plus a few) smallest keys after the cursor; the walk stops as soon
//     as no later name can hold a smaller key. The labels come from the
//     store's head index (postings and labels only, Store.EachHeadSeries)
//     when no persisted block overlaps the range, otherwise from
//     Querier.Select (postings, labels and chunk references).
//  3. The kept series found in the index are selected (one Select per
//     name, by the values of their most distinct label), and only their
//     samples in (start, end] are read, in key order, until page_size
//     series with samples are found. A series without a sample in the range
//     (the head index also holds series that ended before it) is skipped;
//     when too many were, the walk goes on after the last one read, by
//     Querier.Select, which only returns series with chunks in the range.
//
// A page thus costs its own series and samples plus the series of the
// names it touches, wherever it lies: the cursor is a key, not an offset.
// The first page (no page_token) also counts the matching series
// (total_count, see count); the count travels in the page tokens, so later
// pages do not count again.
func (e *Engine) rawPage(ctx context.Context, p *getParams) (*pb.GetMetricsResponse, error) {
	maxSamples, _ := e.q.Limits()
	start := time.Now()
	var resp *pb.GetMetricsResponse
	waited, err := e.q.Run(ctx, func(ctx context.Context) error {
		var err error
		resp, err = e.readPage(ctx, p, maxSamples)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp.Stats.ExecutionTime = durationpb.New(time.Since(start) - waited)
	resp.Stats.QueueTime = durationpb.New(waited)
	return resp, nil
}

// window returns the sample times of a read, in milliseconds: after lo
// (exclusive) up to hi (inclusive), as PromQL's range selector
// sel[end-start] evaluated at end.
func (p *getParams) window() (lo, hi int64) {
	hi = p.end.UnixMilli()
	return hi - p.end.Sub(p.start).Milliseconds(), hi
}

func (e *Engine) readPage(ctx context.Context, p *getParams, maxSamples int) (*pb.GetMetricsResponse, error) {
	lo, hi := p.window()
	qr, err := e.q.Queryable().Querier(lo+1, hi)
	if err != nil {
		return nil, storeError("open the store for reading", err)
	}
	defer qr.Close()
	names, err := e.names(ctx, qr, p)
	if err != nil {
		return nil, err
	}
	resp := &pb.GetMetricsResponse{Stats: &pb.QueryStats{}}
	if p.total >= 0 {
		resp.TotalCount = p.total
	} else if resp.TotalCount, err = e.count(ctx, qr, p, names); err != nil {
		return nil, err
	}
	r := &sampleReader{lo: lo, hi: hi, latest: p.latest, budget: maxSamples}
	after := p.after
	// a few more candidates than the page, for series without samples in
	// the range
	want := p.pageSize + p.pageSize/8 + 8
	// the first walk reads the store's index, which also holds series
	// without samples in the window; when too many of those left the page
	// short, the next walks select the series with chunks in the window
	useIndex := e.st != nil
	for {
		w, err := e.walk(ctx, qr, p, names, after, want, useIndex)
		useIndex = false
		if err != nil {
			return nil, err
		}
		for i, c := range w.cands {
			s, err := r.read(c)
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			resp.Series = append(resp.Series, s)
			if len(resp.Series) == p.pageSize {
				if i+1 < len(w.cands) || w.more {
					resp.NextPageToken = encodePageToken(resp.TotalCount, c.key)
				}
				break
			}
		}
		if len(resp.Series) == p.pageSize || !w.more || len(w.cands) == 0 {
			break
		}
		after = w.cands[len(w.cands)-1].key
	}
	types := map[string]pb.MetricType{}
	for _, s := range resp.Series {
		t, ok := types[s.GetName()]
		if !ok {
			t, _ = e.typeOf(s.GetName())
			types[s.GetName()] = t
		}
		s.Type = t
	}
	resp.Stats.SamplesRead = r.count
	resp.Stats.SeriesReturned = int64(len(resp.Series))
	return resp, nil
}

// names returns the store's metric names that pass the filter's names and
// types, in key order: by name followed by 0xff, the order of the keys of
// series with labels besides the name.
func (e *Engine) names(ctx context.Context, qr storage.Querier, p *getParams) ([]string, error) {
	all, _, err := qr.LabelValues(ctx, labels.MetricName, nil)
	if err != nil {
		return nil, storeError("read the store's metric names", err)
	}
	names := make([]string, 0, len(all)) // all may be the index's own
	for _, n := range all {
		if n != "" && p.filter.MatchName(n) && (!p.filter.HasTypes() || p.filter.MatchType(e.typeOf(n))) {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, compareNames)
	return names, nil
}

// compareNames orders metric names as the keys of their series: a name
// that is a prefix of another is followed by 0xff in its keys, after every
// byte of the other.
func compareNames(a, b string) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	return len(b) - len(a) // the shorter name sorts last
}

// count counts the series the filter selects (names are the filter's
// names, types applied) for total_count: from the store's index postings
// when it can (the window lies in the in-memory head: series without
// samples in the window but still in the head are counted too), otherwise
// with one pass over the index entries of the series with chunks in the
// window.
func (e *Engine) count(ctx context.Context, qr storage.Querier, p *getParams, names []string) (int64, error) {
	lo, hi := p.window()
	if e.st != nil {
		n, ok, err := e.countIndex(ctx, p, names, lo+1, hi)
		if err != nil {
			return 0, storeError("count the store's series", err)
		}
		if ok {
			return n, nil
		}
	}
	set := qr.Select(ctx, false, &storage.SelectHints{Start: lo + 1, End: hi, Func: "series"}, p.filter.Matchers()...)
	var types map[string]bool // name -> passes the type filter
	if p.filter.HasTypes() {
		types = map[string]bool{}
	}
	var n int64
	for i := 0; set.Next(); i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("counting the series stopped (query.timeout, or the caller went away): %w", err)
			}
		}
		if types != nil {
			name := set.At().Labels().Get(labels.MetricName)
			ok, seen := types[name]
			if !seen {
				ok = p.filter.MatchType(e.typeOf(name))
				types[name] = ok
			}
			if !ok {
				continue
			}
		}
		n++
	}
	if err := set.Err(); err != nil {
		return 0, storeError("count the store's series", err)
	}
	return n, nil
}

// countIndex counts from the store's index, name by name (names passed
// the filter's names and types; one name's postings are a list, where the
// filter's name matchers would merge the lists of every name).
func (e *Engine) countIndex(ctx context.Context, p *getParams, names []string, mint, maxt int64) (int64, bool, error) {
	ms := append([]*labels.Matcher{nil}, p.filter.LabelMatchers()...)
	var total int64
	for _, name := range names {
		ms[0] = labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)
		n, ok, err := e.st.CountSeries(ctx, mint, maxt, ms...)
		if err != nil || !ok {
			return 0, ok, err
		}
		total += n
	}
	return total, true, nil
}

// storeError is a failure of the store: not the request's fault.
func storeError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return &query.Error{Kind: query.KindInternal, Err: fmt.Errorf("%s: %w", what, err)}
}
