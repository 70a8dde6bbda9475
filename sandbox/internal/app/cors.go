package app

import (
	"net/http"
	"slices"
	"strings"
)

// CORS settings for a docs site published on another origin than the
// sandbox. The API authenticates with a bearer header, never cookies, so no
// credentials mode is needed.
var (
	corsExpose  = "Location, Retry-After, RateLimit, RateLimit-Policy, Idempotent-Replayed, Content-Disposition, WWW-Authenticate, Trace-Id"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
	corsMethods = "GET, POST, PUT, DELETE"
)

// cors wraps the API: for an allowed Origin it answers preflights and
// exposes the headers an async client must read (R37): without
// Access-Control-Expose-Headers a page on another origin could not see
// Location or Retry-After, and could not follow a job.
func cors(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	all := slices.Contains(allowed, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || (!all && !slices.Contains(allowed, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExpose)
		next.ServeHTTP(w, r)
	})
}

// parseOrigins reads a comma-separated list of origins.
func parseOrigins(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			out = append(out, o)
		}
	}
	return out
}
