package metricsclient

import (
	"context"
	"errors"
	"iter"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/client/streamclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Query runs a PromQL instant query at at (now when zero).
func (c *Client) Query(ctx context.Context, query string, at time.Time) (*pb.QueryMetricsResponse, error) {
	req := &pb.QueryMetricsRequest{Query: query, Type: pb.QueryType_QUERY_TYPE_INSTANT}
	if !at.IsZero() {
		req.Time = timestamppb.New(at)
	}
	return c.api.QueryMetrics(ctx, req)
}

// QueryRange runs a PromQL range query over [start, end] every step.
func (c *Client) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) (*pb.QueryMetricsResponse, error) {
	return c.api.QueryMetrics(ctx, &pb.QueryMetricsRequest{
		Query: query, Type: pb.QueryType_QUERY_TYPE_RANGE,
		Start: timestamppb.New(start), End: timestamppb.New(end), Step: durationpb.New(step),
	})
}

// Series iterates over every series GetMetrics returns for req, following
// the page tokens. An error ends the iteration.
func (c *Client) Series(ctx context.Context, req *pb.GetMetricsRequest) iter.Seq2[*pb.Series, error] {
	return func(yield func(*pb.Series, error) bool) {
		r := req.CloneVT()
		for {
			resp, err := c.api.GetMetrics(ctx, r)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, s := range resp.Series {
				if !yield(s, nil) {
					return
				}
			}
			if resp.NextPageToken == "" {
				return
			}
			r.PageToken = resp.NextPageToken
		}
	}
}

// MetricsSummary returns the system summary.
func (c *Client) MetricsSummary(ctx context.Context, req *pb.GetMetricsSummaryRequest) (*pb.GetMetricsSummaryResponse, error) {
	if req == nil {
		req = &pb.GetMetricsSummaryRequest{}
	}
	return c.api.GetMetricsSummary(ctx, req)
}

// Stream consumes StreamMetrics with the exactly-once stream client
// (client/streamclient): it reconnects, resumes and de-duplicates as cfg's
// QoS says, until ctx ends or cfg.Handler fails.
func (c *Client) Stream(ctx context.Context, cfg streamclient.Config) error {
	sc, err := streamclient.New(c.conn, cfg)
	if err != nil {
		return err
	}
	return sc.Run(ctx)
}

// RegisterMetric creates or updates a metric definition (dryRun: validate
// and report only).
func (c *Client) RegisterMetric(ctx context.Context, def *pb.MetricDefinition, dryRun bool) (*pb.RegisterMetricResponse, error) {
	return c.api.RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: def, DryRun: dryRun})
}

// Definitions lists metric metadata of names (globs; all when empty),
// following the page tokens.
func (c *Client) Definitions(ctx context.Context, req *pb.GetMetricMetadataRequest) ([]*pb.MetricMetadata, error) {
	r := req.CloneVT()
	if r == nil {
		r = &pb.GetMetricMetadataRequest{}
	}
	var out []*pb.MetricMetadata
	for {
		resp, err := c.api.GetMetricMetadata(ctx, r)
		if err != nil {
			return out, err
		}
		out = append(out, resp.Metadata...)
		if resp.NextPageToken == "" {
			return out, nil
		}
		r.PageToken = resp.NextPageToken
	}
}

// Providers lists every provider matching req, following the page tokens.
func (c *Client) Providers(ctx context.Context, req *pb.ListProvidersRequest) ([]*pb.Provider, error) {
	r := req.CloneVT()
	if r == nil {
		r = &pb.ListProvidersRequest{}
	}
	var out []*pb.Provider
	for {
		resp, err := c.mgmt.ListMetricsProviders(ctx, r)
		if err != nil {
			return out, err
		}
		out = append(out, resp.Providers...)
		if resp.NextPageToken == "" {
			return out, nil
		}
		r.PageToken = resp.NextPageToken
	}
}

// Provider returns the provider id, or nil when there is none.
func (c *Client) Provider(ctx context.Context, id string) (*pb.Provider, error) {
	all, err := c.Providers(ctx, nil)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(p *pb.Provider) bool { return p.GetConfig().GetProviderId() == id })
	if i < 0 {
		return nil, nil
	}
	return all[i], nil
}

// ApplyResult is the outcome of ApplyProvider.
type ApplyResult struct {
	// Created is set when the provider did not exist.
	Created bool
	// Previous is the provider before an update (nil when created).
	Previous *pb.Provider
	// Provider is the provider after the call.
	Provider *pb.Provider
	// Update is the update's answer (nil when created).
	Update *pb.UpdateProviderResponse
}

// ApplyOptions tune ApplyProvider.
type ApplyOptions struct {
	// Strategy of an update (unset: the server's default, rolling).
	Strategy pb.UpdateStrategy
	// DryRun validates only.
	DryRun bool
	// DrainTimeout bounds the old exporter's drain on update (0: the server's 30s).
	DrainTimeout time.Duration
	// VerifyPeriod is how long a blue-green update must stay healthy (0: 30s).
	VerifyPeriod time.Duration
}

// ApplyProvider creates the provider of cfg, or updates it when it exists.
func (c *Client) ApplyProvider(ctx context.Context, cfg *pb.ProviderConfig, opts ApplyOptions) (*ApplyResult, error) {
	prev, err := c.Provider(ctx, cfg.GetProviderId())
	if err != nil {
		return nil, err
	}
	if prev == nil {
		resp, err := c.mgmt.CreateMetricsProvider(ctx, &pb.CreateProviderRequest{Config: cfg, ValidateConfig: true, AutoStart: true, DryRun: opts.DryRun})
		if err != nil {
			return nil, err
		}
		return &ApplyResult{Created: true, Provider: resp.Provider}, nil
	}
	req := &pb.UpdateProviderRequest{
		ProviderId: cfg.GetProviderId(), Config: cfg, Strategy: opts.Strategy, ValidateOnly: opts.DryRun, ExpectedVersion: prev.Version,
	}
	if opts.DrainTimeout > 0 {
		req.DrainTimeout = durationpb.New(opts.DrainTimeout)
	}
	if opts.VerifyPeriod > 0 {
		req.VerifyPeriod = durationpb.New(opts.VerifyPeriod)
	}
	resp, err := c.mgmt.UpdateMetricsProvider(ctx, req)
	if err != nil {
		return nil, err
	}
	return &ApplyResult{Previous: prev, Provider: resp.Provider, Update: resp}, nil
}

// ErrProviderGone is returned by WaitProvider when the provider no longer
// exists and done did not accept its absence.
var ErrProviderGone = errors.New("metricsclient: provider does not exist")

// WaitProvider polls the provider id every interval until done accepts it
// (done sees nil once the provider is gone), calling progress (if set)
// with each state seen, or until ctx ends.
func (c *Client) WaitProvider(ctx context.Context, id string, interval time.Duration, done func(*pb.Provider) bool, progress func(*pb.Provider)) (*pb.Provider, error) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := c.Provider(ctx, id)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(p)
		}
		if done(p) {
			return p, nil
		}
		select {
		case <-ctx.Done():
			if p == nil {
				return nil, errors.Join(ctx.Err(), ErrProviderGone)
			}
			return p, ctx.Err()
		case <-t.C:
		}
	}
}
