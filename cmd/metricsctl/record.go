package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// parseType reads a metric type: counter, gauge, histogram, summary, timer.
func parseType(s string) (pb.MetricType, error) {
	switch strings.ToLower(s) {
	case "counter", "c":
		return pb.MetricType_METRIC_TYPE_COUNTER, nil
	case "gauge", "g":
		return pb.MetricType_METRIC_TYPE_GAUGE, nil
	case "histogram", "h":
		return pb.MetricType_METRIC_TYPE_HISTOGRAM, nil
	case "summary", "s":
		return pb.MetricType_METRIC_TYPE_SUMMARY, nil
	case "timer", "t":
		return pb.MetricType_METRIC_TYPE_TIMER, nil
	}
	return 0, usageErrorf("--type %q: must be counter, gauge, histogram, summary or timer", s)
}

// guessType is the type of a metric given without one: counter for a name
// ending in _total, gauge otherwise.
func guessType(name string) pb.MetricType {
	if strings.HasSuffix(name, "_total") {
		return pb.MetricType_METRIC_TYPE_COUNTER
	}
	return pb.MetricType_METRIC_TYPE_GAUGE
}

// parsePairs reads k=v flags into a map.
func parsePairs(flag string, pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--%s %q: must be name=value", flag, p)
		}
		out[k] = v
	}
	return out, nil
}

// parseTime reads RFC 3339, Unix seconds (with fraction), "now", or a
// negative duration from now ("-5m").
func parseTime(s string) (time.Time, error) {
	switch {
	case s == "" || s == "now":
		return time.Now(), nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err == nil {
			return time.Now().Add(-d), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, usageErrorf("time %q: use RFC 3339 (2026-12-07T10:00:00Z), Unix seconds, now, or -5m", s)
}

func randomID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func (a *app) recordCommand() *cobra.Command {
	var (
		typ, unit, desc, ts, requestID string
		labels, resource               []string
		cumulative, stdin, dryRun      bool
		observations                   []float64
	)
	cmd := &cobra.Command{
		Use:   "record NAME VALUE | record --stdin",
		Short: "Record a data point, or lines from stdin",
		Long: `Record one data point with flags, or many from stdin (--stdin) in Prometheus text
format: one "name{label="value",...} value [timestamp_ms]" per line, with
optional "# TYPE name counter" lines.

A counter value is an increment (--cumulative: the running total). Without
--type, a name ending in _total is a counter and anything else a gauge.
Histogram, summary and timer values are observations (timers in seconds).

The records are sent with one idempotency key (request id): running the
same command again with --request-id records nothing twice within the
server's dedup window (10m by default).`,
		Example: `  metricsctl record http_requests_total 1 -l method=GET -l path=/api/v1/users -r service.name=users-api
  metricsctl record queue_depth 17 --type gauge -l queue=mail
  metricsctl record temperature_celsius -l room=a -- -3.5     # -- before a negative value
  metricsctl record job_duration_seconds --type timer --observe 0.12 --observe 0.4
  printf 'jobs_total{queue="mail"} 2\nqueue_depth{queue="mail"} 17\n' | metricsctl record --stdin`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case stdin && len(args) > 0:
				return usageErrorf("record --stdin takes no arguments")
			case !stdin && len(observations) > 0 && len(args) != 1:
				return usageErrorf("record NAME --observe V...: give the name only")
			case !stdin && len(observations) == 0 && len(args) != 2:
				return usageErrorf("record needs NAME VALUE (or --stdin); see metricsctl record --help")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			lbl, err := parsePairs("label", labels)
			if err != nil {
				return err
			}
			res, err := parsePairs("resource", resource)
			if err != nil {
				return err
			}
			var items []*pb.MetricData
			if stdin {
				raw, err := readAllLimited(a.stdin)
				if err != nil {
					return usageErrorf("stdin: %w", err)
				}
				untyped := guessType
				if typ != "" {
					t, err := parseType(typ)
					if err != nil {
						return err
					}
					untyped = func(string) pb.MetricType { return t }
				}
				items, err = parseExposition(raw, false, cumulative, untyped)
				if err != nil {
					return usageErrorf("stdin: %w", err)
				}
				for _, it := range items {
					for k, v := range lbl {
						it.Labels[k] = v
					}
				}
			} else {
				d := &pb.MetricData{Name: args[0], Labels: lbl, Unit: unit, Description: desc, Cumulative: cumulative, Observations: observations}
				d.Type = guessType(args[0])
				if typ != "" {
					if d.Type, err = parseType(typ); err != nil {
						return err
					}
				}
				if len(args) == 2 {
					if d.Value, err = strconv.ParseFloat(args[1], 64); err != nil {
						return usageErrorf("VALUE %q is not a number", args[1])
					}
				}
				if ts != "" {
					t, err := parseTime(ts)
					if err != nil {
						return err
					}
					d.Timestamp = timestamppb.New(t)
				}
				items = []*pb.MetricData{d}
			}
			if len(items) == 0 {
				return usageErrorf("nothing to record")
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			if requestID == "" {
				requestID = randomID("metricsctl")
			}
			req := &pb.RecordBatchMetricsRequest{Metrics: items, RequestId: requestID,
				Options: &pb.BatchOptions{Mode: pb.BatchMode_BATCH_MODE_BEST_EFFORT, ValidateOnly: dryRun}}
			if res != nil {
				req.Resource = &pb.Resource{Attributes: res}
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			resp, err := cl.Metrics().RecordBatchMetrics(ctx, req)
			if err != nil {
				return err
			}
			// every point refused: refused by the server (2); some: partly (6)
			refusedCode := exitPartial
			if resp.AcceptedCount == 0 {
				refusedCode = exitRefused
			}
			if ok, err := a.printStructured(resp); ok {
				if err == nil && resp.RejectedCount > 0 {
					return &exitError{code: refusedCode, err: errPrinted}
				}
				return err
			}
			verb := "recorded"
			if dryRun {
				verb = "validated"
			}
			if resp.AcceptedCount == 0 && resp.RejectedCount > 0 {
				fmt.Fprintf(a.stdout, "nothing recorded: %d of %d points refused (request id %s", resp.RejectedCount, len(items), requestID)
			} else {
				fmt.Fprintf(a.stdout, "%s %d of %d points (request id %s", verb, resp.AcceptedCount, len(items), requestID)
			}
			if resp.Duplicate {
				fmt.Fprint(a.stdout, ", a duplicate: already recorded, nothing changed")
			}
			fmt.Fprintln(a.stdout, ")")
			if resp.RejectedCount > 0 {
				for _, r := range resp.Results {
					if r.Accepted {
						continue
					}
					fmt.Fprintf(a.stderr, "refused: %s: %s\n", items[r.Index].GetName(), r.Message)
					for _, iss := range r.Issues {
						if iss.Suggestion != "" {
							fmt.Fprintf(a.stderr, "  fix %s: %s\n", iss.Field, iss.Suggestion)
						}
					}
				}
				return &exitError{code: refusedCode, err: errPrinted}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&typ, "type", "t", "", "counter, gauge, histogram, summary or timer (default: counter for *_total, else gauge)")
	f.StringArrayVarP(&labels, "label", "l", nil, "label name=value (repeatable)")
	f.StringArrayVarP(&resource, "resource", "r", nil, "resource attribute name=value, e.g. service.name=api (repeatable)")
	f.StringVar(&unit, "unit", "", "unit (UCUM: s, By, 1, ...)")
	f.StringVar(&desc, "description", "", "help text")
	f.StringVar(&ts, "timestamp", "", "time of the point (RFC 3339, Unix seconds, -5m); default: when received")
	f.BoolVar(&cumulative, "cumulative", false, "counter values are running totals, not increments")
	f.Float64SliceVar(&observations, "observe", nil, "observations of a histogram, summary or timer (repeatable or comma separated)")
	f.BoolVar(&stdin, "stdin", false, "read Prometheus text lines from stdin")
	f.StringVar(&requestID, "request-id", "", "idempotency key (default: random)")
	f.BoolVar(&dryRun, "dry-run", false, "validate only; record nothing")
	return cmd
}
