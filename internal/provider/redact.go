package provider

import (
	"net/url"
	"regexp"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/metricsmodule/metricsmodule/proto/metricsmodule/v1"
)

// Redacted replaces a secret in every response.
const Redacted = "[REDACTED]"

// secretKeyRe matches the keys of a CUSTOM exporter config whose values are
// secrets; under a matching key every value is redacted (e.g. all headers).
var secretKeyRe = regexp.MustCompile(`(?i)(pass(word|wd)?|secret|token|api[_-]?key|^key$|authorization|credential|private[_-]?key|bearer|headers|cookie|session|signature)`)

// Redact returns a copy of pc with every secret replaced by Redacted:
// header values, the bearer token, the basic auth password, passwords in
// URLs, and the values of secret-looking keys of a custom exporter config.
func Redact(pc *pb.ProviderConfig) *pb.ProviderConfig {
	if pc == nil {
		return nil
	}
	out := proto.Clone(pc).(*pb.ProviderConfig)
	s := out.GetSettings()
	if p := s.GetPrometheus(); p != nil {
		redactMap(p.Headers)
		p.PushGatewayUrl = redactURL(p.PushGatewayUrl)
		p.RemoteWriteUrl = redactURL(p.RemoteWriteUrl)
	}
	if o := s.GetOpentelemetry(); o != nil {
		redactMap(o.Headers)
		o.Endpoint = redactURL(o.Endpoint)
	}
	if c := s.GetCustom(); c != nil && c.Config != nil {
		redactStruct(c.Config, false)
	}
	if sec := out.GetSecurity(); sec != nil {
		if sec.BearerToken != "" {
			sec.BearerToken = Redacted
		}
		if sec.BasicAuth != nil && sec.BasicAuth.Password != "" {
			sec.BasicAuth.Password = Redacted
		}
	}
	return out
}

func redactMap(m map[string]string) {
	for k := range m {
		m[k] = Redacted
	}
}

// redactURL hides the password of a URL's user info.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); !has {
		return raw
	}
	u.User = url.UserPassword(u.User.Username(), "REDACTED")
	return u.String()
}

func redactStruct(s *structpb.Struct, all bool) {
	for k, v := range s.GetFields() {
		s.Fields[k] = redactValue(v, all || secretKeyRe.MatchString(k))
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
	ns, cs := next.GetSettings(), cur.GetSettings()
	if p := ns.GetPrometheus(); p != nil {
		restoreMap(p.Headers, cs.GetPrometheus().GetHeaders())
		p.PushGatewayUrl = restoreURL(p.PushGatewayUrl, cs.GetPrometheus().GetPushGatewayUrl())
		p.RemoteWriteUrl = restoreURL(p.RemoteWriteUrl, cs.GetPrometheus().GetRemoteWriteUrl())
	}
	if o := ns.GetOpentelemetry(); o != nil {
		restoreMap(o.Headers, cs.GetOpentelemetry().GetHeaders())
		o.Endpoint = restoreURL(o.Endpoint, cs.GetOpentelemetry().GetEndpoint())
	}
	if c := ns.GetCustom(); c != nil && c.Config != nil && cs.GetCustom().GetConfig() != nil {
		restoreStruct(c.Config, cs.GetCustom().GetConfig())
	}
	if sec := next.GetSecurity(); sec != nil {
		if sec.BearerToken == Redacted {
			sec.BearerToken = cur.GetSecurity().GetBearerToken()
		}
		if sec.BasicAuth != nil && sec.BasicAuth.Password == Redacted {
			sec.BasicAuth.Password = cur.GetSecurity().GetBasicAuth().GetPassword()
		}
	}
}

func restoreMap(next, cur map[string]string) {
	for k, v := range next {
		if old, ok := cur[k]; ok && v == Redacted {
			next[k] = old
		}
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
				case e.GetStringValue() == Redacted:
					x.ListValue.Values[i] = ol[i]
				case e.GetStructValue() != nil && ol[i].GetStructValue() != nil:
					restoreStruct(e.GetStructValue(), ol[i].GetStructValue())
				}
			}
		}
	}
}
