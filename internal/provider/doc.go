// Package provider is the engine behind the metrics_management extension and
// the providers exporter: a registry of providers, each an exporter built at
// runtime from a ProviderConfig (through the host's exporter factories) and
// wrapped with a metric filter, limits, a queue, stats and health; versions,
// backups and persistence; and the lock-free routing table that the providers
// exporter hands every batch to.
//
// A provider's queue is in memory unless the spool is on (EnableSpool, from
// the providers exporter's spool block): then every accepted batch is
// appended to the provider's segment files before the pipeline's answer and
// acknowledged there when its export is done, so that it is sent again after
// a crash (spool.go, spool_record.go, spool_engine.go; at-least-once).
//
// Providers are created by API callers: every config is checked against the
// operator's DestinationPolicy (link-local and cloud metadata destinations,
// binding every interface, export loops into the collector, files outside
// allowed directories) before anything is built, and the secrets named by
// one schema (secretFields) never leave the engine in a response, an error
// or a log line.
//
// It imports no component implementation: exporters are found through
// hostcapabilities.ComponentFactory, as contrib receivercreator finds receivers.
package provider // import "github.com/metricsmodule/metricsmodule/internal/provider"
