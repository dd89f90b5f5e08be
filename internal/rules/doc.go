// Package rules evaluates Prometheus recording and alerting rule files over
// the embedded store with Prometheus' own rules manager, stores recording
// rule output through the data path (so it is queryable and streamed like
// ingested data), sends alerts to Alertmanagers with Prometheus' notifier,
// and reloads the files when they change, keeping the last good rules when
// a changed file is bad.
package rules
