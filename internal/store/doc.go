// Package store is the embedded time-series store: a Prometheus TSDB (WAL,
// head, blocks, retention) that receives every batch the pipeline accepted,
// translated with Prometheus' own OTLP translator, in the same all-or-nothing
// step as the hand-off to the pipeline.
//
// A batch is kept whole or not at all: Stage refuses it with a
// *RefusedError (Reason, Metric, Field, Message, Fix, Count) when any of its
// samples would not be kept as sent, before anything is visible:
//
//   - a timestamp outside Window (before the out-of-order window behind the
//     newest sample, or the retention; more than store.max_future ahead);
//   - a second value at a timestamp the series already has (stored, or
//     earlier in the batch), or, without out-of-order ingestion, a sample
//     older than its series' last one;
//   - two OTel metrics that become one Prometheus name ("coll.ide" and
//     "coll_ide"; counter "collx" and gauge "collx_total"; a histogram "req"
//     and a gauge "req_count"; "target_info"): the first metric to store a
//     name claims it;
//   - two attribute keys that become one label ("a.b" and "a_b"), or an
//     attribute that becomes a label the store sets itself (job, instance
//     from the resource; le, quantile; __name__);
//   - invalid UTF-8 in a name, unit, description, attribute key or value.
//
// Type, unit and help of each metric family and the name claims are written
// to an append-only journal with each commit that changes them (one JSON
// line per change) and folded into metadata.json on Open and Close, so they
// survive a crash.
package store
