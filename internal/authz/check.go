package authz

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
)

// AuthenticatorKind says which side an authenticator type serves.
type AuthenticatorKind int

// The kinds of authenticator.
const (
	// KindServer authenticates incoming calls (receivers, extensions).
	KindServer AuthenticatorKind = 1 << iota
	// KindClient authenticates outgoing calls (exporters).
	KindClient
)

// AuthenticatorTypes are the authenticator extension types CheckAuthenticators
// knows, with what they can do given their config. Add an entry when a new
// authenticator joins the distribution (builder-config.yaml).
var AuthenticatorTypes = map[string]func(cfg map[string]any) AuthenticatorKind{
	// basicauth is a server with `htpasswd`, a client with `client_auth`.
	"basicauth": func(cfg map[string]any) AuthenticatorKind {
		if _, ok := cfg["htpasswd"]; ok {
			return KindServer
		}
		return KindClient
	},
	"bearertokenauth": func(map[string]any) AuthenticatorKind { return KindServer | KindClient },
	"oidc":            func(map[string]any) AuthenticatorKind { return KindServer },
	"oauth2client":    func(map[string]any) AuthenticatorKind { return KindClient },
	"headers_setter":  func(map[string]any) AuthenticatorKind { return KindClient },
	"sigv4auth":       func(map[string]any) AuthenticatorKind { return KindClient },
}

// CheckAuthenticators checks, on the whole resolved collector configuration
// (the map a confmap converter sees), that every `auth.authenticator` of a
// receiver, an extension or a ServerExporters exporter names a server
// authenticator, and every one of another exporter a client authenticator
// (receivers and extensions of this distribution have no client `auth`),
// that is configured under `extensions`
// and enabled in `service.extensions`. The collector itself only finds out
// when the server starts; this lets `validate` catch it.
func CheckAuthenticators(conf map[string]any) error {
	exts := map[component.ID]map[string]any{}
	for k, v := range asMap(conf["extensions"]) {
		var id component.ID
		if err := id.UnmarshalText([]byte(k)); err != nil {
			continue // the collector reports bad IDs itself
		}
		exts[id] = asMap(v)
	}
	enabled := map[component.ID]bool{}
	if svc := asMap(conf["service"]); svc != nil {
		if list, ok := svc["extensions"].([]any); ok {
			for _, v := range list {
				var id component.ID
				if s, ok := v.(string); ok && id.UnmarshalText([]byte(s)) == nil {
					enabled[id] = true
				}
			}
		}
	}
	var errs []error
	for _, section := range []string{"receivers", "extensions", "exporters"} {
		for name, cfg := range asMap(conf[section]) {
			want := KindServer
			if section == "exporters" && !ServerExporters[typeOf(name)] {
				want = KindClient
			}
			walkAuth(asMap(cfg), []string{section, name}, func(path []string, ref string) {
				if err := checkRef(ref, want, exts, enabled); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", strings.Join(path, "::"), err))
				}
			})
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// ServerExporters are the exporter types whose `auth` is a server's (they
// serve their data, e.g. the prometheus exporter's /metrics).
var ServerExporters = map[string]bool{"prometheus": true}

// typeOf returns the type part of a component ID string.
func typeOf(id string) string {
	typ, _, _ := strings.Cut(id, "/")
	return typ
}

func checkRef(ref string, want AuthenticatorKind, exts map[component.ID]map[string]any, enabled map[component.ID]bool) error {
	side := "server"
	if want == KindClient {
		side = "client"
	}
	var id component.ID
	if err := id.UnmarshalText([]byte(ref)); err != nil {
		return fmt.Errorf("%q is not an extension ID: %w", ref, err)
	}
	cfg, ok := exts[id]
	if !ok {
		return fmt.Errorf("authenticator %q is not configured under extensions; add a %s authenticator (%s) there and to service::extensions", ref, side, typesFor(want))
	}
	if !enabled[id] {
		return fmt.Errorf("authenticator %q is not enabled; add it to service::extensions", ref)
	}
	kind, known := AuthenticatorTypes[id.Type().String()]
	if !known {
		return fmt.Errorf("extension %q (type %s) is not an authenticator; use a %s authenticator (%s)", ref, id.Type(), side, typesFor(want))
	}
	if kind(cfg)&want == 0 {
		if id.Type().String() == "basicauth" && want == KindServer {
			return fmt.Errorf("extension %q is a client-only authenticator (basicauth with client_auth); a server needs basicauth with htpasswd (file or inline)", ref)
		}
		if id.Type().String() == "basicauth" {
			return fmt.Errorf("extension %q is a server-only authenticator (basicauth with htpasswd); a client needs basicauth with client_auth", ref)
		}
		return fmt.Errorf("extension %q (type %s) is not a %s authenticator; use %s", ref, id.Type(), side, typesFor(want))
	}
	return nil
}

// walkAuth calls fn for every `auth: {authenticator: ID}` under m.
func walkAuth(m map[string]any, path []string, fn func(path []string, ref string)) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := append(slices.Clone(path), k)
		if k == "auth" {
			if ref, ok := asMap(m[k])["authenticator"].(string); ok {
				fn(append(p, "authenticator"), ref)
				continue
			}
		}
		switch v := m[k].(type) {
		case map[string]any:
			walkAuth(v, p, fn)
		case []any:
			for i, e := range v {
				if em, ok := e.(map[string]any); ok {
					walkAuth(em, append(slices.Clone(p), fmt.Sprint(i)), fn)
				}
			}
		}
	}
}

// typesFor names the authenticators of this distribution for a side.
func typesFor(want AuthenticatorKind) string {
	if want == KindClient {
		return "basicauth with client_auth, or bearertokenauth"
	}
	return "basicauth with htpasswd, or bearertokenauth"
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
