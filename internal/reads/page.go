package reads

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
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

// candidate is a series of the walk: its key, its labels and its stored
// data (nil until fetched when the walk read the store's index).
type candidate struct {
	key    string
	ls     labels.Labels
	series storage.Series
}

// walkResult is what one walk found.
type walkResult struct {
	// cands are the smallest matching series after the cursor, in key order.
	cands []candidate
	// more is true when matching series after the cursor may have been left
	// out.
	more bool
}

// walk keeps the n smallest keys after `after` among the series of names
// (in key order) and the filter's label matchers with chunks in the window.
// With useIndex it reads the series' labels from the store's head index
// when the store can (no persisted block in the window), then fetches the
// kept ones with one Select per name; otherwise it selects each name's
// series.
func (e *Engine) walk(ctx context.Context, qr storage.Querier, p *getParams, names []string, after string, n int, useIndex bool) (*walkResult, error) {
	lo, hi := p.window()
	// skip the names whose keys all lie at or before the cursor: the keys
	// of name m lie in [m, m+"\xff\xff")
	first := 0
	if after != "" {
		first = sort.Search(len(names), func(i int) bool { return names[i]+"\xff\xff" > after })
	}
	names = names[first:]
	// lowest[i] is the smallest key any of names[i:] can have (a series
	// without labels besides its name has the name as key)
	lowest := make([]string, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		lowest[i] = names[i]
		if i+1 < len(names) && lowest[i+1] < lowest[i] {
			lowest[i] = lowest[i+1]
		}
	}
	res := &walkResult{}
	h := make([]candidate, 0, n)
	ms := append([]*labels.Matcher{nil}, p.filter.LabelMatchers()...)
	hints := &storage.SelectHints{Start: lo + 1, End: hi}
	var buf []byte
	var over int // series after the cursor that did not fit
	push := func(ls labels.Labels, s storage.Series) {
		buf = appendKey(buf[:0], ls)
		if after != "" && string(buf) <= after {
			return
		}
		switch {
		case len(h) < n:
			h = append(h, candidate{key: string(buf), ls: ls, series: s})
			heapUp(h, len(h)-1)
		case string(buf) < h[0].key:
			h[0] = candidate{key: string(buf), ls: ls, series: s}
			heapDown(h, 0)
			over++
		default:
			over++
		}
	}
	for i, name := range names {
		if len(h) == n && lowest[i] > h[0].key {
			res.more = true
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading the series of the page stopped (query.timeout, or the caller went away): %w", err)
		}
		ms[0] = labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)
		if useIndex {
			k := 0
			ok, err := e.st.EachHeadSeries(ctx, lo+1, hi, ms, func(ls labels.Labels) error {
				if k++; k%1024 == 0 {
					if err := ctx.Err(); err != nil {
						return fmt.Errorf("reading the series of the page stopped (query.timeout, or the caller went away): %w", err)
					}
				}
				push(ls, nil)
				return nil
			})
			if err != nil {
				return nil, storeError("read the store's index", err)
			}
			if ok {
				continue
			}
			useIndex = false
		}
		set := qr.Select(ctx, false, hints, ms...)
		for set.Next() {
			s := set.At()
			push(s.Labels(), s)
		}
		if err := set.Err(); err != nil {
			return nil, storeError("read the store's series", err)
		}
	}
	slices.SortFunc(h, func(a, b candidate) int { return strings.Compare(a.key, b.key) })
	if err := e.fetch(ctx, qr, p, hints, h); err != nil {
		return nil, err
	}
	res.cands = h
	res.more = res.more || over > 0
	return res, nil
}

// fetch selects the stored data of the candidates the walk found in the
// index, one Select per metric name: the name, the filter's label matchers
// and the values of the label that tells the candidates apart best (a set
// of literal values: the index answers it from their postings). A
// candidate without data in the window stays without.
func (e *Engine) fetch(ctx context.Context, qr storage.Querier, p *getParams, hints *storage.SelectHints, cands []candidate) error {
	byName := map[string][]int{}
	var order []string
	for i, c := range cands {
		if c.series != nil {
			continue
		}
		name := c.ls.Get(labels.MetricName)
		if _, ok := byName[name]; !ok {
			order = append(order, name)
		}
		byName[name] = append(byName[name], i)
	}
	var buf []byte
	for _, name := range order {
		idx := byName[name]
		ms := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)}, p.filter.LabelMatchers()...)
		if m := valueSetMatcher(cands, idx); m != nil {
			ms = append(ms, m)
		}
		want := make(map[string]int, len(idx))
		for _, i := range idx {
			want[cands[i].key] = i
		}
		set := qr.Select(ctx, false, hints, ms...)
		for set.Next() {
			s := set.At()
			buf = appendKey(buf[:0], s.Labels())
			if i, ok := want[string(buf)]; ok {
				cands[i].series = s
			}
		}
		if err := set.Err(); err != nil {
			return storeError("read the store's series", err)
		}
	}
	return nil
}

// valueSetMatcher returns label=~"v1|v2|..." for the label (other than the
// name) that every candidate of idx has, with the most distinct values; nil
// when no label is common to all.
func valueSetMatcher(cands []candidate, idx []int) *labels.Matcher {
	values := map[string]map[string]struct{}{}
	for n, i := range idx {
		cands[i].ls.Range(func(l labels.Label) {
			if l.Name == labels.MetricName {
				return
			}
			vs, ok := values[l.Name]
			if !ok {
				if n > 0 {
					return // not in an earlier candidate
				}
				vs = map[string]struct{}{}
				values[l.Name] = vs
			}
			vs[l.Value] = struct{}{}
		})
	}
	best, bestN := "", 0
	for name, vs := range values {
		every := true
		for _, i := range idx {
			if !cands[i].ls.Has(name) {
				every = false
				break
			}
		}
		if every && (len(vs) > bestN || (len(vs) == bestN && name < best)) {
			best, bestN = name, len(vs)
		}
	}
	if best == "" {
		return nil
	}
	quoted := make([]string, 0, bestN)
	for v := range values[best] {
		quoted = append(quoted, regexp.QuoteMeta(v))
	}
	slices.Sort(quoted)
	m, err := labels.NewMatcher(labels.MatchRegexp, best, strings.Join(quoted, "|"))
	if err != nil {
		return nil
	}
	return m
}

// heapUp and heapDown keep h a max-heap by key.
func heapUp(h []candidate, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].key >= h[i].key {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func heapDown(h []candidate, i int) {
	for {
		largest, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[l].key > h[largest].key {
			largest = l
		}
		if r < len(h) && h[r].key > h[largest].key {
			largest = r
		}
		if largest == i {
			return
		}
		h[i], h[largest] = h[largest], h[i]
		i = largest
	}
}

// sampleReader reads the samples of candidates in (lo, hi], refusing to
// read more than budget samples in all (query.max_samples).
type sampleReader struct {
	lo, hi int64
	latest bool
	budget int
	count  int64
	it     chunkenc.Iterator
}

// read returns the API series of c with its samples in the window (only the
// newest with latest), or nil when it has none there. Stale markers are
// skipped, as PromQL's range selectors skip them.
func (r *sampleReader) read(c candidate) (*pb.Series, error) {
	if c.series == nil {
		return nil, nil
	}
	r.it = c.series.Iterator(r.it)
	var samples []*pb.Sample
	var lastT int64
	var lastV float64
	var lastH *histogram.FloatHistogram
	found := false
	for vt := r.it.Seek(r.lo + 1); vt != chunkenc.ValNone; vt = r.it.Next() {
		t := r.it.AtT()
		if t <= r.lo {
			continue
		}
		if t > r.hi {
			break
		}
		var v float64
		var h *histogram.FloatHistogram
		switch vt {
		case chunkenc.ValFloat:
			if _, v = r.it.At(); value.IsStaleNaN(v) {
				continue
			}
		case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
			if _, h = r.it.AtFloatHistogram(nil); value.IsStaleNaN(h.Sum) {
				continue
			}
		default:
			continue
		}
		if r.count++; r.count > int64(r.budget) {
			return nil, &Error{Kind: KindTooLarge, Field: "query.max_samples",
				Message: fmt.Sprintf("the page reads more than %d samples", r.budget),
				Fix:     "ask for a smaller page_size or time_range, or latest_only, or raise query.max_samples"}
		}
		found = true
		if r.latest {
			lastT, lastV, lastH = t, v, h
			continue
		}
		samples = append(samples, newSample(t, v, h))
	}
	if err := r.it.Err(); err != nil {
		return nil, storeError("read the samples of "+c.series.Labels().String(), err)
	}
	if !found {
		return nil, nil
	}
	if r.latest {
		samples = []*pb.Sample{newSample(lastT, lastV, lastH)}
	}
	s := &pb.Series{Labels: make(map[string]string, c.series.Labels().Len()), Samples: samples}
	c.series.Labels().Range(func(l labels.Label) {
		if l.Name == labels.MetricName {
			s.Name = l.Value
			return
		}
		s.Labels[l.Name] = l.Value
	})
	return s, nil
}

func newSample(t int64, v float64, h *histogram.FloatHistogram) *pb.Sample {
	if h != nil {
		return histogramSample(t, h)
	}
	return floatSample(t, v)
}

// storeError is a failure of the store: not the request's fault.
func storeError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return &query.Error{Kind: query.KindInternal, Err: fmt.Errorf("%s: %w", what, err)}
}
