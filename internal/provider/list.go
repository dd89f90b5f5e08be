package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// pageToken is the opaque ListMetricsProviders cursor: an offset into the
// sorted result and a fingerprint of the query it belongs to.
type pageToken struct {
	Offset int    `json:"o"`
	Query  uint64 `json:"q"`
}

// List lists providers (ListMetricsProviders): filters, counts over all
// matching providers, sort, and pagination.
func (e *Engine) List(_ context.Context, req *pb.ListProvidersRequest) (*pb.ListProvidersResponse, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	var reqIssues []*pb.ValidationIssue
	reqIssues = append(reqIssues, validateEnums("types", req.GetTypes())...)
	reqIssues = append(reqIssues, validateEnums("states", req.GetStates())...)
	reqIssues = append(reqIssues, validateEnums("health", req.GetHealth())...)
	reqIssues = appendNonNil(reqIssues, validateEnum("sort_by", req.GetSortBy()))
	if len(reqIssues) > 0 {
		return nil, &ValidationError{Issues: reqIssues}
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("page_size", "out_of_range", "page_size must not be negative", "")}}
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	fp := queryFingerprint(req)
	offset := 0
	if t := req.GetPageToken(); t != "" {
		var tok pageToken
		raw, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || json.Unmarshal(raw, &tok) != nil || tok.Offset < 0 || tok.Query != fp {
			return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("page_token", "invalid_token",
				"page_token is not a token of this query", "repeat the query's filters and sort exactly, or start without a token")}}
		}
		offset = tok.Offset
	}
	types := setOf(req.GetTypes())
	states := setOf(req.GetStates())
	health := setOf(req.GetHealth())

	e.mu.Lock()
	var all []*pb.Provider
	for _, ps := range e.providers {
		if ps.removed {
			continue
		}
		p := e.toProviderLocked(ps)
		if (types != nil && !types[p.GetConfig().GetType()]) || (states != nil && !states[p.GetState()]) ||
			(health != nil && !health[p.GetHealth()]) || !hasTags(p.GetConfig().GetTags(), req.GetTags()) {
			continue
		}
		all = append(all, p)
	}
	e.mu.Unlock()

	counts := &pb.ProviderCounts{ByState: map[string]int32{}, ByType: map[string]int32{}, ByHealth: map[string]int32{}}
	for _, p := range all {
		counts.ByState[p.GetState().String()]++
		counts.ByType[p.GetConfig().GetType().String()]++
		counts.ByHealth[p.GetHealth().String()]++
	}
	less := sortKey(req.GetSortBy())
	sort.SliceStable(all, func(i, j int) bool {
		if req.GetDescending() {
			return less(all[j], all[i])
		}
		return less(all[i], all[j])
	})
	resp := &pb.ListProvidersResponse{TotalCount: int32(len(all)), Counts: counts}
	if offset < len(all) {
		end := min(offset+size, len(all))
		resp.Providers = all[offset:end]
		if end < len(all) {
			raw, _ := json.Marshal(pageToken{Offset: end, Query: fp})
			resp.NextPageToken = base64.RawURLEncoding.EncodeToString(raw)
		}
	}
	return resp, nil
}

func setOf[T comparable](xs []T) map[T]bool {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[T]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// sortKey orders providers by the field, then by id.
func sortKey(f pb.ProviderSortField) func(a, b *pb.Provider) bool {
	id := func(a, b *pb.Provider) bool { return a.GetConfig().GetProviderId() < b.GetConfig().GetProviderId() }
	by := func(cmp func(a, b *pb.Provider) int) func(a, b *pb.Provider) bool {
		return func(a, b *pb.Provider) bool {
			if c := cmp(a, b); c != 0 {
				return c < 0
			}
			return id(a, b)
		}
	}
	switch f {
	case pb.ProviderSortField_PROVIDER_SORT_FIELD_NAME:
		return by(func(a, b *pb.Provider) int { return strings.Compare(a.GetConfig().GetName(), b.GetConfig().GetName()) })
	case pb.ProviderSortField_PROVIDER_SORT_FIELD_CREATED_AT:
		return by(func(a, b *pb.Provider) int { return a.GetCreatedAt().AsTime().Compare(b.GetCreatedAt().AsTime()) })
	case pb.ProviderSortField_PROVIDER_SORT_FIELD_STATE:
		return by(func(a, b *pb.Provider) int { return int(a.GetState()) - int(b.GetState()) })
	case pb.ProviderSortField_PROVIDER_SORT_FIELD_HEALTH:
		return by(func(a, b *pb.Provider) int { return int(a.GetHealth()) - int(b.GetHealth()) })
	}
	return id
}

// queryFingerprint identifies a query without its page fields.
func queryFingerprint(req *pb.ListProvidersRequest) uint64 {
	q := proto.Clone(req).(*pb.ListProvidersRequest)
	q.PageSize, q.PageToken = 0, ""
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(q)
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// Stats returns a provider's statistics (GetProviderStats).
func (e *Engine) Stats(_ context.Context, req *pb.GetProviderStatsRequest) (*pb.GetProviderStatsResponse, error) {
	if err := e.ready(); err != nil {
		return nil, err
	}
	if req.GetTopN() < 0 {
		return nil, &ValidationError{Issues: []*pb.ValidationIssue{issue("top_n", "out_of_range", "top_n must not be negative", "")}}
	}
	ps, err := e.get(req.GetProviderId())
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	state, stats := ps.state, ps.stats
	oper, gen := e.opSnapshotLocked(ps), ps.generation
	q := queueLocked(ps)
	e.mu.Unlock()
	st, hist, top, anomalies := stats.snapshot(q, StatsOptions{
		HealthHistory: req.GetIncludeHealthHistory(), TopMetrics: req.GetIncludeTopMetrics(), TopN: int(req.GetTopN()),
	})
	return &pb.GetProviderStatsResponse{
		ProviderId: req.GetProviderId(), State: state, Health: stats.Health(), Stats: st,
		HealthHistory: hist, TopMetrics: top, Anomalies: anomalies, Operation: oper, Generation: gen,
	}, nil
}
