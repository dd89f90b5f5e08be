package provider

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metricsmodule/metricsmodule/internal/grpcclient"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Probe bounds: each step, and the whole probe.
const (
	probeStepTimeout = 2 * time.Second
	probeTimeout     = 5 * time.Second
)

// Probe step names (ProbeStep.name).
const (
	StepResolve    = "resolve"
	StepLoop       = "loop"
	StepConnect    = "connect"
	StepHTTP       = "http"
	StepGRPCHealth = "grpc_health"
	StepUDP        = "udp"
)

// destination is where a provider sends, as the probe sees it.
type destination struct {
	// kind is "http" (url), "grpc", "tcp", "udp" (host:port), or "" (nothing to probe).
	kind     string
	url      *url.URL
	host     string
	port     string
	tls      bool
	skipTLS  bool
	serverNm string
	// health is the HTTP path of a health check relative to the URL ("" : the URL itself).
	health string
	note   string
}

// destinationOf finds the destination of pc.
func destinationOf(pc *pb.ProviderConfig) (destination, error) {
	s := pc.GetSettings()
	t := pc.GetSecurity().GetTls()
	switch {
	case s.GetPrometheus().GetPushGatewayUrl() != "":
		return httpDestination(s.GetPrometheus().GetPushGatewayUrl(), "/-/healthy")
	case s.GetPrometheus().GetRemoteWriteUrl() != "":
		return httpDestination(s.GetPrometheus().GetRemoteWriteUrl(), "")
	case s.GetPrometheus().GetScrapeEndpoint() != "":
		return destination{note: "a scrape endpoint listens; there is no destination to probe"}, nil
	case s.GetOpentelemetry() != nil:
		o := s.GetOpentelemetry()
		if o.GetProtocol() == pb.OtlpProtocol_OTLP_PROTOCOL_GRPC || o.GetProtocol() == pb.OtlpProtocol_OTLP_PROTOCOL_UNSPECIFIED {
			ep := o.GetEndpoint()
			d := destination{kind: "grpc", tls: !t.GetInsecure(), skipTLS: t.GetInsecureSkipVerify(), serverNm: t.GetServerName()}
			if u, err := url.Parse(ep); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				ep, d.tls = u.Host, u.Scheme == "https" && !t.GetInsecure()
			}
			h, p, err := net.SplitHostPort(ep)
			if err != nil {
				return destination{}, fmt.Errorf("opentelemetry.endpoint %q is not host:port: %w", ep, err)
			}
			d.host, d.port = h, p
			return d, nil
		}
		return httpDestination(o.GetEndpoint(), "")
	case s.GetStatsd() != nil:
		h, p, err := net.SplitHostPort(s.GetStatsd().GetAddress())
		if err != nil {
			return destination{}, fmt.Errorf("statsd.address %q is not host:port: %w", s.GetStatsd().GetAddress(), err)
		}
		kind := "udp"
		if s.GetStatsd().GetTransport() == pb.StatsdTransport_STATSD_TRANSPORT_TCP {
			kind = "tcp"
		}
		return destination{kind: kind, host: h, port: p}, nil
	case s.GetCustom() != nil:
		var eps []string
		collectEndpointValues(s.GetCustom().GetConfig().AsMap(), &eps)
		if len(eps) == 0 {
			return destination{note: "the custom config names no endpoint to probe"}, nil
		}
		ep := eps[0]
		if strings.Contains(ep, "://") {
			return httpDestination(ep, "")
		}
		h, p, err := net.SplitHostPort(ep)
		if err != nil {
			return destination{note: fmt.Sprintf("endpoint %q is neither a URL nor host:port", ep)}, nil
		}
		return destination{kind: "tcp", host: h, port: p}, nil
	}
	return destination{note: "no destination to probe"}, nil
}

func collectEndpointValues(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (strings.EqualFold(k, "endpoint") || strings.EqualFold(k, "url")) && s != "" {
				*out = append(*out, s)
				continue
			}
			collectEndpointValues(e, out)
		}
	case []any:
		for _, e := range x {
			collectEndpointValues(e, out)
		}
	}
}

func httpDestination(raw, health string) (destination, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return destination{}, fmt.Errorf("%q is not a URL", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return destination{kind: "http", url: u, host: u.Hostname(), port: port, tls: u.Scheme == "https", health: health}, nil
}

// probe checks pc's destination: resolve (the engine's resolver), that it
// is not this collector (a loop), connect, then a protocol-level check (HTTP
// request, gRPC health check, or a UDP datagram whose refusal shows). It
// sends no metric and creates nothing; every detail is scrubbed.
func (e *Engine) probe(ctx context.Context, pc *pb.ProviderConfig, scrub *scrubber) *pb.DestinationProbe {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out := &pb.DestinationProbe{}
	d, err := destinationOf(pc)
	if err != nil {
		out.Steps = append(out.Steps, &pb.ProbeStep{Name: StepResolve, Detail: scrub.str(err.Error())})
		return out
	}
	if d.kind == "" {
		out.Reachable = true
		out.Steps = append(out.Steps, &pb.ProbeStep{Name: StepResolve, Ok: true, Detail: d.note})
		return out
	}
	out.Endpoint = net.JoinHostPort(d.host, d.port)
	if d.url != nil {
		out.Endpoint = redactURL(d.url.String())
	}
	step := func(name string, fn func(context.Context) (string, error)) bool {
		sctx, scancel := context.WithTimeout(ctx, probeStepTimeout)
		defer scancel()
		start := time.Now()
		detail, err := fn(sctx)
		st := &pb.ProbeStep{Name: name, Ok: err == nil, Detail: detail, Duration: durationpb.New(time.Since(start))}
		if err != nil {
			st.Detail = fmt.Sprintf("%s (%s)", err.Error(), failureReason(err))
		}
		st.Detail = scrub.str(st.GetDetail())
		out.Steps = append(out.Steps, st)
		return err == nil
	}
	var addrs []string
	ok := step(StepResolve, func(ctx context.Context) (string, error) {
		if _, err := netip.ParseAddr(d.host); err == nil {
			addrs = []string{d.host}
			return d.host + " is an address", nil
		}
		var err error
		addrs, err = e.lookupHost(ctx, d.host)
		if err != nil {
			return "", err
		}
		if len(addrs) == 0 {
			return "", &net.DNSError{Err: "no addresses", Name: d.host, IsNotFound: true}
		}
		return fmt.Sprintf("%s resolves to %s", d.host, strings.Join(addrs, ", ")), nil
	})
	ok = ok && step(StepLoop, func(context.Context) (string, error) {
		for _, a := range addrs {
			if e.policy.isSelf(hostPort{host: a, port: d.port}) {
				return "", fmt.Errorf("%s is this collector's own endpoint: the provider would export into its own receiver (%s)",
					net.JoinHostPort(a, d.port), ReasonLoop)
			}
		}
		return "not one of this collector's endpoints", nil
	})
	if !ok {
		return out
	}
	var conn string
	if d.kind != "udp" {
		ok = step(StepConnect, func(ctx context.Context) (string, error) {
			var errs []error
			for _, a := range addrs {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(a, d.port))
				if err == nil {
					conn = c.RemoteAddr().String()
					_ = c.Close()
					return "connected to " + conn, nil
				}
				errs = append(errs, err)
			}
			return "", errors.Join(errs...)
		})
		if !ok {
			return out
		}
	}
	switch d.kind {
	case "http":
		ok = step(StepHTTP, func(ctx context.Context) (string, error) { return probeHTTP(ctx, d, conn) })
	case "grpc":
		ok = step(StepGRPCHealth, func(ctx context.Context) (string, error) { return probeGRPC(ctx, d, conn) })
	case "udp":
		ok = step(StepUDP, func(ctx context.Context) (string, error) { return probeUDP(ctx, net.JoinHostPort(addrs[0], d.port)) })
	}
	out.Reachable = ok
	return out
}

// lookupHost resolves through Settings.LookupHost (the system resolver when nil).
func (e *Engine) lookupHost(ctx context.Context, host string) ([]string, error) {
	if e.set.LookupHost != nil {
		return e.set.LookupHost(ctx, host)
	}
	return net.DefaultResolver.LookupHost(ctx, host)
}

// probeHTTP sends GET to the URL (or its health path) over the connected
// address. Any HTTP answer but 404 and 5xx passes: 405 from a remote-write
// endpoint shows it is there. Credentials are not sent.
func probeHTTP(ctx context.Context, d destination, addr string) (string, error) {
	u := *d.url
	if d.health != "" {
		u.Path = strings.TrimSuffix(u.Path, "/") + d.health
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{ServerName: d.host, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close()
	detail := fmt.Sprintf("GET %s: HTTP status %d", u.Redacted(), resp.StatusCode)
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
		return "", errors.New(detail)
	}
	return detail, nil
}

// probeGRPC calls grpc.health.v1 Check; UNIMPLEMENTED still shows a gRPC server.
func probeGRPC(ctx context.Context, d destination, addr string) (string, error) {
	creds := insecure.NewCredentials()
	if d.tls {
		name := d.serverNm
		if name == "" {
			name = d.host
		}
		creds = credentials.NewTLS(&tls.Config{ServerName: name, InsecureSkipVerify: d.skipTLS, MinVersion: tls.VersionTLS12}) //nolint:gosec // as the provider is configured
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	switch ok, unimplemented := grpcclient.Answered(err); {
	case ok && unimplemented:
		return "a gRPC server answers (it has no health service)", nil
	case ok:
		return "gRPC health: " + resp.GetStatus().String(), nil
	}
	return "", err
}

// probeUDP sends an empty datagram (StatsD servers ignore it) and waits
// briefly for an ICMP port-unreachable, which shows as a refused read.
func probeUDP(ctx context.Context, addr string) (string, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write(nil); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "datagram sent to " + addr + ", no refusal (UDP cannot confirm a listener)", nil
		}
		return "", err
	}
	return "datagram sent to " + addr + ", an answer came back", nil
}

// checkLoop resolves the destination of a provider that just started and,
// when an address is one of this collector's own endpoints (a name the
// destination policy could not see through), makes it UNHEALTHY with the
// reason loop: the router then sends its traffic to its failover provider.
func (e *Engine) checkLoop(pc *pb.ProviderConfig, st *Stats) {
	d, err := destinationOf(pc)
	if err != nil || d.kind == "" {
		return
	}
	if _, err := netip.ParseAddr(d.host); err == nil {
		return // a literal address: the destination policy checked it
	}
	ctx, cancel := context.WithTimeout(e.baseCtx, probeStepTimeout)
	defer cancel()
	addrs, err := e.lookupHost(ctx, d.host)
	if err != nil {
		return // a resolution error shows in the exports
	}
	for _, a := range addrs {
		if e.policy.isSelf(hostPort{host: a, port: d.port}) {
			err := fmt.Errorf("%w: %s resolves to %s, this collector's own endpoint: the provider would export into its own receiver",
				errLoop, d.host, net.JoinHostPort(a, d.port))
			e.log.Warn("Provider destination is this collector", zap.String("provider_id", pc.GetProviderId()), zap.String("destination", net.JoinHostPort(d.host, d.port)))
			st.setLoop(newScrubber(pc).err(err))
			return
		}
	}
	st.setLoop(nil)
}
