// Package convert turns MetricsService records into pdata. It validates
// records, keys them into series, and accumulates per-series state: counter
// increments into cumulative sums with start times, observations into
// histograms or summaries. State changes are applied in a transaction that is
// committed only when the downstream consumer accepted the data. Every
// distinct timestamp (millisecond) of a series in a request gives one data
// point; Accumulator.Apply documents the timestamp rules.
package convert
