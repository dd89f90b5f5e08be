package prometheusremotewritereceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// format is the obsreport format of the received data.
const format = "prometheus_remote_write"

type rwReceiver struct {
	set  receiver.Settings
	cfg  *Config
	next consumer.Metrics
	obs  *receiverhelper.ObsReport

	mu     sync.Mutex
	server *http.Server
	addr   string // the listener's address, once started
	wg     sync.WaitGroup
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Metrics) (*rwReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &rwReceiver{set: set, cfg: cfg, next: next, obs: obs}, nil
}

// handler is the remote write endpoint: Prometheus' own handler
// (client_golang exp/api/remote: method, Content-Type negotiation with 415,
// snappy decoding, the X-Prometheus-Remote-Write-*-Written headers of 2.0)
// over Store.
func (r *rwReceiver) handler() http.Handler {
	discard := slog.New(slog.DiscardHandler)
	h := remoteapi.NewWriteHandler(r,
		remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType},
		remoteapi.WithWriteHandlerLogger(discard),
		remoteapi.WithWriteHandlerMiddlewares(remoteapi.SnappyDecodeMiddleware(discard)))
	// The method is checked before the snappy middleware reads the body.
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "remote write takes POST", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, req)
	})
}

// Start starts the HTTP server.
func (r *rwReceiver) Start(ctx context.Context, host component.Host) error {
	mux := http.NewServeMux()
	mux.Handle(r.cfg.Path, r.handler())
	// The body stays snappy-compressed through confighttp (its snappy decoder
	// is replaced by a pass-through) so that Prometheus' handler decodes it,
	// whether or not the sender set Content-Encoding: snappy.
	srv, err := r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux,
		confighttp.WithDecoder("snappy", func(body io.ReadCloser) (io.ReadCloser, error) { return body, nil }),
		confighttp.WithErrorHandler(decompressionError))
	if err != nil {
		return fmt.Errorf("create HTTP server: %w", err)
	}
	ln, err := r.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.mu.Lock()
	r.server = srv
	r.addr = ln.Addr().String()
	r.mu.Unlock()
	r.set.Logger.Info("Starting Prometheus remote write receiver",
		zap.String("endpoint", ln.Addr().String()), zap.String("path", r.cfg.Path))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

// Shutdown stops the server; safe without Start and more than once.
func (r *rwReceiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	srv := r.server
	r.server = nil
	r.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	r.wg.Wait()
	return err
}

// Store decodes one (decompressed) request, hands it to the pipeline and
// says how to answer: 204 when the pipeline accepted it (2.0: with the
// number of samples written), 400 for a malformed request or a permanent
// refusal (the sender drops the data), 503 for a retryable refusal (the
// sender retries).
func (r *rwReceiver) Store(req *http.Request, msgType remoteapi.WriteMessageType) (*remoteapi.WriteResponse, error) {
	wr := remoteapi.NewWriteResponse()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		wr.SetStatusCode(http.StatusBadRequest)
		return wr, fmt.Errorf("read request body: %w", err)
	}
	var (
		md pmetric.Metrics
		n  counts
	)
	switch msgType {
	case remoteapi.WriteV2MessageType:
		var m writev2.Request
		if err = m.Unmarshal(body); err != nil {
			err = badRequest("decode %s: %v; send a snappy-compressed protobuf %s", msgType, err, msgType)
		} else {
			md, n, err = fromV2(&m)
		}
	default:
		var m prompb.WriteRequest
		if err = m.Unmarshal(body); err != nil {
			err = badRequest("decode %s: %v; send a snappy-compressed protobuf %s", msgType, err, msgType)
		} else {
			md, n, err = fromV1(&m)
		}
	}
	if err != nil {
		wr.SetStatusCode(http.StatusBadRequest)
		return wr, err
	}
	if n.total() == 0 { // metadata only, or empty
		return wr, nil
	}
	ctx := r.obs.StartMetricsOp(req.Context())
	err = r.next.ConsumeMetrics(ctx, md)
	r.obs.EndMetricsOp(ctx, format, n.total(), err)
	if err != nil {
		wr.SetStatusCode(statusOf(err))
		return wr, err
	}
	wr.Add(remoteapi.WriteResponseStats{Samples: n.samples, Histograms: n.histograms})
	return wr, nil
}

// decompressionError answers confighttp's refusals of the body encoding;
// an encoding it does not decode is 415, as in Prometheus' own handler.
func decompressionError(w http.ResponseWriter, _ *http.Request, msg string, status int) {
	if strings.HasPrefix(msg, "unsupported Content-Encoding") {
		status = http.StatusUnsupportedMediaType
		msg += "; remote write bodies are snappy-compressed (Content-Encoding: snappy)"
	}
	http.Error(w, msg, status)
}

// statusOf maps a pipeline error to the status Prometheus senders act on:
// they drop the data on 4xx and retry on 5xx.
func statusOf(err error) int {
	if consumererror.IsPermanent(err) {
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}
