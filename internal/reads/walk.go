package reads

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

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
