//go:generate go tool mdatagen metadata.yaml

// Package metricsmanagementextension serves the metricsmodule
// MetricsManagementService on its own gRPC server: operators create, update,
// delete, list and inspect providers, export destinations built as exporters
// at runtime. The providers exporter at the end of a metrics pipeline hands
// every batch to the running providers.
package metricsmanagementextension // import "github.com/metricsmodule/metricsmodule/extension/metricsmanagementextension"
