package provider

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metricsmodule/metricsmodule/internal/metricfilter"
	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

var (
	providerIDRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	labelNameRe   = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	metricNameRe  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	headerNameRe  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	maxProviderID = 63
)

// Limits of one provider's settings.
const (
	maxQueueSize   = 1_000_000
	maxConcurrency = 1000
	maxNameLen     = 256
	maxTags        = 64
	// maxDescriptionBytes bounds config.description: every List and Get
	// returns it.
	maxDescriptionBytes = 4096
	// maxTagKeyBytes and maxTagValueBytes bound each of config.tags.
	maxTagKeyBytes   = 128
	maxTagValueBytes = 1024
	// maxSettingsBytes bounds the encoded (protobuf) size of the settings
	// of the provider's type, for a custom exporter of its config: they are
	// stored with every version and returned by every List and Get.
	maxSettingsBytes = 64 << 10
	// maxConfigDepth bounds how deeply the maps and lists of a custom
	// exporter config nest (the config itself is level 1).
	maxConfigDepth = 32
	// maxSecretBytes bounds config.security.bearer_token and
	// basic_auth.password: they are stored with every version, sent with
	// every export and scrubbed from every logged error.
	maxSecretBytes = 16 << 10
	// maxSecurityTextBytes bounds the other strings of config.security:
	// basic_auth.username, the tls file paths and server_name, and
	// authenticator.
	maxSecurityTextBytes = 4096
)

// validateID checks a provider id; field names the request field.
func validateID(field, id string) *pb.ValidationIssue {
	switch {
	case id == "":
		return issue(field, "required", "provider id must be set", "use e.g. \"prod-prometheus\"")
	case len(id) > maxProviderID:
		return issue(field, "too_long", fmt.Sprintf("provider id has %d bytes, at most %d are allowed", len(id), maxProviderID), "shorten it")
	case !providerIDRe.MatchString(id):
		return issue(field, "invalid_format", fmt.Sprintf("provider id %q must match [a-z0-9][a-z0-9_-]*", id),
			"use lower-case letters, digits, '-' and '_'")
	}
	return nil
}

// validateConfig checks the fields of a provider config that do not depend on
// the exporter: id, type and the settings of that type, filter, limits,
// security, retry, health and failover. Exporter-specific checks follow when
// the exporter config is built.
func validateConfig(pc *pb.ProviderConfig) []*pb.ValidationIssue {
	if pc == nil {
		return []*pb.ValidationIssue{issue("config", "required", "config must be set", "")}
	}
	var out []*pb.ValidationIssue
	add := func(iss ...*pb.ValidationIssue) {
		for _, i := range iss {
			if i != nil {
				out = append(out, i)
			}
		}
	}
	add(validateID("config.provider_id", pc.GetProviderId()))
	if len(pc.GetName()) > maxNameLen {
		add(issue("config.name", "too_long", fmt.Sprintf("name has %d bytes, at most %d are allowed", len(pc.GetName()), maxNameLen), ""))
	}
	add(validateSettings(pc)...)
	add(validateFilter("config.filter", pc.GetFilter())...)
	add(validateLimits(pc.GetLimits())...)
	add(validateSecurity(pc)...)
	add(validateRetry(pc.GetRetry())...)
	add(validateHealth(pc.GetHealthCheck())...)
	if fo := pc.GetFailover().GetFailoverProviderId(); fo != "" {
		add(validateID("config.failover.failover_provider_id", fo))
		if fo == pc.GetProviderId() {
			add(issue("config.failover.failover_provider_id", "invalid_value", "a provider cannot fail over to itself", "name another provider"))
		}
	}
	if n := len(pc.GetDescription()); n > maxDescriptionBytes {
		add(issue("config.description", "too_long", fmt.Sprintf("description has %d bytes, at most %d are allowed; shorten it (link to a longer text instead)", n, maxDescriptionBytes), ""))
	}
	add(validateTags(pc.GetTags())...)
	return out
}

// validateTags checks config.tags: how many, and the size of each key and
// value (they are stored and returned by every List and Get). The issues
// come in key order.
func validateTags(tags map[string]string) []*pb.ValidationIssue {
	if len(tags) > maxTags {
		return []*pb.ValidationIssue{issue("config.tags", "too_many",
			fmt.Sprintf("%d tags, at most %d are allowed; drop some tags", len(tags), maxTags), "")}
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*pb.ValidationIssue
	for _, k := range keys {
		f := "config.tags[" + strconv.Quote(k[:min(len(k), 64)]) + "]"
		switch {
		case k == "":
			out = append(out, issue("config.tags", "invalid_format", "tag keys must not be empty", ""))
		case len(k) > maxTagKeyBytes:
			out = append(out, issue(f, "too_long", fmt.Sprintf("tag key has %d bytes, at most %d are allowed; shorten the key", len(k), maxTagKeyBytes), ""))
		}
		if v := tags[k]; len(v) > maxTagValueBytes {
			out = append(out, issue(f, "too_long", fmt.Sprintf("tag value has %d bytes, at most %d are allowed; shorten the value", len(v), maxTagValueBytes), ""))
		}
	}
	return out
}

func validateSettings(pc *pb.ProviderConfig) []*pb.ValidationIssue {
	s := pc.GetSettings()
	set := map[string]bool{
		"prometheus":    s.GetPrometheus() != nil,
		"opentelemetry": s.GetOpentelemetry() != nil,
		"statsd":        s.GetStatsd() != nil,
		"custom":        s.GetCustom() != nil,
	}
	var want string
	switch pc.GetType() {
	case pb.ProviderType_PROVIDER_TYPE_PROMETHEUS:
		want = "prometheus"
	case pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY:
		want = "opentelemetry"
	case pb.ProviderType_PROVIDER_TYPE_STATSD:
		want = "statsd"
	case pb.ProviderType_PROVIDER_TYPE_CUSTOM:
		want = "custom"
	case pb.ProviderType_PROVIDER_TYPE_UNSPECIFIED:
		return []*pb.ValidationIssue{issue("config.type", "required", "provider type must be set",
			"one of PROVIDER_TYPE_PROMETHEUS, PROVIDER_TYPE_OPENTELEMETRY, PROVIDER_TYPE_STATSD, PROVIDER_TYPE_CUSTOM")}
	default:
		return []*pb.ValidationIssue{validateEnum("config.type", pc.GetType())}
	}
	var out []*pb.ValidationIssue
	for _, name := range []string{"prometheus", "opentelemetry", "statsd", "custom"} {
		if set[name] && name != want {
			out = append(out, issue("config.settings."+name, "conflict",
				fmt.Sprintf("settings.%s is set but the type is %s", name, pc.GetType()), "set only settings."+want))
		}
	}
	if !set[want] {
		return append(out, issue("config.settings."+want, "required",
			fmt.Sprintf("settings.%s must be set for type %s", want, pc.GetType()), ""))
	}
	if iss := validateSettingsSize(s, want); iss != nil {
		// the settings themselves are not walked: the caller shortens them first
		return append(out, iss)
	}
	switch want {
	case "prometheus":
		out = append(out, validatePrometheus(s.GetPrometheus())...)
	case "opentelemetry":
		out = append(out, validateOTel(s.GetOpentelemetry())...)
	case "statsd":
		out = append(out, validateStatsd(s.GetStatsd())...)
	case "custom":
		out = append(out, validateCustom(s.GetCustom())...)
	}
	return out
}

// validateSettingsSize refuses settings of type want (for "custom", the
// exporter config) larger than maxSettingsBytes encoded.
func validateSettingsSize(s *pb.ProviderSettings, want string) *pb.ValidationIssue {
	var (
		n                int
		field, what, fix string
	)
	switch want {
	case "prometheus":
		n, field, what, fix = proto.Size(s.GetPrometheus()), "config.settings.prometheus", "settings.prometheus", "shorten the headers, grouping_labels and external_labels"
	case "opentelemetry":
		n, field, what, fix = proto.Size(s.GetOpentelemetry()), "config.settings.opentelemetry", "settings.opentelemetry", "shorten the headers"
	case "statsd":
		n, field, what, fix = proto.Size(s.GetStatsd()), "config.settings.statsd", "settings.statsd", "shorten the address and prefix"
	case "custom":
		n, field, what, fix = proto.Size(s.GetCustom().GetConfig()), "config.settings.custom.config", "the exporter config", "shorten it (large content belongs in a file the exporter reads)"
	}
	if n <= maxSettingsBytes {
		return nil
	}
	return issue(field, "too_large", fmt.Sprintf("%s has %d bytes encoded, at most %d are allowed; %s", what, n, maxSettingsBytes, fix), "")
}

func validatePrometheus(p *pb.PrometheusSettings) []*pb.ValidationIssue {
	const f = "config.settings.prometheus."
	var out []*pb.ValidationIssue
	n := 0
	for _, v := range []string{p.GetPushGatewayUrl(), p.GetRemoteWriteUrl(), p.GetScrapeEndpoint()} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		out = append(out, issue(f+"remote_write_url", "one_of",
			fmt.Sprintf("exactly one of push_gateway_url, remote_write_url and scrape_endpoint must be set, %d are", n),
			"e.g. remote_write_url: \"http://prometheus:9090/api/v1/write\""))
	}
	if v := p.GetPushGatewayUrl(); v != "" {
		out = appendNonNil(out, validateURL(f+"push_gateway_url", v))
		if p.GetJobName() == "" {
			out = append(out, issue(f+"job_name", "required", "job_name must be set with push_gateway_url", "e.g. \"myapp\""))
		}
	} else {
		if p.GetJobName() != "" {
			out = append(out, warning(f+"job_name", "ignored", "job_name applies to push_gateway_url only", ""))
		}
		if len(p.GetGroupingLabels()) > 0 {
			out = append(out, warning(f+"grouping_labels", "ignored", "grouping_labels apply to push_gateway_url only", ""))
		}
		if p.GetPushMethod() != pb.PushMethod_PUSH_METHOD_UNSPECIFIED {
			out = append(out, warning(f+"push_method", "ignored", "push_method applies to push_gateway_url only", ""))
		}
	}
	out = appendNonNil(out, validateEnum(f+"push_method", p.GetPushMethod()))
	if v := p.GetRemoteWriteUrl(); v != "" {
		out = appendNonNil(out, validateURL(f+"remote_write_url", v))
	} else if p.GetNativeHistograms() {
		out = append(out, warning(f+"native_histograms", "ignored", "native_histograms applies to remote_write_url only", ""))
	}
	if v := p.GetScrapeEndpoint(); v != "" {
		out = appendNonNil(out, validateHostPort(f+"scrape_endpoint", v))
	}
	if ns := p.GetNamespace(); ns != "" && !metricNameRe.MatchString(ns) {
		out = append(out, issue(f+"namespace", "invalid_format", fmt.Sprintf("namespace %q is not a valid metric name prefix", ns), "use [a-zA-Z_:][a-zA-Z0-9_:]*"))
	}
	for k := range p.GetGroupingLabels() {
		if !labelNameRe.MatchString(k) {
			out = append(out, issue(fmt.Sprintf("%sgrouping_labels[%q]", f, k), "invalid_label_name", fmt.Sprintf("%q is not a valid label name", k), "use [a-zA-Z_][a-zA-Z0-9_]*"))
		}
	}
	for k := range p.GetExternalLabels() {
		if !labelNameRe.MatchString(k) {
			out = append(out, issue(fmt.Sprintf("%sexternal_labels[%q]", f, k), "invalid_label_name", fmt.Sprintf("%q is not a valid label name", k), "use [a-zA-Z_][a-zA-Z0-9_]*"))
		}
	}
	out = append(out, validateHeaders(f+"headers", p.GetHeaders())...)
	out = appendNonNil(out, validateDuration(f+"timeout", p.GetTimeout(), false))
	return out
}

func validateOTel(o *pb.OpenTelemetrySettings) []*pb.ValidationIssue {
	const f = "config.settings.opentelemetry."
	var out []*pb.ValidationIssue
	ep := o.GetEndpoint()
	switch o.GetProtocol() {
	case pb.OtlpProtocol_OTLP_PROTOCOL_UNSPECIFIED, pb.OtlpProtocol_OTLP_PROTOCOL_GRPC:
		switch {
		case ep == "":
			out = append(out, issue(f+"endpoint", "required", "endpoint must be set", "host:port, e.g. \"otel-collector:4317\""))
		case strings.Contains(ep, "://"):
			out = appendNonNil(out, validateURL(f+"endpoint", ep))
		default:
			out = appendNonNil(out, validateHostPort(f+"endpoint", ep))
		}
	case pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_PROTOBUF, pb.OtlpProtocol_OTLP_PROTOCOL_HTTP_JSON:
		if ep == "" {
			out = append(out, issue(f+"endpoint", "required", "endpoint must be set", "a URL, e.g. \"http://otel-collector:4318\""))
		} else {
			out = appendNonNil(out, validateURL(f+"endpoint", ep))
		}
	default:
		out = appendNonNil(out, validateEnum(f+"protocol", o.GetProtocol()))
	}
	switch o.GetCompression() {
	case "", "gzip", "zstd", "snappy", "none":
	default:
		out = append(out, issue(f+"compression", "invalid_value", fmt.Sprintf("compression %q is not supported", o.GetCompression()),
			"one of gzip, zstd, snappy, none"))
	}
	out = append(out, validateHeaders(f+"headers", o.GetHeaders())...)
	out = appendNonNil(out, validateDuration(f+"timeout", o.GetTimeout(), false))
	return out
}

func validateStatsd(s *pb.StatsdSettings) []*pb.ValidationIssue {
	const f = "config.settings.statsd."
	var out []*pb.ValidationIssue
	if s.GetAddress() == "" {
		out = append(out, issue(f+"address", "required", "address must be set", "host:port, e.g. \"statsd:8125\""))
	} else {
		out = appendNonNil(out, validateHostPort(f+"address", s.GetAddress()))
	}
	out = appendNonNil(out, validateEnum(f+"transport", s.GetTransport()))
	out = appendNonNil(out, validateEnum(f+"tag_format", s.GetTagFormat()))
	if r := s.GetSampleRate(); math.IsNaN(r) || r < 0 || r > 1 {
		out = append(out, issue(f+"sample_rate", "out_of_range", fmt.Sprintf("sample_rate %v must be in (0,1] (0 means 1)", r), ""))
	}
	if m := s.GetMaxPacketSize(); m != 0 && (m < 64 || m > 65507) {
		out = append(out, issue(f+"max_packet_size", "out_of_range", fmt.Sprintf("max_packet_size %d must be in [64, 65507]", m), "1432 fits an Ethernet MTU"))
	}
	if p := s.GetPrefix(); strings.ContainsAny(p, ":|@# \n") {
		out = append(out, issue(f+"prefix", "invalid_format", fmt.Sprintf("prefix %q contains a StatsD separator", p), ""))
	}
	out = appendNonNil(out, validateDuration(f+"flush_interval", s.GetFlushInterval(), false))
	return out
}

func validateCustom(c *pb.CustomSettings) []*pb.ValidationIssue {
	const f = "config.settings.custom."
	if c.GetExporterType() == "" {
		return []*pb.ValidationIssue{issue(f+"exporter_type", "required", "exporter_type must be set", "e.g. \"otlp_http\", \"debug\"")}
	}
	if _, err := component.NewType(c.GetExporterType()); err != nil {
		return []*pb.ValidationIssue{issue(f+"exporter_type", "invalid_format", err.Error(), "")}
	}
	if c.GetExporterType() == "providers" {
		return []*pb.ValidationIssue{issue(f+"exporter_type", "invalid_value", "a provider cannot be a providers exporter (it would loop)", "")}
	}
	if p := tooDeep(f+"config", structpb.NewStructValue(c.GetConfig()), 1); p != "" {
		return []*pb.ValidationIssue{issue(p, "too_deep",
			fmt.Sprintf("the exporter config nests more than %d levels of maps and lists here; flatten it", maxConfigDepth), "")}
	}
	var out []*pb.ValidationIssue
	for k, v := range c.GetConfig().GetFields() {
		out = append(out, negativeValues(f+"config."+k, v)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetField() < out[j].GetField() })
	return out
}

// tooDeep returns the path of the first map or list (keys in order) nested
// deeper than maxConfigDepth levels in v, itself at level depth; "" when
// there is none. Keys longer than 64 bytes are cut in the path.
func tooDeep(path string, v *structpb.Value, depth int) string {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		if depth > maxConfigDepth {
			return path
		}
		fields := x.StructValue.GetFields()
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p := tooDeep(path+"."+cutKey(k), fields[k], depth+1); p != "" {
				return p
			}
		}
	case *structpb.Value_ListValue:
		if depth > maxConfigDepth {
			return path
		}
		for i, e := range x.ListValue.GetValues() {
			if p := tooDeep(path+"["+strconv.Itoa(i)+"]", e, depth+1); p != "" {
				return p
			}
		}
	}
	return ""
}

// cutKey returns k, cut to its first 64 bytes and marked when longer.
func cutKey(k string) string {
	if len(k) <= 64 {
		return k
	}
	return strings.ToValidUTF8(k[:64], "") + "…"
}

// negativeValues refuses negative numbers and durations in a custom
// exporter config: no exporter setting takes one (sizes, counts, timeouts,
// intervals), and some exporters do not check theirs (a negative timeout
// would be taken as none).
func negativeValues(field string, v *structpb.Value) []*pb.ValidationIssue {
	switch x := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		if x.NumberValue < 0 || math.IsNaN(x.NumberValue) || math.IsInf(x.NumberValue, 0) {
			return []*pb.ValidationIssue{issue(field, "out_of_range", fmt.Sprintf("%v must be a finite number >= 0", x.NumberValue), "")}
		}
	case *structpb.Value_StringValue:
		if d, err := time.ParseDuration(x.StringValue); err == nil && d < 0 {
			return []*pb.ValidationIssue{issue(field, "out_of_range", fmt.Sprintf("duration %s must not be negative", x.StringValue), "")}
		}
	case *structpb.Value_StructValue:
		var out []*pb.ValidationIssue
		for k, e := range x.StructValue.GetFields() {
			out = append(out, negativeValues(field+"."+k, e)...)
		}
		return out
	case *structpb.Value_ListValue:
		var out []*pb.ValidationIssue
		for i, e := range x.ListValue.GetValues() {
			out = append(out, negativeValues(fmt.Sprintf("%s[%d]", field, i), e)...)
		}
		return out
	}
	return nil
}

// validateFilter checks a filter the way metricfilter compiles it: one
// issue per refused field. A filter over its bounds (metricfilter.MaxEntries
// and the others) is refused with the fix in the message, as the other
// bounds of a provider are.
func validateFilter(f string, mf *pb.MetricFilter) []*pb.ValidationIssue {
	var out []*pb.ValidationIssue
	for _, e := range metricfilter.Validate(f, mf) {
		if e.Bound() {
			out = append(out, issue(e.Field, e.Code, e.Message+"; "+e.Fix, ""))
			continue
		}
		out = append(out, issue(e.Field, e.Code, e.Message, e.Fix))
	}
	return out
}

func validateLimits(l *pb.ResourceLimits) []*pb.ValidationIssue {
	const f = "config.limits."
	var out []*pb.ValidationIssue
	if l.GetQueueSize() > maxQueueSize {
		out = append(out, issue(f+"queue_size", "out_of_range", fmt.Sprintf("queue_size %d exceeds %d", l.GetQueueSize(), maxQueueSize), ""))
	}
	if r := l.GetMaxDatapointsPerSecond(); math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		out = append(out, issue(f+"max_datapoints_per_second", "out_of_range", fmt.Sprintf("max_datapoints_per_second %v must be a finite number >= 0", r), "0 means unlimited"))
	}
	if l.GetConcurrency() > maxConcurrency {
		out = append(out, issue(f+"concurrency", "out_of_range", fmt.Sprintf("concurrency %d exceeds %d", l.GetConcurrency(), maxConcurrency), ""))
	}
	return out
}

func validateSecurity(pc *pb.ProviderConfig) []*pb.ValidationIssue {
	const f = "config.security."
	s := pc.GetSecurity()
	if s == nil {
		return nil
	}
	out := validateSecuritySizes(s)
	tls := s.GetTls()
	if (tls.GetCertFile() == "") != (tls.GetKeyFile() == "") {
		out = append(out, issue(f+"tls.key_file", "conflict", "cert_file and key_file must be set together", ""))
	}
	if tls.GetInsecure() && (tls.GetCaFile() != "" || tls.GetCertFile() != "" || tls.GetServerName() != "") {
		out = append(out, issue(f+"tls.insecure", "conflict", "insecure (plain text) conflicts with the TLS files and server name", "unset insecure or the TLS settings"))
	}
	ba := s.GetBasicAuth()
	if ba != nil && ba.GetUsername() == "" && ba.GetPassword() != "" {
		out = append(out, issue(f+"basic_auth.username", "required", "username must be set with a password", ""))
	}
	if ba.GetUsername() != "" && s.GetBearerToken() != "" {
		out = append(out, issue(f+"bearer_token", "conflict", "bearer_token and basic_auth are exclusive", "set one of them"))
	}
	if a := s.GetAuthenticator(); a != "" {
		// one over maxSecurityTextBytes is refused by validateSecuritySizes
		// and not repeated here
		if len(a) <= maxSecurityTextBytes {
			var id component.ID
			if err := id.UnmarshalText([]byte(a)); err != nil {
				out = append(out, issue(f+"authenticator", "invalid_format", fmt.Sprintf("authenticator %q is not a component id: %v", a, err), "e.g. \"oauth2client\""))
			}
		}
		if ba.GetUsername() != "" || s.GetBearerToken() != "" {
			out = append(out, issue(f+"authenticator", "conflict", "authenticator and basic_auth/bearer_token are exclusive", "set one of them"))
		}
	}
	if ba.GetUsername() != "" || s.GetBearerToken() != "" {
		for k := range providerHeaders(pc) {
			if strings.EqualFold(k, "authorization") {
				out = append(out, issue(f+"bearer_token", "conflict", "an Authorization header is set in the settings too", "remove the header or the credentials"))
			}
		}
	}
	return out
}

// validateSecuritySizes bounds the strings of config.security, naming the
// field, its size, the limit and the fix; a value is never repeated (the
// token and password are secrets).
func validateSecuritySizes(s *pb.SecurityConfig) []*pb.ValidationIssue {
	const f = "config.security."
	var out []*pb.ValidationIssue
	for _, b := range []struct {
		field string
		n     int
		limit int
		fix   string
	}{
		{"bearer_token", len(s.GetBearerToken()), maxSecretBytes, "send the token itself; for a longer credential use an authenticator extension"},
		{"basic_auth.username", len(s.GetBasicAuth().GetUsername()), maxSecurityTextBytes, "shorten the user name"},
		{"basic_auth.password", len(s.GetBasicAuth().GetPassword()), maxSecretBytes, "use a shorter password, or an authenticator extension"},
		{"tls.ca_file", len(s.GetTls().GetCaFile()), maxSecurityTextBytes, "use a shorter path to the file"},
		{"tls.cert_file", len(s.GetTls().GetCertFile()), maxSecurityTextBytes, "use a shorter path to the file"},
		{"tls.key_file", len(s.GetTls().GetKeyFile()), maxSecurityTextBytes, "use a shorter path to the file"},
		{"tls.server_name", len(s.GetTls().GetServerName()), maxSecurityTextBytes, "use the server's host name"},
		{"authenticator", len(s.GetAuthenticator()), maxSecurityTextBytes, "use the component id of an auth extension, e.g. \"oauth2client\""},
	} {
		if b.n > b.limit {
			out = append(out, issue(f+b.field, "too_long",
				fmt.Sprintf("%s has %d bytes, at most %d are allowed; %s", b.field, b.n, b.limit, b.fix), ""))
		}
	}
	return out
}

func validateRetry(r *pb.RetryPolicy) []*pb.ValidationIssue {
	if r == nil {
		return nil
	}
	const f = "config.retry."
	var out []*pb.ValidationIssue
	out = appendNonNil(out, validateDuration(f+"initial_interval", r.GetInitialInterval(), false))
	out = appendNonNil(out, validateDuration(f+"max_interval", r.GetMaxInterval(), false))
	out = appendNonNil(out, validateDuration(f+"max_elapsed_time", r.GetMaxElapsedTime(), false))
	if r.GetInitialInterval() != nil && r.GetMaxInterval() != nil && r.GetMaxInterval().AsDuration() > 0 &&
		r.GetMaxInterval().AsDuration() < r.GetInitialInterval().AsDuration() {
		out = append(out, issue(f+"max_interval", "out_of_range", "max_interval must not be shorter than initial_interval", ""))
	}
	return out
}

func validateHealth(h *pb.HealthCheckSettings) []*pb.ValidationIssue {
	if h == nil {
		return nil
	}
	const f = "config.health_check."
	var out []*pb.ValidationIssue
	for name, v := range map[string]float64{"degraded_error_ratio": h.GetDegradedErrorRatio(), "unhealthy_error_ratio": h.GetUnhealthyErrorRatio()} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			out = append(out, issue(f+name, "out_of_range", fmt.Sprintf("%s %v must be in [0,1] (0 means the default)", name, v), ""))
		}
	}
	d, u := h.GetDegradedErrorRatio(), h.GetUnhealthyErrorRatio()
	if d > 0 && u > 0 && d > u {
		out = append(out, issue(f+"degraded_error_ratio", "out_of_range", "degraded_error_ratio must not exceed unhealthy_error_ratio", ""))
	}
	if w := h.GetWindow(); w != nil {
		if iss := validateDuration(f+"window", w, false); iss != nil {
			out = append(out, iss)
		} else if w.AsDuration() > 0 && w.AsDuration() < 100*time.Millisecond {
			out = append(out, issue(f+"window", "out_of_range", "window must be at least 100ms", ""))
		}
	}
	return out
}

func validateHeaders(f string, h map[string]string) []*pb.ValidationIssue {
	var out []*pb.ValidationIssue
	for k, v := range h {
		if !headerNameRe.MatchString(k) {
			out = append(out, issue(fmt.Sprintf("%s[%q]", f, k), "invalid_header", fmt.Sprintf("%q is not a valid header name", k), ""))
		}
		if strings.ContainsAny(v, "\r\n") {
			out = append(out, issue(fmt.Sprintf("%s[%q]", f, k), "invalid_header", "header values must not contain line breaks", ""))
		}
	}
	return out
}

func validateDuration(f string, d *durationpb.Duration, required bool) *pb.ValidationIssue {
	if d == nil {
		if required {
			return issue(f, "required", "must be set", "")
		}
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return issue(f, "invalid_value", err.Error(), "")
	}
	if d.AsDuration() < 0 {
		return issue(f, "out_of_range", "must not be negative", "")
	}
	return nil
}

func validateURL(f, raw string) *pb.ValidationIssue {
	u, err := url.Parse(raw)
	if err != nil {
		return issue(f, "invalid_url", fmt.Sprintf("%q is not a URL: %v", raw, err), "e.g. \"http://host:port/path\"")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return issue(f, "invalid_url", fmt.Sprintf("%q must be an http or https URL", raw), "e.g. \"http://host:port/path\"")
	}
	if u.Host == "" {
		return issue(f, "invalid_url", fmt.Sprintf("%q has no host", raw), "e.g. \"http://host:port/path\"")
	}
	return nil
}

func validateHostPort(f, hp string) *pb.ValidationIssue {
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return issue(f, "invalid_address", fmt.Sprintf("%q is not host:port: %v", hp, err), "e.g. \"localhost:9464\"")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return issue(f, "invalid_address", fmt.Sprintf("%q has no valid port", hp), "")
	}
	return nil
}

// protoEnum is a generated enum.
type protoEnum interface {
	~int32
	Descriptor() protoreflect.EnumDescriptor
	Number() protoreflect.EnumNumber
}

// validateEnum refuses a value that is not one of the enum's (a client
// built against a newer API, or a raw number), naming the field and the
// values accepted.
func validateEnum[E protoEnum](field string, v E) *pb.ValidationIssue {
	vals := v.Descriptor().Values()
	if vals.ByNumber(v.Number()) != nil {
		return nil
	}
	names := make([]string, 0, vals.Len())
	for i := 0; i < vals.Len(); i++ {
		if vals.Get(i).Number() != 0 {
			names = append(names, string(vals.Get(i).Name()))
		}
	}
	return issue(field, "invalid_value", fmt.Sprintf("unknown %s value %d", v.Descriptor().Name(), int32(v)),
		"one of "+strings.Join(names, ", "))
}

// validateEnums checks every value of a repeated enum field.
func validateEnums[E protoEnum](field string, vs []E) []*pb.ValidationIssue {
	var out []*pb.ValidationIssue
	for i, v := range vs {
		out = appendNonNil(out, validateEnum(fmt.Sprintf("%s[%d]", field, i), v))
	}
	return out
}

func appendNonNil(out []*pb.ValidationIssue, iss *pb.ValidationIssue) []*pb.ValidationIssue {
	if iss != nil {
		out = append(out, iss)
	}
	return out
}

// providerHeaders returns the headers of the provider's settings.
func providerHeaders(pc *pb.ProviderConfig) map[string]string {
	if h := pc.GetSettings().GetPrometheus().GetHeaders(); len(h) > 0 {
		return h
	}
	return pc.GetSettings().GetOpentelemetry().GetHeaders()
}
