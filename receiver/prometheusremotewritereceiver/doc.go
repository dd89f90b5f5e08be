//go:generate go tool mdatagen metadata.yaml

// Package prometheusremotewritereceiver receives Prometheus remote write
// (protocol 1.0 prometheus.WriteRequest and 2.0 io.prometheus.write.v2.Request)
// over HTTP and hands every request, as pdata, to the next consumer of a
// metrics pipeline, answering the sender only after the pipeline accepted or
// refused it, with the status codes Prometheus senders retry on.
package prometheusremotewritereceiver // import "github.com/metricsmodule/metricsmodule/receiver/prometheusremotewritereceiver"
