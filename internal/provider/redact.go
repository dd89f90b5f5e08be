package provider

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Redacted replaces a secret in every response.
const Redacted = "[REDACTED]"

// redactedURLPart replaces the secret parts of a URL (brackets would be
// escaped in a URL).
const redactedURLPart = "REDACTED"

// secretKind says how a field carries a secret.
type secretKind int

const (
	// secretValue: the whole string is a secret.
	secretValue secretKind = iota
	// secretMapValues: every value of a map<string, string> is a secret.
	secretMapValues
	// secretURL: the user info, query string and fragment of a URL (or
	// host:port) are secrets; the scheme, host, port and path are not.
	secretURL
	// secretStruct: a custom exporter config; values under secret-looking
	// keys (customSecretKeyRe) are secrets, every other string is treated
	// as a secretURL.
	secretStruct
)

// secretField is one secret-bearing field of ProviderConfig.
type secretField struct {
	// types the field belongs to (UNSPECIFIED: every type).
	typ pb.ProviderType
	// path is the field path in ProviderConfig, e.g. "security.bearer_token".
	path string
	kind secretKind
}

// secretFields is the one schema of the secrets of a provider config. Every
// place that emits a config or text derived from it uses it: responses
// (Redact), updates sent back with placeholders (unredact), and the
// scrubbing of error messages, health history, last_error and log lines
// (newScrubber). Fields of another type's settings are redacted too (such a
// config is refused anyway). TestSecretSchemaComplete fails when a string
// field is added to ProviderConfig without being classified here or in
// publicFields.
var secretFields = []secretField{
	{pb.ProviderType_PROVIDER_TYPE_UNSPECIFIED, "security.bearer_token", secretValue},
	{pb.ProviderType_PROVIDER_TYPE_UNSPECIFIED, "security.basic_auth.password", secretValue},
	{pb.ProviderType_PROVIDER_TYPE_PROMETHEUS, "settings.prometheus.headers", secretMapValues},
	{pb.ProviderType_PROVIDER_TYPE_PROMETHEUS, "settings.prometheus.push_gateway_url", secretURL},
	{pb.ProviderType_PROVIDER_TYPE_PROMETHEUS, "settings.prometheus.remote_write_url", secretURL},
	{pb.ProviderType_PROVIDER_TYPE_PROMETHEUS, "settings.prometheus.scrape_endpoint", secretURL},
	{pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY, "settings.opentelemetry.headers", secretMapValues},
	{pb.ProviderType_PROVIDER_TYPE_OPENTELEMETRY, "settings.opentelemetry.endpoint", secretURL},
	{pb.ProviderType_PROVIDER_TYPE_STATSD, "settings.statsd.address", secretURL},
	{pb.ProviderType_PROVIDER_TYPE_CUSTOM, "settings.custom.config", secretStruct},
}

// customSecretKeyRe matches the keys of a custom exporter config whose
// values are secrets; under a matching key every value is (e.g. all headers,
// a whole basic_auth block).
var customSecretKeyRe = regexp.MustCompile(`(?i)(pass(word|wd|phrase)?|secret|token|api[_-]?key|^key$|authorization|credential|private[_-]?key|bearer|headers|cookie|session|signature|_pem$|^pem$)`)

// minScrubLen is the shortest secret scrubbed from free text by value;
// shorter ones would mangle every message (they are still redacted by
// field in configs).
const minScrubLen = 4

// Redact returns a copy of pc with every secret of secretFields replaced by
// Redacted (URLs keep scheme, host, port and path).
func Redact(pc *pb.ProviderConfig) *pb.ProviderConfig {
	if pc == nil {
		return nil
	}
	out := proto.Clone(pc).(*pb.ProviderConfig)
	for _, f := range secretFields {
		visitField(out.ProtoReflect(), f.path, func(m protoreflect.Message, fd protoreflect.FieldDescriptor) {
			switch f.kind {
			case secretValue:
				if m.Get(fd).String() != "" {
					m.Set(fd, protoreflect.ValueOfString(Redacted))
				}
			case secretMapValues:
				mp := m.Mutable(fd).Map()
				mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
					mp.Set(k, protoreflect.ValueOfString(Redacted))
					return true
				})
			case secretURL:
				m.Set(fd, protoreflect.ValueOfString(redactURL(m.Get(fd).String())))
			case secretStruct:
				if st, ok := m.Get(fd).Message().Interface().(*structpb.Struct); ok {
					redactStruct(st, false)
				}
			}
		})
	}
	return out
}

// secretPathError reports a path of secretFields that names no field of
// ProviderConfig (the table and the proto went apart), or nil.
func secretPathError(path string) error {
	md := (&pb.ProviderConfig{}).ProtoReflect().Descriptor()
	parts := strings.Split(path, ".")
	for i, name := range parts {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Errorf("secret field %s: %q is not a field of %s", path, name, md.FullName())
		}
		if i < len(parts)-1 {
			if fd.Message() == nil {
				return fmt.Errorf("secret field %s: %q is not a message", path, name)
			}
			md = fd.Message()
		}
	}
	return nil
}

// visitField calls fn with the message holding the field at path and its
// descriptor, when every message on the way is set.
func visitField(m protoreflect.Message, path string, fn func(protoreflect.Message, protoreflect.FieldDescriptor)) {
	parts := strings.Split(path, ".")
	for i, name := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			// not reached: TestSecretSchemaComplete resolves every path
			// of secretFields against the descriptors (secretPathError)
			return
		}
		if !m.Has(fd) {
			return
		}
		if i == len(parts)-1 {
			fn(m, fd)
			return
		}
		m = m.Mutable(fd).Message()
	}
}

// redactURL hides the user info, query values and fragment of a URL. A
// value that is not a URL with a scheme is returned as is (host:port).
func redactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redactedURLPart
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(redactedURLPart, redactedURLPart)
		} else {
			u.User = url.User(redactedURLPart)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = redactedURLPart
		} else {
			for k, vs := range q {
				for i := range vs {
					vs[i] = redactedURLPart
				}
				q[k] = vs
			}
			u.RawQuery = q.Encode()
		}
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = redactedURLPart, ""
	}
	return u.String()
}

// urlSecrets are the secret substrings of a URL, raw and decoded.
func urlSecrets(raw string) []string {
	if !strings.Contains(raw, "://") {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.String(), u.User.Username())
		if pw, has := u.User.Password(); has {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for _, vs := range q {
				for _, v := range vs {
					out = append(out, v, url.QueryEscape(v))
				}
			}
		}
	}
	if u.Fragment != "" {
		out = append(out, u.Fragment, u.EscapedFragment())
	}
	return out
}

func redactStruct(s *structpb.Struct, all bool) {
	for k, v := range s.GetFields() {
		s.Fields[k] = redactValue(v, all || customSecretKeyRe.MatchString(k))
	}
}

func redactValue(v *structpb.Value, secret bool) *structpb.Value {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		redactStruct(x.StructValue, secret)
		return v
	case *structpb.Value_ListValue:
		for i, e := range x.ListValue.GetValues() {
			x.ListValue.Values[i] = redactValue(e, secret)
		}
		return v
	case *structpb.Value_StringValue:
		if secret {
			return structpb.NewStringValue(Redacted)
		}
		if r := redactURL(x.StringValue); r != x.StringValue {
			return structpb.NewStringValue(r)
		}
		return v
	case *structpb.Value_NumberValue, *structpb.Value_BoolValue:
		if secret {
			return structpb.NewStringValue(Redacted)
		}
	}
	return v
}

// unredact puts the stored secrets back where an update carries the
// Redacted placeholder (a config read back and sent again keeps its secrets).
func unredact(next, cur *pb.ProviderConfig) {
	if next == nil || cur == nil {
		return
	}
	cm := cur.ProtoReflect()
	for _, f := range secretFields {
		visitField(next.ProtoReflect(), f.path, func(m protoreflect.Message, fd protoreflect.FieldDescriptor) {
			var old protoreflect.Value
			found := false
			visitField(cm, f.path, func(om protoreflect.Message, ofd protoreflect.FieldDescriptor) {
				old, found = om.Get(ofd), true
			})
			if !found {
				return
			}
			switch f.kind {
			case secretValue:
				if m.Get(fd).String() == Redacted {
					m.Set(fd, old)
				}
			case secretMapValues:
				mp, om := m.Mutable(fd).Map(), old.Map()
				mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
					if v.String() == Redacted && om.Has(k) {
						mp.Set(k, om.Get(k))
					}
					return true
				})
			case secretURL:
				m.Set(fd, protoreflect.ValueOfString(restoreURL(m.Get(fd).String(), old.String())))
			case secretStruct:
				ns, ok1 := m.Get(fd).Message().Interface().(*structpb.Struct)
				os, ok2 := old.Message().Interface().(*structpb.Struct)
				if ok1 && ok2 {
					restoreStruct(ns, os)
				}
			}
		})
	}
}

func restoreURL(next, cur string) string {
	if next != "" && next == redactURL(cur) && next != cur {
		return cur
	}
	return next
}

func restoreStruct(next, cur *structpb.Struct) {
	for k, v := range next.GetFields() {
		old, ok := cur.GetFields()[k]
		if !ok {
			continue
		}
		switch x := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			if x.StringValue == Redacted || (x.StringValue != old.GetStringValue() && x.StringValue == redactURL(old.GetStringValue())) {
				next.Fields[k] = old
			}
		case *structpb.Value_StructValue:
			if old.GetStructValue() != nil {
				restoreStruct(x.StructValue, old.GetStructValue())
			}
		case *structpb.Value_ListValue:
			ol := old.GetListValue().GetValues()
			for i, e := range x.ListValue.GetValues() {
				switch {
				case i >= len(ol):
				case e.GetStringValue() == Redacted ||
					(e.GetStringValue() != "" && e.GetStringValue() != ol[i].GetStringValue() && e.GetStringValue() == redactURL(ol[i].GetStringValue())):
					x.ListValue.Values[i] = ol[i]
				case e.GetStructValue() != nil && ol[i].GetStructValue() != nil:
					restoreStruct(e.GetStructValue(), ol[i].GetStructValue())
				}
			}
		}
	}
}

// secretValues returns every secret string of pc (secretFields), with the
// forms they take on the wire (an Authorization header built from them).
func secretValues(pc *pb.ProviderConfig) []string {
	if pc == nil {
		return nil
	}
	var out []string
	m := proto.Clone(pc).ProtoReflect()
	for _, f := range secretFields {
		visitField(m, f.path, func(m protoreflect.Message, fd protoreflect.FieldDescriptor) {
			switch f.kind {
			case secretValue:
				out = append(out, m.Get(fd).String())
			case secretMapValues:
				m.Get(fd).Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
					out = append(out, v.String())
					return true
				})
			case secretURL:
				out = append(out, urlSecrets(m.Get(fd).String())...)
			case secretStruct:
				if st, ok := m.Get(fd).Message().Interface().(*structpb.Struct); ok {
					out = append(out, structSecrets(st, false)...)
				}
			}
		})
	}
	sec := pc.GetSecurity()
	if t := sec.GetBearerToken(); t != "" {
		out = append(out, "Bearer "+t)
	}
	if ba := sec.GetBasicAuth(); ba.GetUsername() != "" && ba.GetPassword() != "" {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(ba.GetUsername()+":"+ba.GetPassword())))
	}
	return out
}

func structSecrets(s *structpb.Struct, all bool) []string {
	var out []string
	for k, v := range s.GetFields() {
		out = append(out, valueSecrets(v, all || customSecretKeyRe.MatchString(k))...)
	}
	return out
}

func valueSecrets(v *structpb.Value, secret bool) []string {
	switch x := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		return structSecrets(x.StructValue, secret)
	case *structpb.Value_ListValue:
		var out []string
		for _, e := range x.ListValue.GetValues() {
			out = append(out, valueSecrets(e, secret)...)
		}
		return out
	case *structpb.Value_StringValue:
		if secret {
			return []string{x.StringValue}
		}
		return urlSecrets(x.StringValue)
	}
	return nil
}

// scrubber removes the secrets of one provider config from free text:
// error messages, health history, last_error, log lines. A nil scrubber
// changes nothing.
type scrubber struct {
	r interface{ Replace(string) string }
}

// oneSecret replaces one secret. strings.NewReplacer with a single old
// string builds a Boyer-Moore table in time quadratic in a repetitive
// secret (3 s for 64 KiB of one letter, hours for a 4 MiB bearer token a
// caller may send); strings.ReplaceAll has no such table.
type oneSecret struct{ old, new string }

func (o oneSecret) Replace(t string) string { return strings.ReplaceAll(t, o.old, o.new) }

// newScrubber returns the scrubber of the configs' secrets (nil when they
// have none).
func newScrubber(pcs ...*pb.ProviderConfig) *scrubber {
	seen := map[string]bool{}
	var secrets []string
	var all []string
	for _, pc := range pcs {
		all = append(all, secretValues(pc)...)
	}
	for _, s := range all {
		if len(s) >= minScrubLen && s != Redacted && !seen[s] {
			seen[s] = true
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	// Longest first: a URL's whole user info before its password.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	if len(secrets) == 1 {
		return &scrubber{r: oneSecret{old: secrets[0], new: redactedURLPart}}
	}
	// (with two or more, NewReplacer builds a trie, linear in their length)
	args := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		args = append(args, s, redactedURLPart)
	}
	return &scrubber{r: strings.NewReplacer(args...)}
}

// str scrubs a text.
func (s *scrubber) str(t string) string {
	if s == nil {
		return t
	}
	return s.r.Replace(t)
}

// err scrubs an error's text; errors.Is and errors.As still see the
// original chain.
func (s *scrubber) err(err error) error {
	if s == nil || err == nil {
		return err
	}
	msg := err.Error()
	clean := s.r.Replace(msg)
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, iss := range ve.Issues {
			iss.Message, iss.Suggestion = s.r.Replace(iss.GetMessage()), s.r.Replace(iss.GetSuggestion())
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError is an error whose text had secrets removed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
