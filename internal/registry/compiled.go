package registry

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// compiled is a definition prepared for checks at ingest: map lookups and
// precompiled regexes, no allocation when a record passes.
type compiled struct {
	def      *pb.MetricDefinition
	version  uint64
	labels   map[string]*clabel
	required []*clabel
	defaults []*clabel
	min, max float64
	hasMin   bool
	hasMax   bool
	nonNeg   bool
	allowNaN bool
	index    bool
	schema   string // "schema vN", for messages
}

// clabel is one declared label.
type clabel struct {
	name        string
	allowed     map[string]struct{}
	allowedText string
	re          *regexp.Regexp
	maxCard     int64
	track       bool // keep the values seen (cardinality limit or index)
	seen        sync.Map
	count       atomic.Int64
}

func compile(def *pb.MetricDefinition, version uint64, index bool) (*compiled, error) {
	c := &compiled{def: def, version: version, labels: map[string]*clabel{}, index: index, schema: "schema v" + strconv.FormatUint(version, 10)}
	for _, l := range def.Labels {
		cl := &clabel{name: l.Name, maxCard: int64(l.MaxCardinality)}
		if len(l.AllowedValues) > 0 {
			cl.allowed = map[string]struct{}{}
			for _, v := range l.AllowedValues {
				cl.allowed[v] = struct{}{}
			}
			vals := append([]string(nil), l.AllowedValues...)
			sort.Strings(vals)
			cl.allowedText = strings.Join(vals, ", ")
		}
		if l.Pattern != "" {
			re, err := regexp.Compile("^(?:" + l.Pattern + ")$")
			if err != nil {
				return nil, fmt.Errorf("labels[%s].pattern: %w", l.Name, err)
			}
			cl.re = re
		}
		cl.track = cl.maxCard > 0 || index
		c.labels[l.Name] = cl
		if l.Required {
			c.required = append(c.required, cl)
		} else if l.DefaultValue != "" {
			c.defaults = append(c.defaults, cl)
		}
	}
	if k := def.Constraints; k != nil {
		if k.Min != nil {
			c.min, c.hasMin = *k.Min, true
		}
		if k.Max != nil {
			c.max, c.hasMax = *k.Max, true
		}
		c.nonNeg, c.allowNaN = k.NonNegative, k.AllowNan
	}
	return c, nil
}

func (c *compiled) defaultOf(name string) string {
	for _, l := range c.def.Labels {
		if l.Name == name {
			return l.DefaultValue
		}
	}
	return ""
}

func refuse(field, code, msg, fix string) *convert.Issue {
	return &convert.Issue{Field: field, Code: code, Message: msg, Suggestion: fix, Kind: convert.KindInvalid}
}

// check validates a record against the definition. Field paths are relative
// to the item, as convert expects.
func (c *compiled) check(m *pb.MetricData) *convert.Issue {
	schema := c.schema
	if m.Type != c.def.Type {
		return refuse(".type", "schema_type_mismatch",
			fmt.Sprintf("metric %q is registered as a %s (%s); a %s record is refused", m.Name, typeName(c.def.Type), schema, typeName(m.Type)),
			"record it as a "+typeName(c.def.Type)+", or register a new version with allow_breaking")
	}
	for _, l := range c.defaults {
		if _, ok := m.Labels[l.name]; !ok {
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels[l.name] = c.defaultOf(l.name)
		}
	}
	for _, l := range c.required {
		if _, ok := m.Labels[l.name]; !ok {
			return refuse(".labels", "schema_missing_label",
				fmt.Sprintf("metric %q requires label %q (%s)", m.Name, l.name, schema),
				fmt.Sprintf("add the label %q to the record", l.name))
		}
	}
	for k, v := range m.Labels {
		l := c.labels[k]
		if l == nil {
			if c.def.AllowUndeclaredLabels {
				continue
			}
			return refuse(".labels["+strconv.Quote(k)+"]", "schema_undeclared_label",
				fmt.Sprintf("label %q is not declared for metric %q (%s)", k, m.Name, schema),
				"drop the label, or declare it with RegisterMetric")
		}
		if l.allowed != nil {
			if _, ok := l.allowed[v]; !ok {
				return refuse(".labels["+strconv.Quote(k)+"]", "schema_value_not_allowed",
					fmt.Sprintf("label %q value %q is not one of %s (%s)", k, v, l.allowedText, schema),
					"send one of the allowed values, or add the value with RegisterMetric")
			}
		}
		if l.re != nil && !l.re.MatchString(v) {
			return refuse(".labels["+strconv.Quote(k)+"]", "schema_pattern_mismatch",
				fmt.Sprintf("label %q value %q does not match %q (%s)", k, v, l.re.String()[4:len(l.re.String())-2], schema),
				"send a value that matches the pattern")
		}
		if l.track {
			if _, ok := l.seen.Load(v); !ok {
				if l.maxCard > 0 && l.count.Load() >= l.maxCard {
					return refuse(".labels["+strconv.Quote(k)+"]", "schema_cardinality_limit",
						fmt.Sprintf("label %q of metric %q already has %d distinct values, its max_cardinality (%s)", k, m.Name, l.maxCard, schema),
						"reuse existing values, drop high-cardinality values (ids, timestamps), or raise max_cardinality")
				}
				// v may point into a request buffer (internal/grpccodec): keep a copy
				if _, loaded := l.seen.LoadOrStore(strings.Clone(v), struct{}{}); !loaded {
					l.count.Add(1)
				}
			}
		}
	}
	return c.checkValues(m, schema)
}

func (c *compiled) checkValues(m *pb.MetricData, schema string) *convert.Issue {
	if m.Histogram != nil || m.Summary != nil {
		return nil
	}
	if len(m.Observations) == 0 {
		return c.checkValue(m, m.Value, -1, schema)
	}
	for i, v := range m.Observations {
		if iss := c.checkValue(m, v, i, schema); iss != nil {
			return iss
		}
	}
	return nil
}

// checkValue checks one value; i is its observation index, or -1 for value.
func (c *compiled) checkValue(m *pb.MetricData, v float64, i int, schema string) *convert.Issue {
	field := func() string {
		if i < 0 {
			return ".value"
		}
		return ".observations[" + strconv.Itoa(i) + "]"
	}
	switch {
	case math.IsNaN(v):
		if !c.allowNaN {
			return refuse(field(), "schema_nan", fmt.Sprintf("metric %q does not allow NaN (%s)", m.Name, schema), "send a number, or register allow_nan")
		}
	case c.nonNeg && v < 0:
		return refuse(field(), "schema_negative", fmt.Sprintf("value %v of metric %q is negative; it is declared non_negative (%s)", v, m.Name, schema), "send a value >= 0")
	case c.hasMin && v < c.min:
		return refuse(field(), "schema_below_min", fmt.Sprintf("value %v of metric %q is below its minimum %v (%s)", v, m.Name, c.min, schema), fmt.Sprintf("send a value >= %v", c.min))
	case c.hasMax && v > c.max:
		return refuse(field(), "schema_above_max", fmt.Sprintf("value %v of metric %q is above its maximum %v (%s)", v, m.Name, c.max, schema), fmt.Sprintf("send a value <= %v", c.max))
	}
	return nil
}
