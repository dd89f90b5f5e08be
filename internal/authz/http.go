package authz

import (
	"encoding/json"
	"net/http"
)

// HTTPMiddleware refuses requests whose caller may not call family f with
// 403 and a Prometheus API error body. It runs inside the confighttp
// server, after its authenticator (which answers 401 itself).
func (a *Authorizer) HTTPMiddleware(f Family, next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal := a.Principal(r.Context(), r.Header.Values("Authorization"))
		if err := a.Allow(principal, r.URL.Path, f); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"status":    "error",
				"errorType": "forbidden",
				"error":     err.Error(),
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}
