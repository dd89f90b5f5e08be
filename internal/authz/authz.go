package authz

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
)

// PrincipalAttributes are the client.AuthData attributes that name the
// caller, in order: basicauth sets "username", oidc sets "subject".
var PrincipalAttributes = []string{"username", "subject"}

// DeniedError is a refusal: the principal has no role that allows the
// family of the method it called.
type DeniedError struct {
	// Principal is the caller; empty for an anonymous caller.
	Principal string
	// Method is what was called (gRPC method or HTTP path).
	Method string
	// Family is the method family of Method.
	Family Family
	// AllowedBy are the roles that allow Family, sorted.
	AllowedBy []string
}

func (e *DeniedError) Error() string {
	who := fmt.Sprintf("principal %q", e.Principal)
	fix := fmt.Sprintf("grant one under authorization.principals.%s", e.Principal)
	if e.Principal == "" {
		who = "anonymous caller"
		fix = "authenticate as a principal that has one, or list one under authorization.anonymous"
	}
	roles := "no role allows it; add one under authorization.roles"
	if len(e.AllowedBy) > 0 {
		roles = fmt.Sprintf("roles that allow it: %s; %s", strings.Join(e.AllowedBy, ", "), fix)
	}
	return fmt.Sprintf("permission denied: %s may not call %s (method family %q): %s", who, e.Method, e.Family, roles)
}

// Authorizer decides whether a principal may call a method family. A nil
// *Authorizer allows everything (no `authorization` block).
type Authorizer struct {
	principals map[string]map[Family]bool
	anonymous  map[Family]bool
	allowedBy  map[Family][]string
	tokens     map[string]string // inline token -> principal

	tokenFile  string
	fileMu     sync.Mutex
	fileMod    time.Time
	fileTokens map[string]string // token file token -> principal
}

// New builds the Authorizer of a validated cfg and reads its token file.
func New(cfg *Config) (*Authorizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}
	a := &Authorizer{
		principals: map[string]map[Family]bool{},
		allowedBy:  map[Family][]string{},
		tokens:     map[string]string{},
		tokenFile:  cfg.TokenFile,
	}
	families := func(roles []string) map[Family]bool {
		out := map[Family]bool{}
		for _, role := range roles {
			for _, f := range cfg.Roles[role] {
				if f == FamilyAll {
					for _, g := range Families {
						out[g] = true
					}
					continue
				}
				out[f] = true
			}
		}
		return out
	}
	for p, roles := range cfg.Principals {
		a.principals[p] = families(roles)
	}
	a.anonymous = families(cfg.Anonymous)
	for _, role := range sortedKeys(cfg.Roles) {
		for f := range families([]string{role}) {
			a.allowedBy[f] = append(a.allowedBy[f], role)
		}
	}
	for p, tok := range cfg.Tokens {
		a.tokens[string(tok)] = p
	}
	if a.tokenFile != "" {
		if err := a.reloadTokenFile(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Principal names the caller of ctx: the authenticator's user name
// (client.FromContext(ctx).Auth, see PrincipalAttributes), else the name of
// the bearer token in authorization (the values of the Authorization
// header), else "" (anonymous).
func (a *Authorizer) Principal(ctx context.Context, authorization []string) string {
	if auth := client.FromContext(ctx).Auth; auth != nil {
		for _, attr := range PrincipalAttributes {
			if s, ok := auth.GetAttribute(attr).(string); ok && s != "" {
				return s
			}
		}
	}
	if a == nil || (len(a.tokens) == 0 && a.tokenFile == "") {
		return ""
	}
	for _, v := range authorization {
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		tok := fields[len(fields)-1] // "<scheme> <token>" or "<token>"
		if p, ok := a.tokens[tok]; ok {
			return p
		}
		if p, ok := a.fileToken(tok); ok {
			return p
		}
	}
	return ""
}

// Allow returns nil when principal ("" for anonymous) may call method of
// family f, else a *DeniedError.
func (a *Authorizer) Allow(principal, method string, f Family) error {
	if a == nil {
		return nil
	}
	allowed := a.anonymous
	if principal != "" {
		if fams, ok := a.principals[principal]; ok {
			allowed = fams
		}
	}
	if allowed[f] {
		return nil
	}
	return &DeniedError{Principal: principal, Method: method, Family: f, AllowedBy: slices.Clone(a.allowedBy[f])}
}

// fileToken looks tok up in the token file, reading the file again when it
// changed since it was last read (bearertokenauth watches it too).
func (a *Authorizer) fileToken(tok string) (string, bool) {
	if a.tokenFile == "" {
		return "", false
	}
	a.fileMu.Lock()
	defer a.fileMu.Unlock()
	if p, ok := a.fileTokens[tok]; ok {
		return p, true
	}
	if st, err := os.Stat(a.tokenFile); err == nil && !st.ModTime().Equal(a.fileMod) {
		_ = a.reloadTokenFileLocked()
	}
	p, ok := a.fileTokens[tok]
	return p, ok
}

func (a *Authorizer) reloadTokenFile() error {
	a.fileMu.Lock()
	defer a.fileMu.Unlock()
	return a.reloadTokenFileLocked()
}

func (a *Authorizer) reloadTokenFileLocked() error {
	st, err := os.Stat(a.tokenFile)
	if err != nil {
		return fmt.Errorf("authorization.token_file: %w", err)
	}
	data, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return fmt.Errorf("authorization.token_file: %w", err)
	}
	tokens, err := ParseTokenFile(data)
	if err != nil {
		return fmt.Errorf("authorization.token_file %s: %w", a.tokenFile, err)
	}
	a.fileTokens, a.fileMod = tokens, st.ModTime()
	return nil
}

// ParseTokenFile reads lines `<token> <principal>` (the format bearertokenauth
// reads with `filename`: it keeps the first field of every line, so a file
// must hold no comment lines). Blank lines are skipped; a token without a
// principal is anonymous.
func ParseTokenFile(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		if prev, ok := out[fields[0]]; ok && prev != fields[1] {
			return nil, fmt.Errorf("line %d: token already names principal %q", n, prev)
		}
		out[fields[0]] = fields[1]
	}
	return out, sc.Err()
}
