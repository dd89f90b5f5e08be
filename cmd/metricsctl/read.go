package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/metricsmodule/metricsmodule/client/streamclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

func (a *app) queryCommand() *cobra.Command {
	var at, start, end, window string
	var step time.Duration
	var noCache bool
	cmd := &cobra.Command{
		Use:   "query PROMQL",
		Short: "Run a PromQL instant or range query",
		Long: `Run a PromQL query. Without --range/--start it is an instant query (at --time,
default now), shown as a table of series and values. With --range (e.g. 1h,
ending now) or --start/--end, it is a range query every --step, shown as a
table with each series' last, min and max value and a sparkline.`,
		Example: `  metricsctl query 'sum by (method) (http_requests_total)'
  metricsctl query 'rate(http_requests_total[5m])' --range 1h --step 1m
  metricsctl query up -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &pb.QueryMetricsRequest{Query: args[0], DisableCache: noCache}
			if window != "" || start != "" {
				e, err := parseTime(end)
				if err != nil {
					return err
				}
				var s time.Time
				if window != "" {
					d, err := time.ParseDuration(window)
					if err != nil || d <= 0 {
						return usageErrorf("--range %q: must be a positive duration like 1h", window)
					}
					s = e.Add(-d)
				} else if s, err = parseTime(start); err != nil {
					return err
				}
				if step <= 0 {
					step = max(e.Sub(s)/60, time.Second).Round(time.Second)
				}
				req.Type, req.Start, req.End, req.Step = pb.QueryType_QUERY_TYPE_RANGE, timestamppb.New(s), timestamppb.New(e), durationpb.New(step)
			} else {
				req.Type = pb.QueryType_QUERY_TYPE_INSTANT
				if at != "" {
					t, err := parseTime(at)
					if err != nil {
						return err
					}
					req.Time = timestamppb.New(t)
				}
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			resp, err := cl.Metrics().QueryMetrics(ctx, req)
			if err != nil {
				return err
			}
			if ok, err := a.printStructured(resp); ok {
				return err
			}
			a.printQuery(resp)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&at, "time", "", "evaluation time of an instant query (RFC 3339, Unix seconds, -5m)")
	f.StringVar(&window, "range", "", "range query over this long, ending at --end (e.g. 1h)")
	f.StringVar(&start, "start", "", "start of a range query")
	f.StringVar(&end, "end", "", "end of a range query (default now)")
	f.DurationVar(&step, "step", 0, "step of a range query (default: range/60)")
	f.BoolVar(&noCache, "no-cache", false, "bypass the results cache")
	return cmd
}

func seriesName(s *pb.Series) string {
	if s.Name == "" {
		return "-"
	}
	return s.Name
}

func (a *app) printQuery(resp *pb.QueryMetricsResponse) {
	switch resp.ResultType {
	case pb.QueryResultType_QUERY_RESULT_TYPE_SCALAR:
		fmt.Fprintln(a.stdout, fmtValue(resp.Scalar.GetValue()))
	case pb.QueryResultType_QUERY_RESULT_TYPE_STRING:
		fmt.Fprintln(a.stdout, resp.StringValue)
	case pb.QueryResultType_QUERY_RESULT_TYPE_MATRIX:
		t := newTable(a.stdout, "NAME", "LABELS", "POINTS", "LAST", "MIN", "MAX", "TREND")
		for _, s := range resp.Series {
			var vals []float64
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, p := range s.Samples {
				vals = append(vals, p.Value)
				lo, hi = min(lo, p.Value), max(hi, p.Value)
			}
			last := "-"
			if len(vals) > 0 {
				last = fmtValue(vals[len(vals)-1])
			}
			t.row(seriesName(s), fmtLabels(s.Labels), fmt.Sprint(len(vals)), last, fmtValue(lo), fmtValue(hi), sparkline(vals, 40))
		}
		t.flush()
	default:
		t := newTable(a.stdout, "NAME", "LABELS", "VALUE", "TIME")
		for _, s := range resp.Series {
			for _, p := range s.Samples {
				t.row(seriesName(s), fmtLabels(s.Labels), fmtValue(p.Value), fmtTime(p.Timestamp))
			}
		}
		t.flush()
	}
	if len(resp.Series) == 0 && resp.ResultType != pb.QueryResultType_QUERY_RESULT_TYPE_SCALAR && resp.ResultType != pb.QueryResultType_QUERY_RESULT_TYPE_STRING {
		fmt.Fprintln(a.stderr, "no series matched")
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
}

// parseMatchers reads name=value, name!=value, name=~re, name!~re.
func parseMatchers(in []string) ([]*pb.LabelMatcher, error) {
	var out []*pb.LabelMatcher
	for _, s := range in {
		for _, op := range []struct {
			tok string
			op  pb.MatchOperator
		}{{"!=", pb.MatchOperator_MATCH_OPERATOR_NOT_EQUAL}, {"=~", pb.MatchOperator_MATCH_OPERATOR_REGEX}, {"!~", pb.MatchOperator_MATCH_OPERATOR_NOT_REGEX}, {"=", pb.MatchOperator_MATCH_OPERATOR_EQUAL}} {
			if k, v, ok := strings.Cut(s, op.tok); ok && k != "" {
				out = append(out, &pb.LabelMatcher{Name: k, Operator: op.op, Value: v})
				goto next
			}
		}
		return nil, usageErrorf("--label %q: must be name=value, name!=value, name=~regex or name!~regex", s)
	next:
	}
	return out, nil
}

func (a *app) getCommand() *cobra.Command {
	var matchers []string
	var since string
	var latest bool
	var limit int
	cmd := &cobra.Command{
		Use:   "get [NAME|GLOB...]",
		Short: "List series with their latest values",
		Example: `  metricsctl get 'http_*'
  metricsctl get http_requests_total -l method=GET --since 1h`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := parseMatchers(matchers)
			if err != nil {
				return err
			}
			req := &pb.GetMetricsRequest{Filter: &pb.MetricFilter{Names: args, LabelMatchers: ms}, LatestOnly: latest, PageSize: int32(min(limit, 1000))}
			if since != "" {
				s, err := parseTime("-" + strings.TrimPrefix(since, "-"))
				if err != nil {
					return err
				}
				req.TimeRange = &pb.TimeRange{Start: timestamppb.New(s)}
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			all := &pb.GetMetricsResponse{}
			for s, err := range cl.Series(ctx, req) {
				if err != nil {
					return err
				}
				all.Series = append(all.Series, s)
				if limit > 0 && len(all.Series) >= limit {
					break
				}
			}
			all.TotalCount = int64(len(all.Series))
			if ok, err := a.printStructured(all); ok {
				return err
			}
			t := newTable(a.stdout, "NAME", "TYPE", "LABELS", "LAST", "TIME", "SAMPLES")
			for _, s := range all.Series {
				last, at := "-", "-"
				if n := len(s.Samples); n > 0 {
					last, at = fmtValue(s.Samples[n-1].Value), fmtTime(s.Samples[n-1].Timestamp)
				}
				t.row(s.Name, shortEnum(s.Type, "METRIC_TYPE_"), fmtLabels(s.Labels), last, at, fmt.Sprint(len(s.Samples)))
			}
			t.flush()
			if len(all.Series) == 0 {
				fmt.Fprintln(a.stderr, "no series matched")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&matchers, "label", "l", nil, "label matcher name=value, name!=value, name=~re, name!~re (repeatable)")
	f.StringVar(&since, "since", "", "samples of the last DURATION (default: the server's, 5m)")
	f.BoolVar(&latest, "latest", true, "only the newest sample of each series")
	f.IntVar(&limit, "limit", 1000, "most series shown (0: all)")
	return cmd
}

func (a *app) summaryCommand() *cobra.Command {
	var topN int32
	var names []string
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Show the health, size, rates, top metrics and recommendations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			req := &pb.GetMetricsSummaryRequest{TopN: topN, IncludeRecommendations: true}
			if len(names) > 0 {
				req.Filter = &pb.MetricFilter{Names: names}
			}
			s, err := cl.MetricsSummary(ctx, req)
			if err != nil {
				return err
			}
			if ok, err := a.printStructured(s); ok {
				return err
			}
			a.printSummary(s)
			return nil
		},
	}
	cmd.Flags().Int32Var(&topN, "top", 5, "entries in the top lists")
	cmd.Flags().StringArrayVar(&names, "name", nil, "only these metrics (names or globs, repeatable)")
	return cmd
}

func (a *app) printSummary(s *pb.GetMetricsSummaryResponse) {
	w := a.stdout
	tot := s.GetTotals()
	fmt.Fprintf(w, "%s of %s, %s stored\n", plural(tot.GetSeries(), "series"), plural(tot.GetMetricNames(), "metric"), plural(tot.GetSamples(), "sample"))
	fmt.Fprintf(w, "ingest: %s now (1m), %s over 5m, %s over 15m\n", fmtRate(tot.GetIngestRate_1M()), fmtRate(tot.GetIngestRate_5M()), fmtRate(tot.GetIngestRate_15M()))
	if len(tot.GetMetricsByType()) > 0 {
		var parts []string
		for _, k := range slicesSortedKeys(tot.GetMetricsByType()) {
			parts = append(parts, plural(tot.GetMetricsByType()[k], strings.ToLower(strings.TrimPrefix(k, "METRIC_TYPE_"))))
		}
		fmt.Fprintf(w, "metrics by type: %s\n", strings.Join(parts, ", "))
	}
	if st := s.GetStorage(); st != nil {
		span := ""
		if st.MinTime != nil && st.MaxTime != nil {
			span = fmt.Sprintf(", data from %s to %s", fmtTime(st.MinTime), fmtTime(st.MaxTime))
		}
		fmt.Fprintf(w, "storage: %s on disk, %s in memory, %d blocks%s\n", fmtBytes(st.DiskBytes), fmtBytes(st.MemoryBytes), st.Blocks, span)
	}
	if len(s.Health) > 0 {
		fmt.Fprintln(w, "\nhealth:")
		for _, h := range s.Health {
			line := fmt.Sprintf("  %-10s %s", h.Name, healthWords(h.Status))
			if h.Message != "" {
				line += ": " + h.Message
			}
			if h.Since != nil {
				line += " (since " + fmtAgo(h.Since) + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(s.TopBySeries) > 0 {
		fmt.Fprintln(w, "\nmost series:")
		t := newTable(w)
		for _, r := range s.TopBySeries {
			t.row("  "+r.Name, shortEnum(r.Type, "METRIC_TYPE_"), plural(r.Series, "series"), fmtRate(r.Rate))
		}
		t.flush()
	}
	if len(s.TopByRate) > 0 {
		fmt.Fprintln(w, "\nbusiest:")
		t := newTable(w)
		for _, r := range s.TopByRate {
			t.row("  "+r.Name, fmtRate(r.Rate), plural(r.Series, "series"))
		}
		t.flush()
	}
	if len(s.LabelCardinality) > 0 {
		fmt.Fprintln(w, "\nlabels with most values:")
		t := newTable(w)
		for _, l := range s.LabelCardinality {
			growth := "steady"
			switch {
			case l.Growth > 1.05:
				growth = fmt.Sprintf("growing x%.2f", l.Growth)
			case l.Growth > 0 && l.Growth < 0.95:
				growth = fmt.Sprintf("shrinking x%.2f", l.Growth)
			}
			t.row("  "+l.Label, plural(l.DistinctValues, "value"), growth)
		}
		t.flush()
	}
	for _, tr := range s.Trends {
		if tr.Name == "*" {
			change := fmt.Sprintf("x%.2f", tr.ChangeRatio)
			if tr.PreviousRate == 0 {
				change = "new"
			}
			fmt.Fprintf(w, "\ntrend: %s now vs %s in the window before (%s)\n", fmtRate(tr.CurrentRate), fmtRate(tr.PreviousRate), change)
		}
	}
	if len(s.Recommendations) > 0 {
		fmt.Fprintln(w, "\nrecommendations:")
		for _, r := range s.Recommendations {
			fmt.Fprintf(w, "  [%s] %s: %s\n", shortEnum(r.Severity, "SEVERITY_"), r.Subject, r.Message)
			if r.Action != "" {
				fmt.Fprintf(w, "      do: %s\n", r.Action)
			}
		}
	} else {
		fmt.Fprintln(w, "\nno recommendations")
	}
}

func slicesSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (a *app) tailCommand() *cobra.Command {
	var (
		qos, compression, subscription, checkpoint string
		resumeAfter                                int64
		count                                      int
		asJSON                                     bool
		batchTimeout                               uint32
	)
	cmd := &cobra.Command{
		Use:   "tail [NAME|GLOB...]",
		Short: "Stream metrics as they are recorded",
		Long: `Stream metrics as they are recorded (StreamMetrics): one line per data point
("time name{labels} value"), or one JSON object per point with --json.

The stream reconnects by itself. With --qos at-least-once or exactly-once the
server keeps a replay log of the subscription: --checkpoint FILE saves the
subscription and the last sequence printed after each batch, and the next
run with the same FILE goes on after it (or give --subscription and
--resume-after yourself). Exactly-once never prints a batch twice within a
run.`,
		Example: `  metricsctl tail 'http_*'
  metricsctl tail --qos exactly-once --checkpoint ~/.cache/tail-http.json 'http_*'
  metricsctl tail --json --count 10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &pb.StreamOptions{SubscriptionId: subscription, BatchTimeoutMs: batchTimeout}
			switch qos {
			case "best-effort":
				opts.Qos = pb.QualityOfService_QUALITY_OF_SERVICE_BEST_EFFORT
			case "at-least-once":
				opts.Qos = pb.QualityOfService_QUALITY_OF_SERVICE_AT_LEAST_ONCE
			case "exactly-once":
				opts.Qos = pb.QualityOfService_QUALITY_OF_SERVICE_EXACTLY_ONCE
			default:
				return usageErrorf("--qos %q: must be best-effort, at-least-once or exactly-once", qos)
			}
			switch compression {
			case "", "none":
			case "gzip":
				opts.Compression = pb.StreamCompression_STREAM_COMPRESSION_GZIP
			case "snappy":
				opts.Compression = pb.StreamCompression_STREAM_COMPRESSION_SNAPPY
			case "zstd":
				opts.Compression = pb.StreamCompression_STREAM_COMPRESSION_ZSTD
			case "lz4":
				opts.Compression = pb.StreamCompression_STREAM_COMPRESSION_LZ4
			default:
				return usageErrorf("--compression %q: must be none, gzip, snappy, zstd or lz4", compression)
			}
			type cp struct {
				Subscription string `json:"subscription"`
				Sequence     uint64 `json:"sequence"`
			}
			if checkpoint != "" {
				if raw, err := os.ReadFile(checkpoint); err == nil {
					var c cp
					if err := json.Unmarshal(raw, &c); err != nil {
						return usageErrorf("--checkpoint %s: %w", checkpoint, err)
					}
					if opts.SubscriptionId == "" {
						opts.SubscriptionId = c.Subscription
					}
					if resumeAfter < 0 {
						resumeAfter = int64(c.Sequence)
					}
				}
			}
			if resumeAfter >= 0 {
				r := uint64(resumeAfter)
				opts.ResumeAfterSequence = &r
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			printed := 0
			var filter *pb.MetricFilter
			if len(args) > 0 {
				filter = &pb.MetricFilter{Names: args}
			}
			announced := false
			err = cl.Stream(ctx, streamclient.Config{
				Filter:  filter,
				Options: opts,
				// the first heartbeat of a connection says the subscription is
				// in place: what is recorded from now on is printed
				OnHeartbeat: func(hb *pb.Heartbeat) {
					if !announced {
						announced = true
						fmt.Fprintf(a.stderr, "streaming (subscription %s)\n", hb.GetSubscriptionId())
					}
					if msg := hb.GetMessage(); msg != "" {
						fmt.Fprintf(a.stderr, "server: %s\n", msg)
					}
				},
				Handler: func(_ context.Context, b *pb.MetricBatch) error {
					for _, m := range b.Metrics {
						if asJSON {
							raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
							if err != nil {
								return err
							}
							fmt.Fprintf(a.stdout, "{\"sequence\":%d,\"metric\":%s}\n", b.Sequence, raw)
						} else {
							fmt.Fprintf(a.stdout, "%s %s%s %s\n", fmtTime(m.Timestamp), m.Name, fmtLabels(m.Labels), pointValue(m))
						}
						printed++
					}
					// the whole batch is printed (and checkpointed), then the stream ends
					if count > 0 && printed >= count {
						cancel()
					}
					return nil
				},
				Checkpoint: func(_ context.Context, sub string, seq uint64) error {
					if checkpoint == "" {
						return nil
					}
					raw, _ := json.Marshal(cp{Subscription: sub, Sequence: seq})
					tmp := checkpoint + ".tmp"
					if err := os.WriteFile(tmp, raw, 0o600); err != nil {
						return err
					}
					return os.Rename(tmp, checkpoint)
				},
			})
			if count > 0 && printed >= count {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&qos, "qos", "best-effort", "best-effort, at-least-once or exactly-once")
	f.StringVar(&compression, "compression", "", "none, gzip, snappy, zstd or lz4")
	f.StringVar(&subscription, "subscription", "", "subscription id to resume (at-least-once, exactly-once)")
	f.Int64Var(&resumeAfter, "resume-after", -1, "go on after this sequence of the subscription")
	f.StringVar(&checkpoint, "checkpoint", "", "file keeping the subscription and last sequence across runs")
	f.IntVar(&count, "count", 0, "stop after the batch that holds the Nth point (0: until interrupted)")
	f.BoolVar(&asJSON, "json", false, "one JSON object per point")
	f.Uint32Var(&batchTimeout, "batch-timeout-ms", 0, "longest wait of a partial batch (server default 1000)")
	return cmd
}

func pointValue(m *pb.MetricData) string {
	switch {
	case m.Histogram != nil:
		return fmt.Sprintf("count=%d sum=%s", m.Histogram.Count, fmtValue(m.Histogram.Sum))
	case m.Summary != nil:
		return fmt.Sprintf("count=%d sum=%s", m.Summary.Count, fmtValue(m.Summary.Sum))
	case len(m.Observations) > 0:
		return fmt.Sprintf("observations=%v", m.Observations)
	}
	return fmtValue(m.Value)
}

// plural writes n and the noun, with an s unless n is 1 (or the noun is series).
func plural(n int64, noun string) string {
	if n != 1 && noun != "series" {
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}
