package authz

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/config/configopaque"
)

// Family is a group of methods allowed together.
type Family string

// The method families.
const (
	// FamilyIngest is RecordMetric and RecordBatchMetrics.
	FamilyIngest Family = "ingest"
	// FamilyRead is GetMetrics, QueryMetrics, GetMetricsSummary,
	// GetMetricMetadata and the Prometheus HTTP API.
	FamilyRead Family = "read"
	// FamilyStream is StreamMetrics.
	FamilyStream Family = "stream"
	// FamilyDefinitions is RegisterMetric and UnregisterMetric that keeps
	// the data.
	FamilyDefinitions Family = "definitions"
	// FamilyDestructive is UnregisterMetric with delete_data or
	// data_retention, and DeleteMetricsProvider.
	FamilyDestructive Family = "destructive"
	// FamilyManagement is CreateMetricsProvider, UpdateMetricsProvider,
	// ListMetricsProviders and GetProviderStats.
	FamilyManagement Family = "management"
	// FamilyAll stands for every family, in a role.
	FamilyAll Family = "all"
)

// Families lists every family, without FamilyAll.
var Families = []Family{FamilyIngest, FamilyRead, FamilyStream, FamilyDefinitions, FamilyDestructive, FamilyManagement}

func knownFamily(f Family) bool {
	return f == FamilyAll || slices.Contains(Families, f)
}

// Config is the `authorization` block of a server. When it is absent every
// caller may call every method.
type Config struct {
	// Roles maps a role name to the families it allows (or `all`).
	Roles map[string][]Family `mapstructure:"roles"`
	// Principals maps a principal (the basicauth user name, or the name a
	// bearer token is given in Tokens/TokenFile) to its roles.
	Principals map[string][]string `mapstructure:"principals"`
	// Anonymous are the roles of callers without a principal: every caller
	// of a server without an authenticator, and callers whose bearer token
	// has no name. Empty: they are refused.
	Anonymous []string `mapstructure:"anonymous"`
	// Tokens names bearer tokens: principal -> token, for servers whose
	// authenticator is bearertokenauth (which names no principal). Use
	// ${env:VAR} or ${file:PATH}; the same tokens go into the
	// bearertokenauth extension's `tokens`.
	Tokens map[string]configopaque.String `mapstructure:"tokens"`
	// TokenFile names bearer tokens from a file of lines `<token>
	// <principal>`: the same file bearertokenauth reads with `filename`
	// (it takes the first field of each line and ignores the rest).
	TokenFile string `mapstructure:"token_file"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks that every family and role is known; messages name the
// field.
func (cfg *Config) Validate() error {
	var errs []error
	for _, role := range sortedKeys(cfg.Roles) {
		if len(cfg.Roles[role]) == 0 {
			errs = append(errs, fmt.Errorf("roles.%s: lists no family; use some of %s", role, familyList()))
		}
		for _, f := range cfg.Roles[role] {
			if !knownFamily(f) {
				errs = append(errs, fmt.Errorf("roles.%s: unknown family %q; use %s", role, f, familyList()))
			}
		}
	}
	for _, p := range sortedKeys(cfg.Principals) {
		for _, role := range cfg.Principals[p] {
			if _, ok := cfg.Roles[role]; !ok {
				errs = append(errs, fmt.Errorf("principals.%s: role %q is not defined under roles", p, role))
			}
		}
	}
	for _, role := range cfg.Anonymous {
		if _, ok := cfg.Roles[role]; !ok {
			errs = append(errs, fmt.Errorf("anonymous: role %q is not defined under roles", role))
		}
	}
	seen := map[string]string{}
	for _, p := range sortedKeys(cfg.Tokens) {
		tok := string(cfg.Tokens[p])
		switch {
		case tok == "":
			errs = append(errs, fmt.Errorf("tokens.%s: empty token; set it, e.g. ${env:TOKEN_VAR}", p))
		case strings.ContainsAny(tok, " \t\n"):
			errs = append(errs, fmt.Errorf("tokens.%s: a token has no white space", p))
		case seen[tok] != "":
			errs = append(errs, fmt.Errorf("tokens.%s: same token as tokens.%s; give each principal its own token", p, seen[tok]))
		}
		seen[tok] = p
		if _, ok := cfg.Principals[p]; !ok {
			errs = append(errs, fmt.Errorf("tokens.%s: principal has no roles; add it under principals", p))
		}
	}
	return errors.Join(errs...)
}

func familyList() string {
	names := make([]string, 0, len(Families)+1)
	for _, f := range Families {
		names = append(names, string(f))
	}
	return strings.Join(append(names, string(FamilyAll)), ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
