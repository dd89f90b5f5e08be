package provider

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// PolicyConfigKey is the config block of the destination policy; violations
// name the key under it that allows the refused value.
const PolicyConfigKey = "destination_policy"

// Config keys of the destination policy, relative to PolicyConfigKey.
const (
	KeyAllowLinkLocal       = "allow_link_local"
	KeyAllowUnspecifiedBind = "allow_unspecified_bind"
	KeyAllowSelf            = "allow_self"
	KeySelfEndpoints        = "self_endpoints"
	KeyFileDirs             = "file_dirs"
)

// Classes of a refused value (PolicyViolation.Class).
const (
	ClassLinkLocal        = "link_local"
	ClassCloudMetadata    = "cloud_metadata"
	ClassUnspecifiedBind  = "unspecified_bind"
	ClassSelf             = "self_endpoint"
	ClassFileOutsideDirs  = "file_outside_allowed_dirs"
	ClassNonCanonicalHost = "non_canonical_ip"
)

// DestinationPolicy says where providers may send or listen and which files
// their settings may name. The zero value is the safe default: no link-local
// or cloud metadata destinations, no listening on every interface, no
// export into the collector's own receivers, no file settings.
type DestinationPolicy struct {
	// AllowLinkLocal allows link-local destinations (169.254.0.0/16,
	// fe80::/10) and the cloud metadata services (169.254.169.254,
	// fd00:ec2::254, 100.100.100.200, metadata.google.internal, ...).
	AllowLinkLocal bool
	// AllowUnspecifiedBind allows a listening provider (a scrape endpoint)
	// to bind every interface (0.0.0.0, ::, or an empty host).
	AllowUnspecifiedBind bool
	// AllowSelf allows destinations that are the collector's own
	// listening endpoints (an export loop).
	AllowSelf bool
	// SelfEndpoints are host:port endpoints of this collector, added to
	// those the engine learns at runtime (SetSelfEndpoints).
	SelfEndpoints []string
	// FileDirs are the directories file settings (ca_file, cert_file,
	// key_file, any *_file of a custom exporter config) may name. Empty:
	// no file setting is accepted.
	FileDirs []string
}

// PolicyViolation is one refused setting.
type PolicyViolation struct {
	// Field is the request field, e.g. "config.settings.prometheus.remote_write_url".
	Field string
	// Class is the kind of value refused (Class* constants).
	Class string
	// ConfigKey is the destination_policy key that allows it ("" when none does).
	ConfigKey string
	// Message says what was refused (no secrets: hosts and paths only).
	Message string
}

// PolicyError refuses a provider config that the destination policy does
// not allow (PERMISSION_DENIED: the request is well formed, the operator's
// policy forbids it).
type PolicyError struct {
	// Violations are the refused settings, at least one.
	Violations []PolicyViolation
}

func (e *PolicyError) Error() string {
	if len(e.Violations) == 0 {
		return "refused by the destination policy"
	}
	msg := e.Violations[0].Message
	if len(e.Violations) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(e.Violations)-1)
	}
	return msg
}

// Issues are the violations as validation issues (code: the class).
func (e *PolicyError) Issues() []*pb.ValidationIssue {
	out := make([]*pb.ValidationIssue, 0, len(e.Violations))
	for _, v := range e.Violations {
		out = append(out, issue(v.Field, v.Class, v.Message, v.suggestion()))
	}
	return out
}

func (v PolicyViolation) suggestion() string {
	if v.ConfigKey == "" {
		if v.Class == ClassNonCanonicalHost {
			return "write the IP address in its canonical form (e.g. 10.0.0.1) or use a host name"
		}
		return ""
	}
	return "choose another destination, or have the operator set " + v.ConfigKey + " in the metrics_management extension config"
}

// cloudMetadataIPs are the metadata services of the clouds (some are not link-local).
var cloudMetadataIPs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OCI, DigitalOcean, ...
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// cloudMetadataNames are matched literally (no DNS lookups), lower case,
// without the trailing dot.
var cloudMetadataNames = map[string]bool{
	"metadata":                   true,
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
	"metadata.azure.internal":    true,
	"metadata.tencentyun.com":    true,
}

var linkLocalV4 = netip.MustParsePrefix("169.254.0.0/16")

// listeningExporters are the exporter types whose top-level endpoint is
// an address to listen on, not a destination.
var listeningExporters = map[string]bool{TypeScrape: true}

// destKeyRe and fileKeyRe find destinations and files in a custom exporter config.
var (
	destKeyRe = regexp.MustCompile(`(?i)^(endpoint|url|address|addr|[a-z0-9_]*_(endpoint|url|address|addr))$`)
	fileKeyRe = regexp.MustCompile(`(?i)^(file|path|directory|dir|[a-z0-9_]*_(file|files|path|dir|directory))$`)
)

// policy is a compiled DestinationPolicy.
type policy struct {
	cfg  DestinationPolicy
	dirs []string // cleaned, symlinks resolved
	// evalSymlinks resolves a path (filepath.EvalSymlinks); it is only
	// called for a path already inside an allowed directory. Tests hook it.
	evalSymlinks func(string) (string, error)

	mu      sync.RWMutex
	learned []hostPort
	static  []hostPort

	localOnce sync.Once
	local     map[netip.Addr]bool
	hostname  string
}

type hostPort struct {
	host string // lower case, no brackets, no zone, no trailing dot
	port string
}

func newPolicy(cfg DestinationPolicy) *policy {
	p := &policy{cfg: cfg, evalSymlinks: filepath.EvalSymlinks}
	for _, d := range cfg.FileDirs {
		d = filepath.Clean(d)
		if r, err := filepath.EvalSymlinks(d); err == nil {
			d = r
		}
		p.dirs = append(p.dirs, d)
	}
	p.static = parseEndpoints(cfg.SelfEndpoints)
	return p
}

// setLearned replaces the endpoints learned from the collector's config.
func (p *policy) setLearned(eps []string) {
	hp := parseEndpoints(eps)
	p.mu.Lock()
	p.learned = hp
	p.mu.Unlock()
}

// selfEndpoints returns every known endpoint of the collector, sorted.
func (p *policy) selfEndpoints() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []string
	for _, hp := range append(append([]hostPort(nil), p.static...), p.learned...) {
		out = append(out, net.JoinHostPort(hp.host, hp.port))
	}
	sort.Strings(out)
	return out
}

func parseEndpoints(eps []string) []hostPort {
	var out []hostPort
	for _, ep := range eps {
		if hp, ok := splitDestination(ep); ok && hp.port != "" {
			out = append(out, hp)
		}
	}
	return out
}

// splitDestination returns the host and port of a URL or host:port (the
// scheme's default port when a URL has none).
func splitDestination(v string) (hostPort, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return hostPort{}, false
	}
	if i := strings.Index(v, "://"); i >= 0 {
		u, err := url.Parse(v)
		if err != nil {
			return hostPort{}, false
		}
		if u.Host == "" {
			// dns:///host:port (gRPC target): the host is in the path.
			return splitDestination(strings.TrimPrefix(u.Path, "/"))
		}
		port := u.Port()
		if port == "" {
			switch strings.ToLower(u.Scheme) {
			case "http":
				port = "80"
			case "https":
				port = "443"
			}
		}
		return hostPort{host: normHost(u.Hostname()), port: port}, true
	}
	h, port, err := net.SplitHostPort(v)
	if err != nil {
		return hostPort{host: normHost(v)}, true
	}
	return hostPort{host: normHost(h), port: port}, true
}

func normHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i] // IPv6 zone
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// numericHost reports whether every label of h starts with a digit: an
// IPv4 address in some form (decimal, octal, hex, shortened) that a
// resolver may read differently from netip.
func numericHost(h string) bool {
	if h == "" {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || l[0] < '0' || l[0] > '9' {
			return false
		}
	}
	return true
}

// check returns the violations of pc.
func (p *policy) check(pc *pb.ProviderConfig) []PolicyViolation {
	if p == nil {
		p = newPolicy(DestinationPolicy{})
	}
	var out []PolicyViolation
	s := pc.GetSettings()
	const pf, of = "config.settings.prometheus.", "config.settings.opentelemetry."
	if pr := s.GetPrometheus(); pr != nil {
		out = append(out, p.checkDest(pf+"push_gateway_url", pr.GetPushGatewayUrl())...)
		out = append(out, p.checkDest(pf+"remote_write_url", pr.GetRemoteWriteUrl())...)
		out = append(out, p.checkBind(pf+"scrape_endpoint", pr.GetScrapeEndpoint())...)
	}
	out = append(out, p.checkDest(of+"endpoint", s.GetOpentelemetry().GetEndpoint())...)
	out = append(out, p.checkDest("config.settings.statsd.address", s.GetStatsd().GetAddress())...)
	if c := s.GetCustom(); c != nil && c.GetConfig() != nil {
		listens := listeningExporters[c.GetExporterType()]
		out = append(out, p.walkCustom("config.settings.custom.config", c.GetConfig(), listens, true)...)
	}
	tls := pc.GetSecurity().GetTls()
	const tf = "config.security.tls."
	out = append(out, p.checkFile(tf+"ca_file", tls.GetCaFile())...)
	out = append(out, p.checkFile(tf+"cert_file", tls.GetCertFile())...)
	out = append(out, p.checkFile(tf+"key_file", tls.GetKeyFile())...)
	return out
}

func (p *policy) walkCustom(field string, st *structpb.Struct, listens, top bool) []PolicyViolation {
	var out []PolicyViolation
	keys := make([]string, 0, len(st.GetFields()))
	for k := range st.GetFields() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, p.walkValue(field+"."+k, k, st.GetFields()[k], listens, top)...)
	}
	return out
}

func (p *policy) walkValue(field, key string, v *structpb.Value, listens, top bool) []PolicyViolation {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		return p.walkCustom(field, x.StructValue, listens, false)
	case *structpb.Value_ListValue:
		var out []PolicyViolation
		for i, e := range x.ListValue.GetValues() {
			out = append(out, p.walkValue(fmt.Sprintf("%s[%d]", field, i), key, e, listens, false)...)
		}
		return out
	case *structpb.Value_StringValue:
		s := x.StringValue
		switch {
		case fileKeyRe.MatchString(key):
			return p.checkFile(field, s)
		case destKeyRe.MatchString(key) && listens && top && strings.EqualFold(key, "endpoint"):
			return p.checkBind(field, s)
		case destKeyRe.MatchString(key):
			return p.checkDest(field, s)
		}
	}
	return nil
}

// checkDest checks a destination (URL or host:port).
func (p *policy) checkDest(field, v string) []PolicyViolation {
	if v == "" {
		return nil
	}
	if u, err := url.Parse(v); err == nil && (u.Scheme == "unix" || u.Scheme == "unix-abstract") {
		// A local socket: a file.
		return p.checkFile(field, u.Path)
	}
	hp, ok := splitDestination(v)
	if !ok {
		return nil // the shape is validated elsewhere
	}
	if v := p.checkHost(field, hp.host); v != nil {
		return []PolicyViolation{*v}
	}
	if !p.cfg.AllowSelf && p.isSelf(hp) {
		return []PolicyViolation{{
			Field: field, Class: ClassSelf, ConfigKey: PolicyConfigKey + "." + KeyAllowSelf,
			Message: fmt.Sprintf("%s: %s is an endpoint of this collector (an export loop); destinations that are the collector's own receivers are not allowed (%s.%s)",
				field, net.JoinHostPort(hp.host, hp.port), PolicyConfigKey, KeyAllowSelf),
		}}
	}
	return nil
}

// checkHost refuses link-local, cloud metadata and non-canonical numeric hosts.
func (p *policy) checkHost(field, host string) *PolicyViolation {
	a, err := netip.ParseAddr(host)
	if err != nil {
		switch {
		case cloudMetadataNames[host] && !p.cfg.AllowLinkLocal:
			return &PolicyViolation{Field: field, Class: ClassCloudMetadata, ConfigKey: PolicyConfigKey + "." + KeyAllowLinkLocal,
				Message: fmt.Sprintf("%s: host %q is a cloud metadata service; it is not allowed (%s.%s)", field, host, PolicyConfigKey, KeyAllowLinkLocal)}
		case numericHost(host):
			return &PolicyViolation{Field: field, Class: ClassNonCanonicalHost,
				Message: fmt.Sprintf("%s: host %q is a numeric address that is not a canonical IP; resolvers read such forms differently", field, host)}
		}
		return nil
	}
	if p.cfg.AllowLinkLocal {
		return nil
	}
	a = a.Unmap()
	for _, m := range cloudMetadataIPs {
		if a == m {
			return &PolicyViolation{Field: field, Class: ClassCloudMetadata, ConfigKey: PolicyConfigKey + "." + KeyAllowLinkLocal,
				Message: fmt.Sprintf("%s: %s is a cloud metadata address; it is not allowed (%s.%s)", field, a, PolicyConfigKey, KeyAllowLinkLocal)}
		}
	}
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || (a.Is4() && linkLocalV4.Contains(a)) {
		return &PolicyViolation{Field: field, Class: ClassLinkLocal, ConfigKey: PolicyConfigKey + "." + KeyAllowLinkLocal,
			Message: fmt.Sprintf("%s: %s is a link-local address; it is not allowed (%s.%s)", field, a, PolicyConfigKey, KeyAllowLinkLocal)}
	}
	return nil
}

// checkBind checks an address a provider listens on.
func (p *policy) checkBind(field, v string) []PolicyViolation {
	if v == "" {
		return nil
	}
	hp, ok := splitDestination(v)
	if !ok {
		return nil
	}
	if v := p.checkHost(field, hp.host); v != nil && v.Class == ClassNonCanonicalHost {
		return []PolicyViolation{*v}
	}
	unspecified := hp.host == ""
	if a, err := netip.ParseAddr(hp.host); err == nil && a.Unmap().IsUnspecified() {
		unspecified = true
	}
	if unspecified && !p.cfg.AllowUnspecifiedBind {
		return []PolicyViolation{{
			Field: field, Class: ClassUnspecifiedBind, ConfigKey: PolicyConfigKey + "." + KeyAllowUnspecifiedBind,
			Message: fmt.Sprintf("%s: %q listens on every interface; bind a specific address such as localhost:%s (%s.%s allows it)",
				field, v, hp.port, PolicyConfigKey, KeyAllowUnspecifiedBind),
		}}
	}
	return nil
}

// checkFile checks a file setting: the cleaned, absolute path must be in
// an allowed directory before anything looks at the file system; then its
// symlinks are resolved and the result must be in one too. The file is
// never opened here.
func (p *policy) checkFile(field, path string) []PolicyViolation {
	if path == "" {
		return nil
	}
	deny := func(why string) []PolicyViolation {
		return []PolicyViolation{{
			Field: field, Class: ClassFileOutsideDirs, ConfigKey: PolicyConfigKey + "." + KeyFileDirs,
			Message: fmt.Sprintf("%s: file %q %s (%s.%s)", field, path, why, PolicyConfigKey, KeyFileDirs),
		}}
	}
	if len(p.dirs) == 0 {
		return deny("is refused: no directory is allowed for files")
	}
	if !filepath.IsAbs(path) {
		return deny("is not an absolute path")
	}
	clean := filepath.Clean(path)
	if !p.inDirs(clean) {
		return deny("is outside the allowed directories " + strings.Join(p.dirs, ", "))
	}
	resolved, err := p.evalSymlinks(clean)
	if err != nil {
		return deny("cannot be resolved (it must exist in an allowed directory)")
	}
	if !p.inDirs(resolved) {
		return deny("resolves (through a symbolic link) outside the allowed directories " + strings.Join(p.dirs, ", "))
	}
	return nil
}

func (p *policy) inDirs(path string) bool {
	for _, d := range p.dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, string(filepath.Separator))+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// isSelf reports whether hp is one of the collector's endpoints: same port
// and an equivalent host (IP literals, localhost, loopback and unspecified
// addresses, the machine's interface addresses and host name; no DNS).
func (p *policy) isSelf(hp hostPort) bool {
	if hp.port == "" {
		return false
	}
	p.mu.RLock()
	self := append(append([]hostPort(nil), p.static...), p.learned...)
	p.mu.RUnlock()
	for _, s := range self {
		if s.port != hp.port {
			continue
		}
		if p.sameHost(hp.host, s.host) {
			return true
		}
	}
	return false
}

// sameHost compares a destination host with a listening host.
func (p *policy) sameHost(dest, listen string) bool {
	if dest == listen {
		return true
	}
	destLocal := p.isLocal(dest)
	switch {
	case listen == "" || isUnspecified(listen):
		// Listening on every interface: any local address reaches it.
		return destLocal
	case isLoopback(listen):
		return isLoopback(dest) || isUnspecified(dest)
	}
	la, err1 := netip.ParseAddr(listen)
	da, err2 := netip.ParseAddr(dest)
	if err1 == nil && err2 == nil {
		return la.Unmap() == da.Unmap()
	}
	// A listening host name: it matches the same name, or a local
	// destination when it is the machine's own name.
	return destLocal && listen == p.localHostname()
}

// isLocal reports whether a destination host is this machine.
func (p *policy) isLocal(h string) bool {
	if isLoopback(h) || isUnspecified(h) || h == p.localHostname() {
		return true
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	p.localOnce.Do(p.loadLocal)
	return p.local[a.Unmap()]
}

func (p *policy) localHostname() string {
	p.localOnce.Do(p.loadLocal)
	return p.hostname
}

func (p *policy) loadLocal() {
	p.local = map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					p.local[ip.Unmap()] = true
				}
			}
		}
	}
	if h, err := os.Hostname(); err == nil {
		p.hostname = normHost(h)
	}
}

func isLoopback(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "ip6-localhost" || h == "ip6-loopback" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

func isUnspecified(h string) bool {
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsUnspecified()
}

// SetSelfEndpoints sets the collector's own listening endpoints learned at
// runtime (host:port or URLs; those of the policy config stay). A running
// provider whose destination is now one of them is stopped and FAILED.
func (e *Engine) SetSelfEndpoints(ctx context.Context, endpoints []string) {
	e.policy.setLearned(endpoints)
	e.mu.Lock()
	var check []*providerState
	for _, ps := range e.providers {
		if ps.primary != nil && !ps.removed {
			check = append(check, ps)
		}
	}
	e.mu.Unlock()
	for _, ps := range check {
		e.enforcePolicy(ctx, ps)
	}
}

// SelfEndpoints returns the collector endpoints the policy knows, sorted.
func (e *Engine) SelfEndpoints() []string { return e.policy.selfEndpoints() }

// enforcePolicy stops a running provider that the policy refuses.
func (e *Engine) enforcePolicy(ctx context.Context, ps *providerState) {
	ps.op.Lock()
	defer ps.op.Unlock()
	e.mu.Lock()
	s := ps.primary
	err := e.checkPolicy(ps.cfg)
	if s == nil || err == nil || ps.removed || e.stopping {
		e.mu.Unlock()
		return
	}
	ps.primary = nil
	e.publishLocked()
	e.mu.Unlock()
	_, dropped, _ := s.stop(ctx, false)
	if dropped > 0 {
		e.log.Warn("Dropped queued data points of a provider the destination policy refuses",
			zap.String("provider_id", ps.rec.ID), zap.Uint64("datapoints", dropped))
	}
	e.fail(ps, err)
}
