package statsdexporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/statsd"
)

type statsdExporter struct {
	cfg *Config
	set exporter.Settings

	// mu serializes sends: increments are computed, sent and committed as
	// one step.
	mu   sync.Mutex
	conv *statsd.Converter
	conn net.Conn // dialed on first use, dropped after a write error
	rand func() float64
}

func newExporter(cfg *Config, set exporter.Settings) *statsdExporter {
	return &statsdExporter{cfg: cfg, set: set, rand: rand.Float64}
}

func (e *statsdExporter) start(context.Context, component.Host) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conv = statsd.NewConverter(statsd.Options{
		Prefix:          e.cfg.Prefix,
		TagFormat:       statsd.TagFormat(e.cfg.TagFormat),
		SampleRate:      e.cfg.SampleRate,
		HistogramMode:   statsd.HistogramMode(e.cfg.Histogram.Mode),
		Quantiles:       e.cfg.Histogram.Quantiles,
		ObservationType: statsd.Type(e.cfg.Histogram.ObservationType),
		ResourceTags:    e.cfg.ResourceToTelemetryConversion.Enabled,
		Expiration:      e.cfg.MetricExpiration,
		Start:           time.Now(),
		Rand:            e.rand,
	})
	e.set.Logger.Info("StatsD exporter started",
		zap.String("endpoint", e.cfg.Endpoint), zap.String("transport", e.cfg.Transport),
		zap.String("tag_format", e.cfg.TagFormat))
	return nil
}

func (e *statsdExporter) shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil
	}
	err := e.conn.Close()
	e.conn = nil
	return err
}

// pushMetrics converts md, sends the lines and only then keeps the new
// state of cumulative series, so that a retry of a failed send computes the
// same increments.
func (e *statsdExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conv == nil {
		return errors.New("statsd exporter is not started")
	}
	batch := e.conv.Convert(md)
	if len(batch.Dropped) > 0 {
		e.set.Logger.Warn("Data points not sent", zap.Any("dropped", batch.Dropped))
	}
	tcp := e.cfg.Transport == TransportTCP
	payloads, oversize := statsd.Pack(batch.Entries, e.cfg.MaxPacketSize, tcp)
	if oversize > 0 {
		e.set.Logger.Warn("Lines longer than max_packet_size sent in packets of their own",
			zap.Int("lines", oversize), zap.Int("max_packet_size", e.cfg.MaxPacketSize))
	}
	if err := e.send(ctx, payloads, tcp); err != nil {
		return err
	}
	batch.Commit()
	return nil
}

func (e *statsdExporter) send(ctx context.Context, payloads [][]byte, tcp bool) error {
	if len(payloads) == 0 {
		return nil
	}
	if e.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, e.cfg.Transport, e.cfg.Endpoint)
		if err != nil {
			return fmt.Errorf("connect to %s over %s: %w", e.cfg.Endpoint, e.cfg.Transport, err)
		}
		e.conn = conn
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	if err := e.conn.SetWriteDeadline(deadline); err != nil {
		return e.fail(fmt.Errorf("set write deadline: %w", err))
	}
	for _, p := range payloads {
		if !tcp && len(p) > maxUDPPayload {
			e.set.Logger.Warn("Line too long for a UDP datagram, not sent", zap.Int("bytes", len(p)))
			continue
		}
		if _, err := e.conn.Write(p); err != nil {
			return e.fail(fmt.Errorf("send to %s over %s: %w", e.cfg.Endpoint, e.cfg.Transport, err))
		}
	}
	return nil
}

// fail drops the connection after an error; the next send dials again.
func (e *statsdExporter) fail(err error) error {
	_ = e.conn.Close()
	e.conn = nil
	return err
}
