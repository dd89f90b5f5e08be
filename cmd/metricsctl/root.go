package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metricsmodule/metricsmodule/client/metricsclient"
)

// Exit codes; see the package doc.
const (
	exitOK          = 0
	exitUsage       = 1
	exitRefused     = 2
	exitUnavailable = 3
	exitNotFound    = 4
	exitDenied      = 5
	exitPartial     = 6
	exitServer      = 7
	exitInterrupted = 130
)

// exitError carries an exit code with an error already printed or to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the documented exit code.
func exitCode(ctx context.Context, err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	st, ok := status.FromError(err)
	if !ok {
		return exitUsage
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists, codes.Aborted:
		return exitRefused
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return exitUnavailable
	case codes.NotFound:
		return exitNotFound
	case codes.Unauthenticated, codes.PermissionDenied:
		return exitDenied
	case codes.Canceled:
		return exitInterrupted
	}
	return exitServer
}

// app is the state shared by the commands.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configPath  string
	contextName string
	endpoint    string
	mgmtAddr    string
	output      string
	timeout     time.Duration
	tlsFlag     bool
	caFile      string
	skipVerify  bool
	tokenFile   string
	username    string

	cfg     *Config
	ctxCfg  *ContextConfig
	clients []*metricsclient.Client
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	for _, c := range a.clients {
		_ = c.Close(context.WithoutCancel(ctx))
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	var ee *exitError
	if !errors.As(err, &ee) || ee.err != errPrinted {
		a.printError(err, code)
	}
	return code
}

// errPrinted marks an error whose report the command already wrote.
var errPrinted = errors.New("reported")

func (a *app) printError(err error, code int) {
	msg := err.Error()
	if _, ok := status.FromError(err); ok {
		msg = metricsclient.Explain(err)
	} else if st := grpcStatusIn(err); st != nil {
		msg = strings.TrimSuffix(strings.TrimSuffix(err.Error(), st.Err().Error()), ": ") + ": " + metricsclient.Explain(st.Err())
	}
	fmt.Fprintf(a.stderr, "Error: %s\n", msg)
	switch code {
	case exitUnavailable:
		fmt.Fprintf(a.stderr, "hint: is the collector running and reachable at %s (ingest) / %s (management)? `make run` starts one on localhost.\n", a.endpointOr(), a.mgmtOr())
	case exitDenied:
		fmt.Fprintln(a.stderr, "hint: set a token (--token-file, or token-env / token-file in the context of the config file) or basic auth (--username with $METRICSCTL_PASSWORD, or username / password-env in the context).")
	}
}

func grpcStatusIn(err error) *status.Status {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus()
	}
	return nil
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "metricsctl",
		Short: "Record, import, query and stream metrics; manage definitions and providers",
		Long: `metricsctl talks to a metricsmodule collector: MetricsService (record, read,
stream, definitions; default localhost:4320) and MetricsManagementService
(providers; default localhost:4321).

Endpoints, TLS and tokens come from a context of the config file
(~/.config/metricsctl/config.yaml, or --config), overridden by flags.

Exit codes: 0 ok, 1 usage or local error, 2 refused by the server (invalid
argument, failed precondition, ...), 3 server unavailable (retry), 4 not found,
5 not allowed, 6 partly refused, 7 other server error, 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.loadConfig()
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.configPath, "config", "", "config file (default ~/.config/metricsctl/config.yaml)")
	f.StringVar(&a.contextName, "context", "", "context of the config file to use (default: its current-context)")
	f.StringVar(&a.endpoint, "endpoint", "", "MetricsService address host:port (default localhost:4320)")
	f.StringVar(&a.mgmtAddr, "management-endpoint", "", "MetricsManagementService address host:port (default localhost:4321)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "timeout of each call")
	f.BoolVar(&a.tlsFlag, "tls", false, "use TLS")
	f.StringVar(&a.caFile, "ca-file", "", "CA bundle to verify the server (implies --tls)")
	f.BoolVar(&a.skipVerify, "insecure-skip-verify", false, "do not verify the server certificate (implies --tls)")
	f.StringVar(&a.tokenFile, "token-file", "", "file holding a bearer token")
	f.StringVar(&a.username, "username", "", "basic auth user; the password is read from $METRICSCTL_PASSWORD")

	root.AddCommand(a.recordCommand(), a.importCommand(), a.queryCommand(), a.getCommand(), a.summaryCommand(),
		a.tailCommand(), a.definitionsCommand(), a.providersCommand(), a.configCommand())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitUsage, err: err} })
	return root
}

func (a *app) endpointOr() string {
	if a.ctxCfg != nil && a.ctxCfg.Endpoint != "" {
		return a.ctxCfg.Endpoint
	}
	return "localhost:4320"
}

func (a *app) mgmtOr() string {
	if a.ctxCfg != nil && a.ctxCfg.ManagementEndpoint != "" {
		return a.ctxCfg.ManagementEndpoint
	}
	return "localhost:4321"
}

// clientOptions are the connection options of the context.
func (a *app) clientOptions() ([]metricsclient.Option, error) {
	c := a.ctxCfg
	var opts []metricsclient.Option
	if c.TLS.Enabled {
		tc := &tls.Config{InsecureSkipVerify: c.TLS.InsecureSkipVerify, ServerName: c.TLS.ServerName} //nolint:gosec // the user's choice
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, usageErrorf("tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, usageErrorf("tls.ca_file: %s holds no PEM certificate", c.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		opts = append(opts, metricsclient.WithTLS(tc))
	}
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	if token != "" {
		opts = append(opts, metricsclient.WithToken(token))
	} else if c.Username != "" {
		pw, err := c.password()
		if err != nil {
			return nil, err
		}
		opts = append(opts, metricsclient.WithBasicAuth(c.Username, pw))
	}
	return append(opts, metricsclient.WithCallTimeout(a.timeout)), nil
}

// client returns a client of MetricsService.
func (a *app) client(ctx context.Context, extra ...metricsclient.Option) (*metricsclient.Client, error) {
	return a.dial(ctx, a.endpointOr(), extra)
}

// mgmt returns a client of MetricsManagementService.
func (a *app) mgmt(ctx context.Context) (*metricsclient.Client, error) {
	return a.dial(ctx, a.mgmtOr(), nil)
}

func (a *app) dial(ctx context.Context, target string, extra []metricsclient.Option) (*metricsclient.Client, error) {
	opts, err := a.clientOptions()
	if err != nil {
		return nil, err
	}
	cl, err := metricsclient.New(ctx, target, append(opts, extra...)...)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	a.clients = append(a.clients, cl)
	return cl, nil
}

// callCtx bounds one call by --timeout.
func (a *app) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}
