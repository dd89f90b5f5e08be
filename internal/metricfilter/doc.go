// Package metricfilter compiles the API's MetricFilter into one matcher that
// every user (stream subscriptions, provider routing, GetMetrics and
// GetMetricsSummary) applies with the same semantics.
//
// # Semantics
//
// All set parts must match (AND); the entries of one repeated part are
// alternatives (OR). A nil or empty filter matches every metric.
//
//   - names: each entry is an exact name or a glob. Glob syntax: "*" is any
//     run of characters (also none, a newline too), "?" is one character, "[abc]", "[a-z]"
//     is a class, "[!a]" or "[^a]" its negation (a "]" right after "[", "[!"
//     or "[^" is a literal, a "\" inside a class is a literal backslash),
//     and "\x" outside a class is the literal character x. A glob matches
//     the whole name. An unterminated "[", a trailing "\", an invalid class
//     and an empty entry are refused.
//   - name_regex: an RE2 regex the whole name must match (anchored as in
//     PromQL, and like PromQL "." matches a newline too). When both names and
//     name_regex are set, a name must match both.
//   - exclude_names: names or globs (same syntax) left out even when names
//     and name_regex matched.
//   - label_matchers: every matcher must match; operators as in PromQL (=,
//     !=, =~, !~; unset is =), regexes RE2 and fully anchored; a missing
//     label has the empty value.
//   - types: the metric type must be one of them. Timer rule: a histogram
//     (explicit or exponential) whose unit is "s" is a timer; it matches a
//     TIMER filter and a HISTOGRAM filter, other histograms match HISTOGRAM
//     only. A monotonic sum is a COUNTER, a non-monotonic sum a GAUGE.
//
// Names are matched against the metric's name as each method shows it: the
// pipeline name for streams and providers, the stored (Prometheus) series
// name for reads, so a classic histogram "x" is read as the series x_bucket,
// x_sum and x_count, which a filter on names must match (e.g. "x_*" or
// "x*"). Providers also look a label matcher's label up in the resource
// attributes when the data point does not have it.
//
// # Bounds
//
// A filter runs on every exported batch (providers), every ingested batch
// (subscriptions) or every selected series (reads), so its size is bounded
// for every caller alike: at most MaxEntries (1,000) entries in each of
// names, exclude_names, label_matchers and types; at most MaxTextBytes
// (4 KiB) in each name, glob, name_regex, label name and label value; and
// at most MaxProgramSize (65,536) regex instructions for the globs,
// name_regex and regex label matchers together, estimated from the parse
// tree before anything is compiled, a character class counting its ranges
// too (exact names are a set, not a regex).
// A refusal is an *Error with code too_many, too_long or too_large (Bound
// reports it) naming the field, the size, the limit and the fix, never the
// oversized value itself.
//
// Compile refuses a bad filter with an *Error naming the field
// ("filter.names[2]") and the fix. Matchers turns a filter into Prometheus
// label matchers so that reads select in the store the set MatchName and
// MatchLabels select in process.
package metricfilter
