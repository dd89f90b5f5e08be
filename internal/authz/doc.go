// Package authz decides which callers may call which method families of the
// metrics service, the management service and the Prometheus HTTP API: a
// principal (named by the collector's authenticator) has roles, a role
// allows method families. It also checks, on the whole collector
// configuration, that every `auth.authenticator` names a server
// authenticator (see CheckAuthenticators).
package authz
