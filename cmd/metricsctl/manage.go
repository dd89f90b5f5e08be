package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// readDocs reads the YAML (or JSON) documents of path ("-": stdin) into
// messages made by newMsg, with the API's field names (snake_case or
// lowerCamel) and enum names; unknown fields are errors.
func readDocs[T proto.Message](a *app, path string, newMsg func() T) ([]T, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(a.stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usageErrorf("-f: %w", err)
	}
	var out []T
	for i, doc := range docSeparator.Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, usageErrorf("%s, document %d: %w", path, i+1, err)
		}
		m := newMsg()
		if err := protojson.Unmarshal(js, m); err != nil {
			return nil, usageErrorf("%s, document %d: %w (fix: use the API's field names, e.g. provider_id, and enum names, e.g. PROVIDER_TYPE_OPENTELEMETRY)", path, i+1, err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, usageErrorf("%s holds no document", path)
	}
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (a *app) definitionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "definitions",
		Aliases: []string{"defs", "definition"},
		Short:   "Register, list, describe and delete metric definitions (schemas)",
	}
	var file string
	var dryRun, allowBreaking bool
	apply := &cobra.Command{
		Use:   "apply -f FILE.yaml",
		Short: "Create or update the definitions of a YAML file (documents separated by ---)",
		Long: `Create or update metric definitions. Each YAML document is a MetricDefinition:

  name: http_requests_total
  type: METRIC_TYPE_COUNTER
  description: HTTP requests served
  labels:
    - {name: method, required: true, allowed_values: [GET, POST]}
    - {name: path}

--dry-run shows what would change (and whether it is compatible) without saving.
A breaking change is refused unless --allow-breaking.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("definitions apply needs -f FILE.yaml")
			}
			defs, err := readDocs(a, file, func() *pb.MetricDefinition { return &pb.MetricDefinition{} })
			if err != nil {
				return err
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			for _, d := range defs {
				ctx, cancel := a.callCtx(cmd.Context())
				resp, err := cl.Metrics().RegisterMetric(ctx, &pb.RegisterMetricRequest{Definition: d, DryRun: dryRun, AllowBreaking: allowBreaking})
				cancel()
				if err != nil {
					return fmt.Errorf("definition %s: %w", d.Name, err)
				}
				if ok, err := a.printStructured(resp); ok {
					if err != nil {
						return err
					}
					continue
				}
				verb := "updated"
				switch {
				case resp.Created && dryRun:
					verb = "would be created"
				case resp.Created:
					verb = "created"
				case dryRun:
					verb = "would be updated"
				}
				compat := ""
				if !resp.Compatible {
					compat = " (breaking)"
				}
				fmt.Fprintf(a.stdout, "%s: %s, schema v%d%s\n", d.Name, verb, resp.SchemaVersion, compat)
				for _, ch := range resp.Changes {
					mark := "~"
					if ch.Breaking {
						mark = "!"
					}
					fmt.Fprintf(a.stdout, "  %s %s: %s\n", mark, ch.Field, ch.Description)
				}
				for _, iss := range resp.Issues {
					fmt.Fprintf(a.stderr, "  %s %s: %s %s\n", shortEnum(iss.Severity, "SEVERITY_"), iss.Field, iss.Message, iss.Suggestion)
				}
			}
			return nil
		},
	}
	apply.Flags().StringVarP(&file, "filename", "f", "", "YAML file of definitions (- for stdin)")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change; save nothing")
	apply.Flags().BoolVar(&allowBreaking, "allow-breaking", false, "accept a backward-incompatible change")

	var unregistered bool
	list := &cobra.Command{
		Use:   "list [NAME|GLOB...]",
		Short: "List metric definitions",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			md, err := cl.Definitions(ctx, &pb.GetMetricMetadataRequest{Names: args, IncludeUnregistered: unregistered})
			if err != nil {
				return err
			}
			resp := &pb.GetMetricMetadataResponse{Metadata: md, TotalCount: int64(len(md))}
			if ok, err := a.printStructured(resp); ok {
				return err
			}
			t := newTable(a.stdout, "NAME", "TYPE", "VERSION", "LABELS", "UNIT", "HEALTH", "DESCRIPTION")
			for _, m := range md {
				d := m.Definition
				var labels []string
				for _, l := range d.GetLabels() {
					n := l.Name
					if l.Required {
						n += "*"
					}
					labels = append(labels, n)
				}
				ver := fmt.Sprintf("v%d", m.SchemaVersion)
				if !m.Registered {
					ver = "unregistered"
				}
				t.row(d.GetName(), shortEnum(d.GetType(), "METRIC_TYPE_"), ver, strings.Join(labels, ","), d.GetUnit(), shortEnum(m.GetHealth().GetStatus(), "HEALTH_STATUS_"), d.GetDescription())
			}
			t.flush()
			return nil
		},
	}
	list.Flags().BoolVar(&unregistered, "all", false, "include metrics seen but not registered")

	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a definition with its history, usage and health",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			md, err := cl.Definitions(ctx, &pb.GetMetricMetadataRequest{Names: args, IncludeHistory: true, IncludeUsage: true, IncludeUnregistered: true})
			if err != nil {
				return err
			}
			if len(md) == 0 {
				return &exitError{code: exitNotFound, err: fmt.Errorf("metric %s: no definition and no data (fix: definitions list --all)", args[0])}
			}
			if a.output == "table" {
				a.output = "yaml"
			}
			_, err = a.printStructured(md[0])
			return err
		},
	}

	var del pb.UnregisterMetricRequest
	deleteCmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove a definition (optionally its data, with a backup)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			req := del.CloneVT()
			req.Name = args[0]
			resp, err := cl.Metrics().UnregisterMetric(ctx, req)
			if err != nil {
				return err
			}
			if ok, err := a.printStructured(resp); ok {
				return err
			}
			verb := "removed"
			if resp.DryRun {
				verb = "would be removed"
			}
			fmt.Fprintf(a.stdout, "%s: %s (series affected %d, samples %d)\n", args[0], verb, resp.SeriesAffected, resp.SamplesAffected)
			if resp.BackupId != "" {
				fmt.Fprintf(a.stdout, "backup %s at %s (restore: RegisterMetric restore_backup_id)\n", resp.BackupId, resp.BackupPath)
			}
			return nil
		},
	}
	deleteCmd.Flags().BoolVar(&del.DryRun, "dry-run", false, "report what would be removed; remove nothing")
	deleteCmd.Flags().BoolVar(&del.DeleteData, "delete-data", false, "delete the stored data too")
	deleteCmd.Flags().BoolVar(&del.Backup, "backup", false, "back up the definition and data first")
	cmd.AddCommand(apply, list, describe, deleteCmd)
	return cmd
}

func (a *app) providersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "providers",
		Aliases: []string{"provider"},
		Short:   "Create, update, list, inspect and delete export providers (MetricsManagementService)",
	}
	var file, strategy string
	var dryRun, wait, yes bool
	var waitTimeout, applyDrain, verifyPeriod time.Duration
	apply := &cobra.Command{
		Use:   "apply -f FILE.yaml",
		Short: "Create a provider, or update it showing the difference first",
		Long: `Create or update the providers of a YAML file; each document is a ProviderConfig:

  provider_id: local-otlp
  name: Local OTLP sink
  type: PROVIDER_TYPE_OPENTELEMETRY
  settings:
    opentelemetry: {endpoint: "127.0.0.1:4317", protocol: OTLP_PROTOCOL_GRPC}

An existing provider is updated (--strategy rolling, recreate or blue-green):
the difference to the running config is printed first (secrets are redacted
by the server, so they always show as changed). --wait follows the provider
until it runs (or fails).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErrorf("providers apply needs -f FILE.yaml")
			}
			strat, err := parseStrategy(strategy)
			if err != nil {
				return err
			}
			cfgs, err := readDocs(a, file, func() *pb.ProviderConfig { return &pb.ProviderConfig{} })
			if err != nil {
				return err
			}
			cl, err := a.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			for _, c := range cfgs {
				ctx, cancel := a.callCtx(cmd.Context())
				prev, err := cl.Provider(ctx, c.ProviderId)
				cancel()
				if err != nil {
					return err
				}
				if prev != nil {
					d := diffLines(mustYAML(prev.Config), mustYAML(c))
					if d == "" {
						fmt.Fprintf(a.stderr, "%s: unchanged\n", c.ProviderId)
						continue
					}
					fmt.Fprintf(a.stderr, "%s: changes (version %d):\n%s", c.ProviderId, prev.Version, d)
				}
				// an update waits for the old exporter's drain (and a blue-green
				// verification): the call may last that long beyond --timeout
				extra := applyDrain
				if extra == 0 {
					extra = 30 * time.Second
				}
				if strat == pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN {
					extra += cmp.Or(verifyPeriod, 30*time.Second)
				}
				ctx, cancel = context.WithTimeout(cmd.Context(), a.timeout+extra)
				res, err := cl.ApplyProvider(ctx, c, metricsclient.ApplyOptions{Strategy: strat, DryRun: dryRun, DrainTimeout: applyDrain, VerifyPeriod: verifyPeriod})
				cancel()
				if err != nil {
					return fmt.Errorf("provider %s: %w", c.ProviderId, err)
				}
				if ok, err := a.printStructured(res.Provider); ok {
					if err != nil {
						return err
					}
				} else {
					verb := "updated"
					switch {
					case res.Created && dryRun:
						verb = "validated (would be created)"
					case res.Created:
						verb = "created"
					case dryRun:
						verb = "validated (would be updated)"
					}
					fmt.Fprintf(a.stdout, "%s: %s, version %d, %s\n", c.ProviderId, verb, res.Provider.GetVersion(), shortEnum(res.Provider.GetState(), "PROVIDER_STATE_"))
					if res.Update != nil && res.Update.Message != "" {
						fmt.Fprintf(a.stdout, "  %s\n", res.Update.Message)
					}
					if res.Update != nil && res.Update.RolledBack {
						return &exitError{code: exitRefused, err: fmt.Errorf("provider %s: the update failed verification and was rolled back", c.ProviderId)}
					}
				}
				if wait && !dryRun {
					if err := a.waitRunning(cmd, cl, c.ProviderId, waitTimeout); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	apply.Flags().StringVarP(&file, "filename", "f", "", "YAML file of provider configs (- for stdin)")
	apply.Flags().StringVar(&strategy, "strategy", "rolling", "update strategy: rolling, recreate or blue-green")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "validate only; change nothing")
	apply.Flags().DurationVar(&applyDrain, "drain-timeout", 0, "update: longest drain of the old exporter (server default 30s)")
	apply.Flags().DurationVar(&verifyPeriod, "verify-period", 0, "blue-green update: how long the new exporter must stay healthy (server default 30s)")
	apply.Flags().BoolVar(&wait, "wait", false, "follow the provider until it runs (or fails)")
	apply.Flags().DurationVar(&waitTimeout, "wait-timeout", 2*time.Minute, "longest --wait")

	list := &cobra.Command{
		Use:   "list",
		Short: "List providers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			ps, err := cl.Providers(ctx, nil)
			if err != nil {
				return err
			}
			if ok, err := a.printStructured(&pb.ListProvidersResponse{Providers: ps, TotalCount: int32(len(ps))}); ok {
				return err
			}
			t := newTable(a.stdout, "ID", "TYPE", "STATE", "HEALTH", "VERSION", "EXPORTER", "UPDATED", "LAST ERROR")
			for _, p := range ps {
				t.row(p.Config.GetProviderId(), shortEnum(p.Config.GetType(), "PROVIDER_TYPE_"), shortEnum(p.State, "PROVIDER_STATE_"),
					shortEnum(p.Health, "HEALTH_STATUS_"), fmt.Sprint(p.Version), p.ExporterId, fmtAgo(p.UpdatedAt), p.LastError)
			}
			t.flush()
			return nil
		},
	}

	describe := &cobra.Command{
		Use:   "describe ID",
		Short: "Show a provider's config (secrets redacted) and state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			p, err := cl.Provider(ctx, args[0])
			if err != nil {
				return err
			}
			if p == nil {
				return &exitError{code: exitNotFound, err: fmt.Errorf("provider %s does not exist (fix: providers list)", args[0])}
			}
			if a.output == "table" {
				a.output = "yaml"
			}
			_, err = a.printStructured(p)
			return err
		},
	}

	stats := &cobra.Command{
		Use:   "stats ID",
		Short: "Show a provider's export statistics, health history and top metrics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := a.callCtx(cmd.Context())
			defer cancel()
			r, err := cl.Management().GetProviderStats(ctx, &pb.GetProviderStatsRequest{ProviderId: args[0], IncludeHealthHistory: true, IncludeTopMetrics: true, TopN: 5})
			if err != nil {
				return err
			}
			if ok, err := a.printStructured(r); ok {
				return err
			}
			s := r.GetStats()
			w := a.stdout
			fmt.Fprintf(w, "%s: %s, %s\n", r.ProviderId, shortEnum(r.State, "PROVIDER_STATE_"), healthWords(r.Health))
			fmt.Fprintf(w, "sent %d points (%s over 1m), failed %d, dropped %d, export errors %d\n", s.GetDatapointsSent(), fmtRate(s.GetThroughput_1M()), s.GetDatapointsFailed(), s.GetDatapointsDropped(), s.GetExportErrors())
			fmt.Fprintf(w, "queue %d of %d batches; latency p50 %s p99 %s; last export %s; up %s\n", s.GetQueueSize(), s.GetQueueCapacity(),
				s.GetExportLatency().GetP50().AsDuration(), s.GetExportLatency().GetP99().AsDuration(), fmtAgo(s.GetLastExport()), s.GetUptime().AsDuration().Round(time.Second))
			if s.GetLastError() != "" {
				fmt.Fprintf(w, "last error: %s\n", s.GetLastError())
			}
			for _, m := range r.TopMetrics {
				fmt.Fprintf(w, "  top %s: %d points\n", m.Name, m.Datapoints)
			}
			for _, h := range r.HealthHistory {
				fmt.Fprintf(w, "  %s %s %s\n", fmtTime(h.Time), shortEnum(h.Status, "HEALTH_STATUS_"), h.Message)
			}
			for _, an := range r.Anomalies {
				fmt.Fprintf(w, "  anomaly [%s] %s: %s\n", shortEnum(an.Severity, "SEVERITY_"), an.Kind, an.Message)
			}
			return nil
		},
	}

	var cleanup string
	var drain time.Duration
	var backup bool
	deleteCmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a provider (graceful by default: its queue is drained)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cs pb.CleanupStrategy
			switch cleanup {
			case "graceful":
				cs = pb.CleanupStrategy_CLEANUP_STRATEGY_GRACEFUL
			case "immediate":
				cs = pb.CleanupStrategy_CLEANUP_STRATEGY_IMMEDIATE
			case "background":
				cs = pb.CleanupStrategy_CLEANUP_STRATEGY_BACKGROUND
			default:
				return usageErrorf("--cleanup %q: must be graceful, immediate or background", cleanup)
			}
			_ = yes
			cl, err := a.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			// a graceful deletion drains first: the call may last that long beyond --timeout
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout+cmp.Or(drain, 30*time.Second))
			defer cancel()
			req := &pb.DeleteProviderRequest{ProviderId: args[0], CleanupStrategy: cs, Backup: backup, DryRun: dryRun}
			if drain > 0 {
				req.DrainTimeout = durationpb.New(drain)
			}
			r, err := cl.Management().DeleteMetricsProvider(ctx, req)
			if err != nil {
				return err
			}
			if ok, err := a.printStructured(r); ok {
				return err
			}
			verb := "deleted"
			switch {
			case r.DryRun:
				verb = "would be deleted"
			case !r.Deleted:
				verb = "deleting (" + shortEnum(r.State, "PROVIDER_STATE_") + ")"
			}
			fmt.Fprintf(a.stdout, "%s: %s; drained %d points, dropped %d\n", args[0], verb, r.DrainedDatapoints, r.DroppedDatapoints)
			if r.Message != "" {
				fmt.Fprintf(a.stdout, "  %s\n", r.Message)
			}
			if r.BackupId != "" {
				fmt.Fprintf(a.stdout, "  backup %s (restore with CreateMetricsProvider restore_backup_id)\n", r.BackupId)
			}
			if wait && !r.DryRun {
				wctx, wcancel := contextTimeout(cmd, waitTimeout)
				defer wcancel()
				_, err := cl.WaitProvider(wctx, args[0], 200*time.Millisecond, func(p *pb.Provider) bool { return p == nil }, a.progressFn(args[0]))
				if err != nil {
					return fmt.Errorf("waiting for %s to be gone: %w", args[0], err)
				}
				fmt.Fprintf(a.stderr, "%s: gone\n", args[0])
			}
			return nil
		},
	}
	df := deleteCmd.Flags()
	df.StringVar(&cleanup, "cleanup", "graceful", "graceful (drain the queue), immediate, or background (drain after returning)")
	df.DurationVar(&drain, "drain-timeout", 0, "longest drain (server default 30s)")
	df.BoolVar(&backup, "backup", false, "keep a backup of the config")
	df.BoolVar(&dryRun, "dry-run", false, "report what would happen; change nothing")
	df.BoolVar(&wait, "wait", false, "follow the deletion until the provider is gone")
	df.DurationVar(&waitTimeout, "wait-timeout", 2*time.Minute, "longest --wait")
	df.BoolVarP(&yes, "yes", "y", false, "do not ask (metricsctl never asks; accepted for scripts)")
	cmd.AddCommand(apply, list, describe, stats, deleteCmd)
	return cmd
}

func parseStrategy(s string) (pb.UpdateStrategy, error) {
	switch s {
	case "rolling", "":
		return pb.UpdateStrategy_UPDATE_STRATEGY_ROLLING, nil
	case "recreate":
		return pb.UpdateStrategy_UPDATE_STRATEGY_RECREATE, nil
	case "blue-green":
		return pb.UpdateStrategy_UPDATE_STRATEGY_BLUE_GREEN, nil
	}
	return 0, usageErrorf("--strategy %q: must be rolling, recreate or blue-green", s)
}

func (a *app) progressFn(id string) func(*pb.Provider) {
	last := ""
	return func(p *pb.Provider) {
		s := "gone"
		if p != nil {
			s = shortEnum(p.State, "PROVIDER_STATE_") + ", " + shortEnum(p.Health, "HEALTH_STATUS_")
			if p.LastError != "" {
				s += ": " + p.LastError
			}
		}
		if s != last {
			fmt.Fprintf(a.stderr, "%s: %s\n", id, s)
			last = s
		}
	}
}

func (a *app) waitRunning(cmd *cobra.Command, cl *metricsclient.Client, id string, timeout time.Duration) error {
	ctx, cancel := contextTimeout(cmd, timeout)
	defer cancel()
	p, err := cl.WaitProvider(ctx, id, 200*time.Millisecond, func(p *pb.Provider) bool {
		return p == nil || p.State == pb.ProviderState_PROVIDER_STATE_RUNNING || p.State == pb.ProviderState_PROVIDER_STATE_FAILED
	}, a.progressFn(id))
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", id, err)
	}
	switch {
	case p == nil:
		return &exitError{code: exitNotFound, err: fmt.Errorf("provider %s is gone", id)}
	case p.State == pb.ProviderState_PROVIDER_STATE_FAILED:
		return &exitError{code: exitRefused, err: fmt.Errorf("provider %s failed: %s", id, p.LastError)}
	}
	return nil
}

func mustYAML(m proto.Message) string {
	out, err := protoYAML(m)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// diffLines is a line diff of a and b ("-" removed, "+" added, context
// lines indented); empty when equal.
func diffLines(a, b string) string {
	if a == b {
		return ""
	}
	x, y := strings.Split(strings.TrimRight(a, "\n"), "\n"), strings.Split(strings.TrimRight(b, "\n"), "\n")
	// longest common subsequence table
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var buf bytes.Buffer
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			buf.WriteString("    " + x[i] + "\n")
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			buf.WriteString("  - " + x[i] + "\n")
			i++
		default:
			buf.WriteString("  + " + y[j] + "\n")
			j++
		}
	}
	return buf.String()
}

func contextTimeout(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), d)
}
