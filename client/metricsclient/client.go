package metricsclient

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	_ "github.com/metricsmodule/metricsmodule/client/streamclient" // registers gzip, snappy, zstd and lz4
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Backpressure is what recording does when the buffer is full.
type Backpressure int

const (
	// Block waits until the flusher made room (the default).
	Block Backpressure = iota
	// DropAndCount drops the observation and counts it in Stats().Dropped.
	DropAndCount
)

// RetryPolicy bounds the retries of a batch.
type RetryPolicy struct {
	// Initial is the first backoff (default 100ms).
	Initial time.Duration
	// Max is the longest backoff (default 5s).
	Max time.Duration
	// MaxElapsed is how long a batch is retried before it is given up
	// (default 1m). Keep it below the server's dedup window.
	MaxElapsed time.Duration
}

// Option configures a Client.
type Option func(*config)

type config struct {
	dialOpts      []grpc.DialOption
	tlsConfig     *tls.Config
	token         string
	basicUser     string
	basicPass     string
	resource      map[string]string
	flushInterval time.Duration
	batchSize     int
	bufferSize    int
	backpressure  Backpressure
	retry         RetryPolicy
	onError       func(error)
	idPrefix      string
	batchMode     pb.BatchMode
	callTimeout   time.Duration
}

// WithTLS uses TLS with cfg (default: plain text).
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tlsConfig = cfg } }

// WithToken sends "authorization: Bearer token" with every call.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithBasicAuth sends "authorization: Basic ..." with every call (the
// collector's basicauth extension checks it).
func WithBasicAuth(username, password string) Option {
	return func(c *config) { c.basicUser, c.basicPass = username, password }
}

// WithDialOptions adds gRPC dial options (New only).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithResource sets the resource attributes of every recorded point, e.g.
// {"service.name": "checkout"} (service.name becomes the job label).
func WithResource(attrs map[string]string) Option {
	return func(c *config) { c.resource = attrs }
}

// WithFlushInterval sets how often buffered records are sent (default 1s).
func WithFlushInterval(d time.Duration) Option { return func(c *config) { c.flushInterval = d } }

// WithBatchSize sets the most items per RecordBatchMetrics (default 1000;
// the server's limits.max_batch_size is 10000 by default).
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// WithBufferSize bounds the observations and raw points waiting to be sent
// (default 100000). Counters and gauges aggregate in place and take no room.
func WithBufferSize(n int) Option { return func(c *config) { c.bufferSize = n } }

// WithBackpressure chooses what recording does on a full buffer.
func WithBackpressure(b Backpressure) Option { return func(c *config) { c.backpressure = b } }

// WithRetry sets the retry policy of batches.
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// WithErrorHandler receives every batch given up or refused (default: none;
// Stats counts them either way). It runs on the flusher goroutine.
func WithErrorHandler(fn func(error)) Option { return func(c *config) { c.onError = fn } }

// WithRequestIDPrefix sets the prefix of the batches' request ids (default:
// random per Client). Ids are prefix-N, N counting batches from 1.
func WithRequestIDPrefix(p string) Option { return func(c *config) { c.idPrefix = p } }

// WithBatchMode sets the mode of background batches (default best effort:
// one refused item does not refuse the rest).
func WithBatchMode(m pb.BatchMode) Option { return func(c *config) { c.batchMode = m } }

// WithCallTimeout bounds each attempt of a call (default 10s).
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// Stats count what a Client did.
type Stats struct {
	// Batches acknowledged by the server (duplicates included).
	Batches uint64
	// Items (series updates) acknowledged as accepted.
	Accepted uint64
	// Items the server refused (best effort batches) or in batches given up.
	Refused uint64
	// Observations dropped because the buffer was full (DropAndCount) or
	// the client was closed.
	Dropped uint64
	// Retries of batches.
	Retries uint64
	// Duplicates: batches the server had already applied (a retry whose
	// first answer was lost).
	Duplicates uint64
}

// Client records metrics in the background and calls both services.
type Client struct {
	cfg  config
	conn grpc.ClientConnInterface
	own  *grpc.ClientConn
	api  pb.MetricsServiceClient
	mgmt pb.MetricsManagementServiceClient

	mu       sync.Mutex
	families map[string]*family
	order    []*family

	rawMu sync.Mutex
	raw   []*pb.MetricData

	pending atomic.Int64
	bufMu   sync.Mutex
	bufCond *sync.Cond
	closed  atomic.Bool

	kick     chan struct{}
	flushReq chan chan error
	closing  chan struct{}
	done     chan struct{}
	sendCtx  context.Context
	cancel   context.CancelFunc
	seq      atomic.Uint64
	closeMu  sync.Mutex
	bg       sync.WaitGroup // GatherEvery loops

	batches, accepted, refused, dropped, retries, duplicates atomic.Uint64
}

// New dials target (host:port) and starts the background flusher. The
// connection is made lazily; ctx is not kept.
func New(ctx context.Context, target string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := newConfig(opts)
	dial := []grpc.DialOption{}
	if cfg.tlsConfig != nil {
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(cfg.tlsConfig)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	switch {
	case cfg.token != "":
		dial = append(dial, grpc.WithPerRPCCredentials(authHeader{value: "Bearer " + cfg.token, secure: cfg.tlsConfig != nil}))
	case cfg.basicUser != "":
		cred := base64.StdEncoding.EncodeToString([]byte(cfg.basicUser + ":" + cfg.basicPass))
		dial = append(dial, grpc.WithPerRPCCredentials(authHeader{value: "Basic " + cred, secure: cfg.tlsConfig != nil}))
	}
	dial = append(dial, cfg.dialOpts...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("metricsclient: dial %s: %w", target, err)
	}
	c := newClient(conn, cfg)
	c.own = conn
	return c, nil
}

// NewFromConn returns a Client over an existing connection (closed by the
// caller, after Close). WithTLS, WithToken and WithDialOptions do not apply.
func NewFromConn(conn grpc.ClientConnInterface, opts ...Option) *Client {
	return newClient(conn, newConfig(opts))
}

func newConfig(opts []Option) config {
	cfg := config{
		flushInterval: time.Second,
		batchSize:     1000,
		bufferSize:    100_000,
		retry:         RetryPolicy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: time.Minute},
		batchMode:     pb.BatchMode_BATCH_MODE_BEST_EFFORT,
		callTimeout:   10 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.flushInterval <= 0 {
		cfg.flushInterval = time.Second
	}
	if cfg.batchSize <= 0 {
		cfg.batchSize = 1000
	}
	if cfg.bufferSize <= 0 {
		cfg.bufferSize = 100_000
	}
	if cfg.retry.Initial <= 0 {
		cfg.retry.Initial = 100 * time.Millisecond
	}
	if cfg.retry.Max < cfg.retry.Initial {
		cfg.retry.Max = max(5*time.Second, cfg.retry.Initial)
	}
	if cfg.retry.MaxElapsed <= 0 {
		cfg.retry.MaxElapsed = time.Minute
	}
	if cfg.callTimeout <= 0 {
		cfg.callTimeout = 10 * time.Second
	}
	if cfg.idPrefix == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.idPrefix = "sdk-" + hex.EncodeToString(b[:])
	}
	return cfg
}

func newClient(conn grpc.ClientConnInterface, cfg config) *Client {
	c := &Client{
		cfg:      cfg,
		conn:     conn,
		api:      pb.NewMetricsServiceClient(conn),
		mgmt:     pb.NewMetricsManagementServiceClient(conn),
		families: map[string]*family{},
		kick:     make(chan struct{}, 1),
		flushReq: make(chan chan error),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.bufCond = sync.NewCond(&c.bufMu)
	c.sendCtx, c.cancel = context.WithCancel(context.Background())
	go c.loop()
	return c
}

// Metrics returns the raw MetricsService client of the connection.
func (c *Client) Metrics() pb.MetricsServiceClient { return c.api }

// Management returns the raw MetricsManagementService client of the
// connection (the management endpoint is often another address: use a
// second Client for it).
func (c *Client) Management() pb.MetricsManagementServiceClient { return c.mgmt }

// Conn returns the client's connection.
func (c *Client) Conn() grpc.ClientConnInterface { return c.conn }

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Batches: c.batches.Load(), Accepted: c.accepted.Load(), Refused: c.refused.Load(),
		Dropped: c.dropped.Load(), Retries: c.retries.Load(), Duplicates: c.duplicates.Load(),
	}
}

// Record queues one raw point for the next batch (its resource, when unset,
// is the client's). It takes room in the buffer and follows the backpressure
// choice; it returns false when the point was dropped.
func (c *Client) Record(m *pb.MetricData) bool {
	if !c.reserve() {
		return false
	}
	c.rawMu.Lock()
	c.raw = append(c.raw, m)
	c.rawMu.Unlock()
	return true
}

// Flush sends everything recorded so far and waits for the answers (or for
// ctx). It returns the errors of batches given up during this flush.
func (c *Client) Flush(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case c.flushReq <- ch:
	case <-c.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errClosed = errors.New("metricsclient: client is closed")

// Close stops recording, flushes what is buffered and waits until it was
// acknowledged or ctx ended (then what is left is given up and counted), and
// closes the connection New made. It is safe to call more than once.
func (c *Client) Close(ctx context.Context) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	// wake blocked recorders: they drop from now on
	c.bufMu.Lock()
	c.bufCond.Broadcast()
	c.bufMu.Unlock()
	close(c.closing)
	c.bg.Wait()
	var err error
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
		err = fmt.Errorf("metricsclient: close: %w", ctx.Err())
	}
	c.cancel()
	if c.own != nil {
		err = errors.Join(err, c.own.Close())
	}
	return err
}

// reserve takes room for one observation or raw point, following the
// backpressure choice.
func (c *Client) reserve() bool {
	size := int64(c.cfg.bufferSize)
	for {
		if c.closed.Load() {
			c.dropped.Add(1)
			return false
		}
		n := c.pending.Add(1)
		if n <= size {
			if n == size/2 || n == size {
				c.wake()
			}
			return true
		}
		c.pending.Add(-1)
		c.wake()
		if c.cfg.backpressure == DropAndCount {
			c.dropped.Add(1)
			return false
		}
		c.bufMu.Lock()
		for c.pending.Load() >= size && !c.closed.Load() {
			c.bufCond.Wait()
		}
		c.bufMu.Unlock()
	}
}

// release gives back n units of room.
func (c *Client) release(n int64) {
	if n == 0 {
		return
	}
	c.pending.Add(-n)
	c.bufMu.Lock()
	c.bufCond.Broadcast()
	c.bufMu.Unlock()
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// loop is the flusher.
func (c *Client) loop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.flushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.report(c.flush())
		case <-c.kick:
			c.report(c.flush())
		case ch := <-c.flushReq:
			ch <- c.flush()
		case <-c.closing:
			c.report(c.flush())
			return
		}
	}
}

func (c *Client) report(err error) {
	if err != nil && c.cfg.onError != nil {
		c.cfg.onError(err)
	}
}

// flush collects and sends everything pending.
func (c *Client) flush() error {
	var errs []error
	for {
		items, units := c.collect(c.cfg.batchSize)
		if len(items) == 0 {
			return errors.Join(errs...)
		}
		// room is given back once the items are out of the buffer: the
		// batch in flight is bounded by the batch size on top of it
		c.release(units)
		id := c.cfg.idPrefix + "-" + strconv.FormatUint(c.seq.Add(1), 10)
		if _, err := c.sendBatch(c.sendCtx, id, items, c.cfg.batchMode); err != nil {
			errs = append(errs, err)
		}
		if len(items) < c.cfg.batchSize {
			return errors.Join(errs...)
		}
	}
}

// collect takes up to limit items out of the instruments and the raw
// buffer; units is the buffer room they held.
func (c *Client) collect(limit int) (items []*pb.MetricData, units int64) {
	c.mu.Lock()
	fams := c.order
	c.mu.Unlock()
	for _, f := range fams {
		if len(items) >= limit {
			return items, units
		}
		var u int64
		items, u = f.collect(items, limit)
		units += u
	}
	c.rawMu.Lock()
	n := min(limit-len(items), len(c.raw))
	if n > 0 {
		items = append(items, c.raw[:n]...)
		clear(c.raw[:n])
		c.raw = c.raw[n:]
		if len(c.raw) == 0 {
			c.raw = nil
		}
		units += int64(n)
	}
	c.rawMu.Unlock()
	return items, units
}

// authHeader is an authorization header as per-call credentials.
type authHeader struct {
	value  string
	secure bool
}

func (a authHeader) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": a.value}, nil
}

// RequireTransportSecurity is false for a plain-text client: the operator
// chose plain text (e.g. on localhost).
func (a authHeader) RequireTransportSecurity() bool { return a.secure }
