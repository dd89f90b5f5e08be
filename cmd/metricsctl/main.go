// Command metricsctl records, imports, queries and streams metrics, and
// manages metric definitions and export providers, against a metricsmodule
// collector (MetricsService and MetricsManagementService over gRPC).
//
// Exit codes (stable, for scripts):
//
//	0  success
//	1  usage error or local failure (bad flag, unreadable file, bad config)
//	2  refused by the server: INVALID_ARGUMENT, FAILED_PRECONDITION,
//	   OUT_OF_RANGE, ALREADY_EXISTS, ABORTED (the message names the field and the fix);
//	   every point of a record refused
//	3  server unavailable: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (retry later)
//	4  not found: NOT_FOUND
//	5  not allowed: UNAUTHENTICATED, PERMISSION_DENIED
//	6  partly refused: some items of a record/import were refused (the others were recorded)
//	7  any other server error (INTERNAL, UNKNOWN, UNIMPLEMENTED, ...)
//	130 interrupted (SIGINT/SIGTERM); an import can be resumed with --resume
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
