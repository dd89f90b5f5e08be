package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var marshalOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false}

// printStructured writes m as JSON or YAML (proto field names); it reports
// whether the output format was structured.
func (a *app) printStructured(m proto.Message) (bool, error) {
	switch a.output {
	case "json":
		raw, err := marshalOpts.Marshal(m)
		if err != nil {
			return true, err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return true, err
		}
		buf.WriteByte('\n')
		_, err = a.stdout.Write(buf.Bytes())
		return true, err
	case "yaml":
		out, err := protoYAML(m)
		if err != nil {
			return true, err
		}
		_, err = a.stdout.Write(out)
		return true, err
	}
	return false, nil
}

func protoYAML(m proto.Message) ([]byte, error) {
	raw, err := marshalOpts.Marshal(m)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(raw)
}

// table writes aligned columns.
type table struct{ w *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cols ...string) { fmt.Fprintln(t.w, strings.Join(cols, "\t")) }
func (t *table) flush()             { _ = t.w.Flush() }

func fmtLabels(l map[string]string) string {
	if len(l) == 0 {
		return "{}"
	}
	parts := make([]string, 0, len(l))
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+strconv.Quote(l[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func fmtValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// displayZone is the time zone of printed times (tests: UTC).
var displayZone = time.Local

func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().In(displayZone).Format("2006-01-02 15:04:05.000")
}

func fmtAgo(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "never"
	}
	return time.Since(ts.AsTime()).Round(time.Second).String() + " ago"
}

// sparkline draws values with block characters, scaled between their min
// and max, in at most width cells (values are averaged per cell).
func sparkline(values []float64, width int) string {
	if len(values) == 0 {
		return ""
	}
	if width > 0 && len(values) > width {
		cells := make([]float64, width)
		for i := range cells {
			lo, hi := i*len(values)/width, (i+1)*len(values)/width
			sum := 0.0
			for _, v := range values[lo:hi] {
				sum += v
			}
			cells[i] = sum / float64(hi-lo)
		}
		values = cells
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if !math.IsNaN(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	var b strings.Builder
	for _, v := range values {
		switch {
		case math.IsNaN(v):
			b.WriteRune(' ')
		case hi == lo:
			b.WriteRune(bars[len(bars)/2])
		default:
			b.WriteRune(bars[int((v-lo)/(hi-lo)*float64(len(bars)-1)+0.5)])
		}
	}
	return b.String()
}

// rate renders data points per second for a person.
func fmtRate(r float64) string {
	switch {
	case r == 0:
		return "idle"
	case r < 1:
		return fmt.Sprintf("%.2f points/s (%.0f per minute)", r, r*60)
	case r < 1000:
		return fmt.Sprintf("%.1f points/s", r)
	case r < 1e6:
		return fmt.Sprintf("%.1fk points/s", r/1e3)
	}
	return fmt.Sprintf("%.2fM points/s", r/1e6)
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func healthWords(h pb.HealthStatus) string {
	switch h {
	case pb.HealthStatus_HEALTH_STATUS_HEALTHY:
		return "healthy"
	case pb.HealthStatus_HEALTH_STATUS_DEGRADED:
		return "degraded (working, with errors or reduced capacity)"
	case pb.HealthStatus_HEALTH_STATUS_UNHEALTHY:
		return "unhealthy (not working)"
	}
	return "unknown yet"
}

// shortEnum strips an enum's type prefix: PROVIDER_STATE_RUNNING → running.
func shortEnum(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}

func jsonToYAML(raw []byte) ([]byte, error) { return yaml.JSONToYAML(raw) }
