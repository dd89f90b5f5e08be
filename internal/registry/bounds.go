package registry

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/metricsmodule/metricsmodule/internal/convert"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Fixed bounds of a definition's text, for fields no record limit covers.
// Every List, Get and GetMetricMetadata returns a definition with its
// history, so one caller must not be able to store unbounded text.
const (
	// maxAllowedValues is the most allowed_values of one label; a longer
	// list is better a pattern.
	maxAllowedValues = 1000
	// maxTags, maxTagKeyBytes and maxTagValueBytes bound a definition's tags.
	maxTags          = 64
	maxTagKeyBytes   = 128
	maxTagValueBytes = 1024
	// maxOwnerBytes is the longest owner.
	maxOwnerBytes = 256
	// maxPatternBytes is the longest label pattern.
	maxPatternBytes = 4096
	// maxBoundIssues is the most bound issues reported for one definition.
	maxBoundIssues = 100
)

// SetLimits sets the record limits a definition is bounded by (the
// receiver's limits block): its number of labels by max_labels, allowed and
// default values by max_label_value_bytes, label names by
// max_label_name_bytes, the metric name by max_name_bytes, the unit by
// max_unit_bytes, descriptions by max_description_bytes (0 = unlimited
// where it is for records). A definition with more labels, or a value
// longer, than a record may carry could never be recorded in full anyway.
// Until it is called, the defaults of convert.DefaultConfig apply.
func (r *Registry) SetLimits(lim convert.Limits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lim = lim
}

// limits returns the limits in force.
func (r *Registry) limits() convert.Limits {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lim
}

// boundIssue is a definition field over its bound. key is the receiver
// config key of the limit ("" for a fixed bound); fix is what the caller
// of RegisterMetric does.
type boundIssue struct {
	field, code, msg, key, fix string
}

// suggestion is the fix of a RegisterMetric request.
func (b boundIssue) suggestion() string {
	if b.key == "" {
		return b.fix
	}
	return b.fix + ", or raise limits." + b.key
}

// quoteKey quotes a map key for a field path, at most its first 64 bytes.
func quoteKey(k string) string { return strconv.Quote(k[:min(len(k), 64)]) }

// checkBounds lists the fields of d over their bounds (sizes of text, the
// number of labels, allowed values and tags), with paths relative to the
// definition ("labels[0].allowed_values[3]"). Over limits.max_labels, the
// labels themselves are not checked.
func checkBounds(d *pb.MetricDefinition, lim convert.Limits) []boundIssue {
	var out []boundIssue
	// over adds an issue when n > limit (limit 0 = unlimited).
	over := func(field, code, what string, n, limit int, key, fix string) {
		if limit > 0 && n > limit && len(out) < maxBoundIssues {
			msg := fmt.Sprintf("%s is %d bytes, the limit is %d", what, n, limit)
			if key != "" {
				msg += " (limits." + key + ")"
			}
			out = append(out, boundIssue{field: field, code: code, msg: msg, key: key, fix: fix})
		}
	}
	over("name", "name_too_long", "metric name", len(d.GetName()), lim.MaxNameBytes, "max_name_bytes", "shorten the name")
	over("unit", "unit_too_long", "unit", len(d.GetUnit()), lim.MaxUnitBytes, "max_unit_bytes", "use a UCUM unit such as \"s\" or \"By\"")
	over("description", "description_too_long", "description", len(d.GetDescription()), lim.MaxDescriptionBytes, "max_description_bytes", "shorten the description (link to a longer text instead)")
	over("owner", "owner_too_long", "owner", len(d.GetOwner()), maxOwnerBytes, "", "name the owning team or person briefly")
	labels := d.GetLabels()
	if tooManyLabels(d, lim) {
		// the labels themselves are not checked: the caller drops some first
		labels = nil
		out = append(out, boundIssue{field: "labels", code: "too_many_labels",
			msg: fmt.Sprintf("the definition declares %d labels, the limit is %d (limits.max_labels): a record carries at most that many",
				len(d.GetLabels()), lim.MaxLabels),
			key: "max_labels", fix: "drop labels that do not identify the series"})
	}
	for i, l := range labels {
		f := fmt.Sprintf("labels[%d]", i)
		over(f+".name", "label_name_too_long", "label name", len(l.GetName()), lim.MaxLabelNameBytes, "max_label_name_bytes", "shorten the label name")
		over(f+".description", "description_too_long", "label description", len(l.GetDescription()), lim.MaxDescriptionBytes, "max_description_bytes", "shorten the description")
		over(f+".pattern", "pattern_too_long", "pattern", len(l.GetPattern()), maxPatternBytes, "", "shorten the pattern")
		over(f+".default_value", "label_value_too_long", "default value", len(l.GetDefaultValue()), lim.MaxLabelValueBytes, "max_label_value_bytes", "shorten the value")
		if n := len(l.GetAllowedValues()); n > maxAllowedValues {
			out = append(out, boundIssue{field: f + ".allowed_values", code: "too_many_allowed_values",
				msg: fmt.Sprintf("label %s has %d allowed values, the limit is %d", quoteKey(l.GetName()), n, maxAllowedValues),
				fix: "describe the values with a pattern instead of listing them"})
			continue
		}
		for j, v := range l.GetAllowedValues() {
			over(fmt.Sprintf("%s.allowed_values[%d]", f, j), "label_value_too_long", "allowed value", len(v), lim.MaxLabelValueBytes, "max_label_value_bytes", "shorten the value")
		}
	}
	tags := d.GetTags()
	if len(tags) > maxTags {
		return append(out, boundIssue{field: "tags", code: "too_many_tags",
			msg: fmt.Sprintf("%d tags, the limit is %d", len(tags), maxTags), fix: "drop some tags"})
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := "tags[" + quoteKey(k) + "]"
		over(f, "tag_key_too_long", "tag key", len(k), maxTagKeyBytes, "", "shorten the key")
		over(f, "tag_value_too_long", "tag value", len(tags[k]), maxTagValueBytes, "", "shorten the value")
	}
	return out
}

// tooManyLabels reports whether d declares more labels than a record may
// carry (limits.max_labels; 0 = unlimited, as for records).
func tooManyLabels(d *pb.MetricDefinition, lim convert.Limits) bool {
	return lim.MaxLabels > 0 && len(d.GetLabels()) > lim.MaxLabels
}

// CheckEntry checks that every version of e (a backup's entry) is within
// the bounds in force, before anything of the backup is applied: nil, or an
// *InvalidError whose fields are paths in the entry
// ("versions[1].definition.labels[0].allowed_values[3]").
func (r *Registry) CheckEntry(e *Entry) error {
	lim := r.limits()
	var issues []*pb.ValidationIssue
	for i, v := range e.Versions {
		for _, b := range checkBounds(v.Definition, lim) {
			fix := "the backup cannot be restored within this limit; register the metric again within it"
			if b.key != "" {
				fix = "raise limits." + b.key + " to restore this backup"
			}
			issues = append(issues, &pb.ValidationIssue{
				Field: fmt.Sprintf("versions[%d].definition.%s", i, b.field), Code: b.code,
				Message: fmt.Sprintf("backup version %d: %s", v.Version, b.msg), Suggestion: fix,
				Severity: pb.Severity_SEVERITY_ERROR,
			})
		}
	}
	if len(issues) > 0 {
		return &InvalidError{Issues: issues}
	}
	return nil
}
