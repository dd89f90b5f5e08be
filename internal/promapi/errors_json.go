package promapi

import (
	"fmt"
	"net/http"
	"strings"
)

// jsonErrors answers the router's own refusals under /api/v1/ (unknown
// path: 404, wrong method: 405) with Prometheus' JSON error instead of
// net/http's plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" || !strings.HasPrefix(r.URL.Path, "/api/v1/") {
			mux.ServeHTTP(w, r)
			return
		}
		ew := &routeErrorWriter{ResponseWriter: w}
		mux.ServeHTTP(ew, r)
		switch ew.code {
		case http.StatusNotFound:
			writeJSON(w, http.StatusNotFound, response{Status: "error", ErrorType: "not_found",
				Error: fmt.Sprintf("%s %s: no such endpoint; see the receiver README for the served Prometheus API paths", r.Method, r.URL.Path)})
		case http.StatusMethodNotAllowed:
			writeJSON(w, http.StatusMethodNotAllowed, response{Status: "error", ErrorType: "bad_data",
				Error: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, w.Header().Get("Allow"))})
		}
	})
}

// routeErrorWriter swallows a 404 or 405 plain-text answer of the mux so
// jsonErrors can write the JSON one; anything else passes through.
type routeErrorWriter struct {
	http.ResponseWriter
	code int
}

func (e *routeErrorWriter) WriteHeader(code int) {
	if code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
		e.code = code
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *routeErrorWriter) Write(b []byte) (int, error) {
	if e.code != 0 {
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}
