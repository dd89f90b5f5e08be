package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// importState is the resume file of an import: which batches of which file
// the server acknowledged.
type importState struct {
	File      string `json:"file"`
	SHA256    string `json:"sha256"`
	BatchSize int    `json:"batch_size"`
	Batches   int    `json:"batches"`
	Items     int    `json:"items"`
	// Acked is the number of leading batches acknowledged: the import goes
	// on with batch Acked.
	Acked      int            `json:"acked"`
	Accepted   int            `json:"accepted"`
	Refused    int            `json:"refused"`
	Duplicates int            `json:"duplicate_batches"`
	Reasons    map[string]int `json:"refusal_reasons,omitempty"`
	Done       bool           `json:"done"`
}

func (s *importState) save(path string) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func loadState(path string) (*importState, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s importState
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("state file %s: %w (fix: delete it and use --restart)", path, err)
	}
	return &s, nil
}

// progress writes a progress line with rate and ETA: redrawn in place on a
// terminal, one line per interval otherwise.
type progress struct {
	w        io.Writer
	tty      bool
	total    int
	start    time.Time
	startN   int
	last     time.Time
	interval time.Duration
}

func newProgress(w io.Writer, total, done int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	p := &progress{w: w, tty: tty, total: total, start: time.Now(), startN: done, interval: time.Second}
	if tty {
		p.interval = 100 * time.Millisecond
	}
	return p
}

func (p *progress) update(done int, final bool) {
	now := time.Now()
	if !final && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done-p.startN) / elapsed
	}
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(done) / float64(p.total)
	}
	width := 30
	filled := int(pct / 100 * float64(width))
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	line := fmt.Sprintf("import [%s] %d/%d points (%.0f%%) %.0f points/s ETA %s", bar, done, p.total, pct, rate, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintln(p.w, line)
}

func (a *app) importCommand() *cobra.Command {
	var (
		format, statePath, mode string
		batchSize               int
		resume, restart         bool
		rate                    float64
		resource                []string
	)
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a Prometheus/OpenMetrics text or OTLP JSON file, resumably",
		Long: `Import a file of metrics through RecordBatchMetrics, in batches.

Formats: Prometheus text exposition, OpenMetrics text (# EOF), OTLP JSON (as
the collector's file exporter and OTLP/HTTP JSON write it); detected from the
name and content, or --format. Exposition counters are running totals.

Each batch has a deterministic idempotency key: a hash of the file's content,
the batch size and the batch's index. A state file (FILE.metricsctl-import,
or --state) records the batches the server acknowledged; after an
interruption (Ctrl-C, a crash, a lost connection) --resume goes on after the
last acknowledged batch, and the batch that was in flight is sent again with
the same key, which the server recognises (within its dedup window, 10m by
default): nothing is recorded twice.

Progress (points, rate, ETA) goes to stderr; the summary to stdout. Exit code
6 when some points were refused (the summary lists the reasons).`,
		Example: `  metricsctl import node_exporter.prom
  metricsctl import dump.json --batch-size 5000
  metricsctl import big.prom --resume          # after an interruption`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			raw, err := os.ReadFile(path)
			if err != nil {
				return usageErrorf("%w", err)
			}
			if batchSize <= 0 || batchSize > 10000 {
				return usageErrorf("--batch-size %d: must be 1..10000 (the server's limits.max_batch_size)", batchSize)
			}
			bm := pb.BatchMode_BATCH_MODE_BEST_EFFORT
			switch mode {
			case "best-effort":
			case "atomic":
				bm = pb.BatchMode_BATCH_MODE_ATOMIC
			default:
				return usageErrorf("--mode %q: must be best-effort or atomic", mode)
			}
			if format == "" {
				format = detectFormat(path, raw[:min(len(raw), 4096)])
			}
			var items []*pb.MetricData
			switch format {
			case "prometheus", "openmetrics":
				items, err = parseExposition(raw, format == "openmetrics", true, guessType)
			case "otlp-json":
				items, err = parseOTLPJSON(raw)
			default:
				return usageErrorf("--format %q: must be prometheus, openmetrics or otlp-json", format)
			}
			if err != nil {
				return usageErrorf("%s (%s): %w", path, format, err)
			}
			if len(items) == 0 {
				return usageErrorf("%s: no metrics found", path)
			}
			sum := sha256.Sum256(raw)
			hash := hex.EncodeToString(sum[:])
			if statePath == "" {
				statePath = path + ".metricsctl-import"
			}
			st := &importState{File: filepath.Base(path), SHA256: hash, BatchSize: batchSize, Items: len(items),
				Batches: (len(items) + batchSize - 1) / batchSize, Reasons: map[string]int{}}
			prev, err := loadState(statePath)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if resume {
					fmt.Fprintf(a.stderr, "no state file %s: starting from the beginning\n", statePath)
				}
			case err != nil:
				return usageErrorf("%w", err)
			case restart:
			case prev.SHA256 != hash || prev.BatchSize != batchSize:
				if resume {
					return usageErrorf("state file %s is of another file or batch size (fix: --restart, or the --batch-size %d it used)", statePath, prev.BatchSize)
				}
				return usageErrorf("state file %s of an earlier import exists (fix: --resume to go on, --restart to import again)", statePath)
			case prev.Done && !resume:
				return usageErrorf("%s was already imported completely (state file %s; fix: --restart to import it again)", path, statePath)
			case !resume:
				return usageErrorf("an interrupted import of %s exists: %d of %d batches acknowledged (fix: --resume to go on, --restart to start over)", path, prev.Acked, prev.Batches)
			default:
				st = prev
				if st.Reasons == nil {
					st.Reasons = map[string]int{}
				}
				fmt.Fprintf(a.stderr, "resuming %s after batch %d of %d\n", path, st.Acked, st.Batches)
			}
			res, err := parsePairs("resource", resource)
			if err != nil {
				return err
			}
			var opts []metricsclient.Option
			if res != nil {
				opts = append(opts, metricsclient.WithResource(res))
			}
			cl, err := a.client(cmd.Context(), opts...)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			prog := newProgress(a.stderr, len(items), min(st.Acked*batchSize, len(items)))
			start := time.Now()
			sentPoints := 0
			for i := st.Acked; i < st.Batches; i++ {
				if ctx.Err() != nil {
					break
				}
				if rate > 0 {
					// pace: the points sent so far may not run ahead of rate
					if wait := time.Until(start.Add(time.Duration(float64(sentPoints) / rate * float64(time.Second)))); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-ctx.Done():
						case <-t.C:
						}
						t.Stop()
						if ctx.Err() != nil {
							break
						}
					}
				}
				batch := items[i*batchSize : min((i+1)*batchSize, len(items))]
				id := fmt.Sprintf("import-%s-b%d-%d", hash[:16], batchSize, i)
				resp, err := cl.RecordBatch(ctx, id, batch, bm)
				var refused *metricsclient.RefusedError
				switch {
				case errors.As(err, &refused):
					for _, r := range refused.Results {
						if !r.Accepted {
							st.Reasons[reason(r)]++
						}
					}
				case err != nil:
					prog.update(st.Acked*batchSize, true)
					_ = st.save(statePath)
					var gu *metricsclient.GiveUpError
					if errors.As(err, &gu) {
						err = gu.Err
					}
					if ctx.Err() != nil {
						fmt.Fprintf(a.stderr, "interrupted: %d of %d batches acknowledged; go on with: metricsctl import %s --resume\n", st.Acked, st.Batches, path)
						return &exitError{code: exitInterrupted, err: errPrinted}
					}
					fmt.Fprintf(a.stderr, "batch %d (request id %s) failed; %d of %d batches acknowledged; after fixing, go on with --resume\n", i, id, st.Acked, st.Batches)
					return err
				}
				st.Acked = i + 1
				st.Accepted += int(resp.AcceptedCount)
				st.Refused += int(resp.RejectedCount)
				if resp.Duplicate {
					st.Duplicates++
				}
				sentPoints += len(batch)
				if err := st.save(statePath); err != nil {
					return usageErrorf("state file: %w", err)
				}
				prog.update(min(st.Acked*batchSize, len(items)), false)
			}
			prog.update(min(st.Acked*batchSize, len(items)), true)
			if st.Acked < st.Batches {
				fmt.Fprintf(a.stderr, "interrupted: %d of %d batches acknowledged; go on with: metricsctl import %s --resume\n", st.Acked, st.Batches, path)
				return &exitError{code: exitInterrupted, err: errPrinted}
			}
			st.Done = true
			if err := st.save(statePath); err != nil {
				return usageErrorf("state file: %w", err)
			}
			return a.printImportSummary(st, time.Since(start))
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "prometheus, openmetrics or otlp-json (default: detected)")
	f.IntVar(&batchSize, "batch-size", 1000, "points per RecordBatchMetrics (1..10000)")
	f.BoolVar(&resume, "resume", false, "go on after the last batch the state file says was acknowledged")
	f.BoolVar(&restart, "restart", false, "ignore the state file and import from the beginning")
	f.StringVar(&statePath, "state", "", "state file (default FILE.metricsctl-import)")
	f.StringVar(&mode, "mode", "best-effort", "best-effort (refused points are reported, the rest recorded) or atomic (a bad point stops the import)")
	f.Float64Var(&rate, "rate", 0, "most points per second (0: as fast as the server takes them)")
	f.StringArrayVarP(&resource, "resource", "r", nil, "resource attribute name=value for points without one (repeatable)")
	return cmd
}

// reason is the refusal reason of a result, without the item index.
func reason(r *pb.MetricResult) string {
	for _, iss := range r.Issues {
		msg := iss.Code + ": " + iss.Message
		if iss.Suggestion != "" {
			msg += " (fix: " + iss.Suggestion + ")"
		}
		return msg
	}
	msg := r.Message
	if i := strings.Index(msg, "]"); strings.HasPrefix(msg, "metrics[") && i > 0 {
		msg = strings.TrimPrefix(msg[i+1:], ".")
	}
	return msg
}

func (a *app) printImportSummary(st *importState, took time.Duration) error {
	if ok, err := a.printStructuredJSON(st); ok {
		if err == nil && st.Refused > 0 {
			return &exitError{code: exitPartial, err: errPrinted}
		}
		return err
	}
	t := newTable(a.stdout)
	t.row("file", st.File)
	t.row("points", fmt.Sprint(st.Items))
	t.row("batches", fmt.Sprintf("%d of %d points each (%d already applied: retried or resumed)", st.Batches, st.BatchSize, st.Duplicates))
	t.row("accepted", fmt.Sprint(st.Accepted))
	t.row("refused", fmt.Sprint(st.Refused))
	t.row("time", took.Round(time.Millisecond).String())
	t.flush()
	if len(st.Reasons) > 0 {
		fmt.Fprintln(a.stdout, "\nrefused, by reason:")
		type kv struct {
			k string
			n int
		}
		var rs []kv
		for k, n := range st.Reasons {
			rs = append(rs, kv{k, n})
		}
		slices.SortFunc(rs, func(x, y kv) int {
			if x.n != y.n {
				return y.n - x.n
			}
			return strings.Compare(x.k, y.k)
		})
		for _, r := range rs {
			fmt.Fprintf(a.stdout, "  %6d  %s\n", r.n, r.k)
		}
		return &exitError{code: exitPartial, err: errPrinted}
	}
	return nil
}

// printStructuredJSON writes a plain Go value as JSON or YAML.
func (a *app) printStructuredJSON(v any) (bool, error) {
	switch a.output {
	case "json", "yaml":
		raw, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return true, err
		}
		if a.output == "yaml" {
			raw, err = jsonToYAML(raw)
			if err != nil {
				return true, err
			}
		} else {
			raw = append(raw, '\n')
		}
		_, err = a.stdout.Write(raw)
		return true, err
	}
	return false, nil
}
