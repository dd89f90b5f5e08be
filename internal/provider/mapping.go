package provider

import (
	"encoding/base64"
	"strings"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Exporter component types a provider maps to (collector v0.165 names).
const (
	TypeOTLPGRPC    = "otlp_grpc"
	TypeOTLPHTTP    = "otlp_http"
	TypeRemoteWrite = "prometheus_remote_write"
	TypeScrape      = "prometheus"
	TypePushgateway = "pushgateway"
	TypeStatsd      = "statsd"
)

// assignment is one exporter config key set from one request field.
type assignment struct {
	// key is the exporter config path, "::" separated (confmap's delimiter).
	key string
	// value is what the key is set to.
	value any
	// field is the request field the value comes from (for errors).
	field string
	// optional assignments are dropped with a warning when the exporter type
	// has no such setting; required ones are errors.
	optional bool
}

// plan is how a provider config becomes an exporter config.
type plan struct {
	// exporterType is the component type of the exporter.
	exporterType string
	// typeField is the request field that selected exporterType.
	typeField string
	// assigns are the settings of a typed provider, in order.
	assigns []assignment
	// raw is the exporter config of a CUSTOM provider (nil otherwise).
	raw map[string]any
	// defaultConcurrency replaces the general default of limits.concurrency.
	defaultConcurrency int
	// warnings found while mapping.
	warnings []*pb.ValidationIssue
}

// planExporter maps a validated provider config to its exporter type and
// settings. The helper settings every exporter gets (queue off: the provider
// queues itself; retry; timeout) are added by build, as optional assignments.
func planExporter(pc *pb.ProviderConfig) *plan {
	s := pc.GetSettings()
	switch pc.GetType() {
	case pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY:
		return planOTLP(pc, s.GetOpentelemetry())
	case pb.ProviderType_PROVIDER_TYPE_PROMETHEUS:
		p := s.GetPrometheus()
		switch {
		case p.GetRemoteWriteUrl() != "":
			return planRemoteWrite(pc, p)
		case p.GetScrapeEndpoint() != "":
			return planScrape(pc, p)
		default:
			return planPushgateway(pc, p)
		}
	case pb.ProviderType_PROVIDER_TYPE_STATSD:
		return planStatsd(s.GetStatsd())
	case pb.ProviderType_PROVIDER_TYPE_CUSTOM:
		c := s.GetCustom()
		raw := map[string]any{}
		if c.GetConfig() != nil {
			raw = c.GetConfig().AsMap()
		}
		return &plan{exporterType: c.GetExporterType(), typeField: "config.settings.custom.exporter_type", raw: raw}
	}
	return nil
}

func planOTLP(pc *pb.ProviderConfig, o *pb.OpenTelemetrySettings) *plan {
	const f = "config.settings.opentelemetry."
	p := &plan{exporterType: TypeOTLPGRPC, typeField: f + "protocol"}
	http := o.GetProtocol() == pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF || o.GetProtocol() == pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_JSON
	if http {
		p.exporterType = TypeOTLPHTTP
	}
	p.add("endpoint", o.GetEndpoint(), f+"endpoint", false)
	if o.GetProtocol() == pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_JSON {
		p.add("encoding", "json", f+"protocol", false)
	}
	if c := o.GetCompression(); c != "" {
		p.add("compression", c, f+"compression", false)
	}
	if h := headersWithAuth(o.GetHeaders(), pc.GetSecurity()); len(h) > 0 {
		p.add("headers", h, f+"headers", false)
	}
	if t := o.GetTimeout(); t != nil {
		p.add("timeout", t.AsDuration().String(), f+"timeout", false)
	}
	p.addClientTLS("", pc.GetSecurity(), false)
	p.addAuthenticator("", pc.GetSecurity(), false)
	return p
}

func planRemoteWrite(pc *pb.ProviderConfig, s *pb.PrometheusSettings) *plan {
	const f = "config.settings.prometheus."
	// Samples of one series must arrive in order: one request at a time
	// unless limits.concurrency says otherwise.
	p := &plan{exporterType: TypeRemoteWrite, typeField: f + "remote_write_url", defaultConcurrency: 1}
	p.add("http::endpoint", s.GetRemoteWriteUrl(), f+"remote_write_url", false)
	if h := headersWithAuth(s.GetHeaders(), pc.GetSecurity()); len(h) > 0 {
		p.add("http::headers", h, f+"headers", false)
	}
	if t := s.GetTimeout(); t != nil {
		p.add("timeout", t.AsDuration().String(), f+"timeout", false)
		p.add("http::timeout", t.AsDuration().String(), f+"timeout", false)
	}
	if ns := s.GetNamespace(); ns != "" {
		p.add("namespace", ns, f+"namespace", false)
	}
	if l := s.GetExternalLabels(); len(l) > 0 {
		p.add("external_labels", anyMap(l), f+"external_labels", false)
	}
	if s.GetNativeHistograms() {
		p.add("convert_explicit_histograms_to_nhcb", true, f+"native_histograms", false)
	}
	// The provider queues and counts itself; the exporter sends synchronously.
	p.add("remote_write_queue::enabled", false, "config.limits.queue_size", true)
	p.addClientTLS("http::", pc.GetSecurity(), false)
	p.addAuthenticator("http::", pc.GetSecurity(), false)
	return p
}

func planScrape(pc *pb.ProviderConfig, s *pb.PrometheusSettings) *plan {
	const f = "config.settings.prometheus."
	p := &plan{exporterType: TypeScrape, typeField: f + "scrape_endpoint"}
	p.add("endpoint", s.GetScrapeEndpoint(), f+"scrape_endpoint", false)
	if ns := s.GetNamespace(); ns != "" {
		p.add("namespace", ns, f+"namespace", false)
	}
	if l := s.GetExternalLabels(); len(l) > 0 {
		p.add("const_labels", anyMap(l), f+"external_labels", false)
	}
	if len(s.GetHeaders()) > 0 {
		p.warnings = append(p.warnings, warning(f+"headers", "ignored", "headers do not apply to a scrape endpoint (it is scraped, it sends nothing)", ""))
	}
	if s.GetTimeout() != nil {
		p.warnings = append(p.warnings, warning(f+"timeout", "ignored", "timeout does not apply to a scrape endpoint", ""))
	}
	if sec := pc.GetSecurity(); sec.GetBearerToken() != "" || sec.GetBasicAuth() != nil || sec.GetAuthenticator() != "" {
		p.warnings = append(p.warnings, warning("config.security", "ignored", "client credentials do not apply to a scrape endpoint", ""))
	}
	if tls := pc.GetSecurity().GetTls(); tls.GetCertFile() != "" {
		p.add("tls::cert_file", tls.GetCertFile(), "config.security.tls.cert_file", false)
		p.add("tls::key_file", tls.GetKeyFile(), "config.security.tls.key_file", false)
		if tls.GetCaFile() != "" {
			p.add("tls::client_ca_file", tls.GetCaFile(), "config.security.tls.ca_file", false)
		}
	}
	return p
}

func planPushgateway(pc *pb.ProviderConfig, s *pb.PrometheusSettings) *plan {
	const f = "config.settings.prometheus."
	// A push replaces a group's state: one push at a time keeps them in order.
	p := &plan{exporterType: TypePushgateway, typeField: f + "push_gateway_url", defaultConcurrency: 1}
	p.add("endpoint", s.GetPushGatewayUrl(), f+"push_gateway_url", false)
	p.add("job", s.GetJobName(), f+"job_name", false)
	method := "PUT"
	if s.GetPushMethod() == pb.PushMethod_PUSH_METHOD_POST {
		method = "POST"
	}
	p.add("method", method, f+"push_method", false)
	if l := s.GetGroupingLabels(); len(l) > 0 {
		p.add("grouping_labels", anyMap(l), f+"grouping_labels", false)
	}
	// The keys below exist only if the pushgateway exporter has them.
	if ns := s.GetNamespace(); ns != "" {
		p.add("namespace", ns, f+"namespace", true)
	}
	if l := s.GetExternalLabels(); len(l) > 0 {
		p.add("external_labels", anyMap(l), f+"external_labels", true)
	}
	if h := s.GetHeaders(); len(h) > 0 {
		p.add("headers", anyMap(h), f+"headers", true)
	}
	// The pushgateway exporter has its own credential settings.
	sec := pc.GetSecurity()
	if t := sec.GetBearerToken(); t != "" {
		p.add("bearer_token", t, "config.security.bearer_token", false)
	}
	if ba := sec.GetBasicAuth(); ba.GetUsername() != "" {
		p.add("basic_auth::username", ba.GetUsername(), "config.security.basic_auth.username", false)
		p.add("basic_auth::password", ba.GetPassword(), "config.security.basic_auth.password", false)
	}
	if t := s.GetTimeout(); t != nil {
		p.add("timeout", t.AsDuration().String(), f+"timeout", true)
	}
	p.addClientTLS("", pc.GetSecurity(), true)
	p.addAuthenticator("", pc.GetSecurity(), true)
	return p
}

func planStatsd(s *pb.StatsdSettings) *plan {
	const f = "config.settings.statsd."
	p := &plan{exporterType: TypeStatsd, typeField: "config.type"}
	p.add("endpoint", s.GetAddress(), f+"address", false)
	transport := "udp"
	if s.GetTransport() == pb.StatsdTransport_STATSD_TRANSPORT_TCP {
		transport = "tcp"
	}
	p.add("transport", transport, f+"transport", false)
	if s.GetPrefix() != "" {
		p.add("prefix", s.GetPrefix(), f+"prefix", false)
	}
	tf := "dogstatsd"
	switch s.GetTagFormat() {
	case pb.StatsdTagFormat_STATSD_TAG_FORMAT_NONE:
		tf = "none"
	case pb.StatsdTagFormat_STATSD_TAG_FORMAT_INFLUXDB:
		tf = "influxdb"
	case pb.StatsdTagFormat_STATSD_TAG_FORMAT_GRAPHITE:
		tf = "graphite"
	}
	p.add("tag_format", tf, f+"tag_format", false)
	if r := s.GetSampleRate(); r > 0 {
		p.add("sample_rate", r, f+"sample_rate", false)
	}
	if m := s.GetMaxPacketSize(); m > 0 {
		p.add("max_packet_size", int(m), f+"max_packet_size", false)
	}
	if fi := s.GetFlushInterval(); fi != nil {
		p.add("flush_interval", fi.AsDuration().String(), f+"flush_interval", true)
	}
	return p
}

func (p *plan) add(key string, value any, field string, optional bool) {
	p.assigns = append(p.assigns, assignment{key: key, value: value, field: field, optional: optional})
}

// addClientTLS maps security.tls to a client "tls" block under prefix.
func (p *plan) addClientTLS(prefix string, sec *pb.SecurityConfig, optional bool) {
	tls := sec.GetTls()
	if tls == nil {
		return
	}
	const f = "config.security.tls."
	if tls.GetInsecure() {
		p.add(prefix+"tls::insecure", true, f+"insecure", optional)
	}
	if tls.GetCaFile() != "" {
		p.add(prefix+"tls::ca_file", tls.GetCaFile(), f+"ca_file", optional)
	}
	if tls.GetCertFile() != "" {
		p.add(prefix+"tls::cert_file", tls.GetCertFile(), f+"cert_file", optional)
		p.add(prefix+"tls::key_file", tls.GetKeyFile(), f+"key_file", optional)
	}
	if tls.GetInsecureSkipVerify() {
		p.add(prefix+"tls::insecure_skip_verify", true, f+"insecure_skip_verify", optional)
	}
	if tls.GetServerName() != "" {
		p.add(prefix+"tls::server_name_override", tls.GetServerName(), f+"server_name", optional)
	}
}

// addAuthenticator maps security.authenticator to the standard "auth" block.
func (p *plan) addAuthenticator(prefix string, sec *pb.SecurityConfig, optional bool) {
	if a := sec.GetAuthenticator(); a != "" {
		p.add(prefix+"auth::authenticator", a, "config.security.authenticator", optional)
	}
}

// headersWithAuth returns the headers plus an Authorization header built from
// basic auth or a bearer token.
func headersWithAuth(h map[string]string, sec *pb.SecurityConfig) map[string]any {
	out := make(map[string]any, len(h)+1)
	for k, v := range h {
		out[k] = v
	}
	if t := sec.GetBearerToken(); t != "" {
		out["Authorization"] = "Bearer " + t
	}
	if ba := sec.GetBasicAuth(); ba.GetUsername() != "" {
		out["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(ba.GetUsername()+":"+ba.GetPassword()))
	}
	return out
}

// anyMap copies a string map into the map[string]any that confmap expects
// of a nested map (a map[string]string does not decode into every map type,
// e.g. configopaque.MapList).
func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setPath sets a "::" separated path in a nested map.
func setPath(m map[string]any, key string, v any) {
	parts := strings.Split(key, "::")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}
