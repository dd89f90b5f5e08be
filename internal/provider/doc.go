// Package provider is the engine behind the metrics_management extension and
// the providers exporter: a registry of providers, each an exporter built at
// runtime from a ProviderConfig (through the host's exporter factories) and
// wrapped with a metric filter, limits, a queue, stats and health; versions,
// backups and persistence; and the lock-free routing table that the providers
// exporter hands every batch to.
//
// It imports no component implementation: exporters are found through
// hostcapabilities.ComponentFactory, as contrib receivercreator finds receivers.
package provider // import "github.com/metricsmodule/metricsmodule/internal/provider"
