// Package convert turns MetricsService records into pdata. It validates
// records, keys them into series, and accumulates per-series state: counter
// increments into cumulative sums with start times, observations into
// histograms or summaries. State changes are applied in a transaction that is
// committed only when the downstream consumer accepted the data. Every
// distinct timestamp (millisecond) of a series in a request gives one data
// point; Accumulator.Apply documents the timestamp rules. A bounded series
// cache (Config.SeriesCacheSize) lets records whose labels arrive as raw
// bytes (Accumulator.PrepareWire) skip the series-level work for series seen
// before.
package convert
