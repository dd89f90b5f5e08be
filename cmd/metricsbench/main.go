// Command metricsbench measures the ingest cost of the metrics_service
// receiver against the stock OTLP receiver.
//
// "metricsbench run" starts, for every round, shape and side, a fresh server
// subprocess ("metricsbench server"): one receiver, either ours
// (metrics_service, RecordBatchMetrics) or the collector's otlpreceiver (gRPC
// only), feeding a consumer that only counts datapoints. It then sends the
// same datapoints to it from concurrent gRPC clients, as RecordBatchMetrics or
// as OTLP ExportMetricsServiceRequest, and reads the server's CPU time
// (/proc/PID/stat) and peak RSS (/proc/PID/status VmHWM). The sides alternate
// within a run and the report compares them: datapoints per second,
// server CPU-seconds per million datapoints, datapoints per server
// CPU-second, and the ratio ours/otlp.
//
// On a small machine the server and the generator are pinned to different
// cores with taskset (-pin, the default), so the generator does not take CPU
// from the server; the server then runs with GOMAXPROCS=1. Requests are
// encoded once before the load and sent as raw bytes, which keeps the
// generator's cost per request low and equal for both sides.
//
// Usage:
//
//	go run ./cmd/metricsbench run [-shapes testbed,1000x4] [-concurrency 8] [-duration 10s] [-rounds 3]
//	go run ./cmd/metricsbench server -side ours|otlp [-addr 127.0.0.1:PORT]
//	go run ./cmd/metricsbench hostile [-rate 50000] [-query-clients 4] [-duration 5s] [-rounds 3]
//	go run ./cmd/metricsbench summary [-series 200000] [-names 1000] [-runs 5]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "server":
		err = serverMain(os.Args[2:])
	case "reads":
		err = readsMain(os.Args[2:])
	case "stream":
		err = streamMain(os.Args[2:])
	case "hostile":
		err = hostileMain(os.Args[2:])
	case "summary":
		err = summaryMain(os.Args[2:])
	case "pages":
		err = pagesMain(os.Args[2:])
	case "help", "-h", "-help", "--help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "metricsbench: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(int(ee))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "metricsbench:", err)
		os.Exit(1)
	}
}

// exitError carries the exit code of a re-executed child.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  metricsbench run [flags]      run the comparison (see: metricsbench run -h)
  metricsbench server [flags]   serve one receiver with a counting sink (see: metricsbench server -h)
  metricsbench reads [flags]    store ingest, memory and range queries vs Prometheus (see: metricsbench reads -h)
  metricsbench stream [flags]   StreamMetrics latency and slow-subscriber isolation (see: metricsbench stream -h)
  metricsbench hostile [flags]  ingest under hostile and heavy queries (see: metricsbench hostile -h)
  metricsbench summary [flags]  GetMetricsSummary time over a store of 200,000 series (see: metricsbench summary -h)
  metricsbench pages [flags]    GetMetrics paging at 200,000 series (see: metricsbench pages -h)
`)
}
