package registry

import (
	"fmt"
	"slices"
	"strings"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Compare lists the changes from old to next and whether each can break
// producers or readers. Adding an optional label, widening allowed values,
// relaxing constraints and editing descriptive fields are compatible;
// changing the type, unit or buckets, adding a required label, removing a
// declared label, narrowing values or tightening constraints are not.
func Compare(old, next *pb.MetricDefinition) []*pb.SchemaChange {
	var out []*pb.SchemaChange
	add := func(field string, breaking bool, format string, args ...any) {
		out = append(out, &pb.SchemaChange{Field: field, Description: fmt.Sprintf(format, args...), Breaking: breaking})
	}
	if old.Type != next.Type {
		add("type", true, "type changed from %s to %s", typeName(old.Type), typeName(next.Type))
	}
	if old.Unit != next.Unit {
		add("unit", true, "unit changed from %q to %q", old.Unit, next.Unit)
	}
	if !slices.Equal(old.HistogramBuckets, next.HistogramBuckets) {
		add("histogram_buckets", true, "histogram buckets changed")
	}
	if old.Description != next.Description {
		add("description", false, "description changed")
	}
	if old.Owner != next.Owner {
		add("owner", false, "owner changed from %q to %q", old.Owner, next.Owner)
	}
	if fmt.Sprint(old.Tags) != fmt.Sprint(next.Tags) {
		add("tags", false, "tags changed")
	}
	if old.AllowUndeclaredLabels && !next.AllowUndeclaredLabels {
		add("allow_undeclared_labels", true, "undeclared labels are now refused")
	} else if !old.AllowUndeclaredLabels && next.AllowUndeclaredLabels {
		add("allow_undeclared_labels", false, "undeclared labels are now accepted")
	}
	if next.MaxSeries != old.MaxSeries {
		tighter := next.MaxSeries != 0 && (old.MaxSeries == 0 || next.MaxSeries < old.MaxSeries)
		add("max_series", tighter, "max_series changed from %d to %d", old.MaxSeries, next.MaxSeries)
	}
	out = append(out, compareLabels(old, next)...)
	out = append(out, compareConstraints(old.Constraints, next.Constraints)...)
	return out
}

// Breaking reports whether any change breaks compatibility.
func Breaking(changes []*pb.SchemaChange) bool {
	for _, c := range changes {
		if c.Breaking {
			return true
		}
	}
	return false
}

func labelMap(d *pb.MetricDefinition) map[string]*pb.LabelDefinition {
	m := make(map[string]*pb.LabelDefinition, len(d.Labels))
	for _, l := range d.Labels {
		m[l.Name] = l
	}
	return m
}

func compareLabels(old, next *pb.MetricDefinition) []*pb.SchemaChange {
	var out []*pb.SchemaChange
	add := func(field string, breaking bool, format string, args ...any) {
		out = append(out, &pb.SchemaChange{Field: field, Description: fmt.Sprintf(format, args...), Breaking: breaking})
	}
	om, nm := labelMap(old), labelMap(next)
	names := make([]string, 0, len(om)+len(nm))
	for n := range om {
		names = append(names, n)
	}
	for n := range nm {
		if _, ok := om[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		o, nl := om[n], nm[n]
		field := "labels[" + n + "]"
		switch {
		case o == nil && nl.Required:
			add(field, true, "required label %q added: existing producers do not send it", n)
		case o == nil:
			add(field, false, "optional label %q added", n)
		case nl == nil:
			add(field, !next.AllowUndeclaredLabels, "label %q removed", n)
		default:
			if !o.Required && nl.Required {
				add(field+".required", true, "label %q became required", n)
			} else if o.Required && !nl.Required {
				add(field+".required", false, "label %q became optional", n)
			}
			if narrowed, widened := compareValues(o.AllowedValues, nl.AllowedValues); narrowed {
				add(field+".allowed_values", true, "allowed values of %q narrowed", n)
			} else if widened {
				add(field+".allowed_values", false, "allowed values of %q widened", n)
			}
			if o.Pattern != nl.Pattern {
				add(field+".pattern", nl.Pattern != "", "pattern of %q changed from %q to %q", n, o.Pattern, nl.Pattern)
			}
			if o.MaxCardinality != nl.MaxCardinality {
				tighter := nl.MaxCardinality != 0 && (o.MaxCardinality == 0 || nl.MaxCardinality < o.MaxCardinality)
				add(field+".max_cardinality", tighter, "max_cardinality of %q changed from %d to %d", n, o.MaxCardinality, nl.MaxCardinality)
			}
			if o.DefaultValue != nl.DefaultValue {
				add(field+".default_value", false, "default of %q changed", n)
			}
			if o.Description != nl.Description {
				add(field+".description", false, "description of %q changed", n)
			}
		}
	}
	return out
}

// compareValues reports whether an allowed-values list narrowed (some value
// accepted before is refused now) or widened.
func compareValues(old, next []string) (narrowed, widened bool) {
	switch {
	case len(old) == 0 && len(next) == 0:
		return false, false
	case len(old) == 0:
		return true, false
	case len(next) == 0:
		return false, true
	}
	for _, v := range old {
		if !slices.Contains(next, v) {
			narrowed = true
		}
	}
	for _, v := range next {
		if !slices.Contains(old, v) {
			widened = true
		}
	}
	return narrowed, widened
}

func compareConstraints(old, next *pb.ValueConstraints) []*pb.SchemaChange {
	if old == nil {
		old = &pb.ValueConstraints{}
	}
	if next == nil {
		next = &pb.ValueConstraints{}
	}
	var out []*pb.SchemaChange
	add := func(field string, breaking bool, format string, args ...any) {
		out = append(out, &pb.SchemaChange{Field: "constraints." + field, Description: fmt.Sprintf(format, args...), Breaking: breaking})
	}
	switch {
	case old.Min == nil && next.Min != nil:
		add("min", true, "minimum %v added", *next.Min)
	case old.Min != nil && next.Min == nil:
		add("min", false, "minimum removed")
	case old.Min != nil && *old.Min != *next.Min:
		add("min", *next.Min > *old.Min, "minimum changed from %v to %v", *old.Min, *next.Min)
	}
	switch {
	case old.Max == nil && next.Max != nil:
		add("max", true, "maximum %v added", *next.Max)
	case old.Max != nil && next.Max == nil:
		add("max", false, "maximum removed")
	case old.Max != nil && *old.Max != *next.Max:
		add("max", *next.Max < *old.Max, "maximum changed from %v to %v", *old.Max, *next.Max)
	}
	if old.NonNegative != next.NonNegative {
		add("non_negative", next.NonNegative, "non_negative changed to %v", next.NonNegative)
	}
	if old.AllowNan != next.AllowNan {
		add("allow_nan", !next.AllowNan, "allow_nan changed to %v", next.AllowNan)
	}
	return out
}

func typeName(t pb.MetricType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "METRIC_TYPE_"))
}
