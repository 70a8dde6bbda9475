package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestCORS is R37 at the HTTP level (the browser test of the try-it issue
// checks it in Chromium): an allowed origin gets its preflight answered and
// can read Location, Retry-After and the RateLimit fields; others get nothing.
func TestCORS(t *testing.T) {
	ts := newSandbox(t, nil, func(c *Config, _ *Deps) { c.CORSOrigins = []string{"https://docs.example.com"} })
	key := ts.key(t)

	pre := ts.do(t, http.MethodOptions, "/v1/reports", "", nil,
		"Origin", "https://docs.example.com", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://docs.example.com" {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	for _, h := range []string{"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"} {
		if !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), h) {
			t.Errorf("preflight does not allow %s", h)
		}
	}

	r := ts.do(t, http.MethodPost, "/v1/reports", key, reportBody(nil), "Origin", "https://docs.example.com")
	expose := r.Header.Get("Access-Control-Expose-Headers")
	for _, h := range []string{"Location", "Retry-After", "RateLimit", "RateLimit-Policy"} {
		if !strings.Contains(expose, h) {
			t.Errorf("R37: %s not in Access-Control-Expose-Headers %q", h, expose)
		}
	}

	other := ts.do(t, http.MethodPost, "/v1/reports", key, reportBody(nil), "Origin", "https://evil.example")
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an origin not in the list got Access-Control-Allow-Origin")
	}
	good, bad := testConfig(), testConfig()
	good.CORSOrigins = []string{"*", "http://localhost:3000"}
	bad.CORSOrigins = []string{"docs.example.com"}
	if err := good.Validate(); err != nil {
		t.Errorf("valid origins refused: %v", err)
	}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "-cors-origins") {
		t.Errorf("an origin without a scheme: %v", err)
	}
}
