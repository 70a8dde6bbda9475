package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fuzzPosts are the POST operations that read a body, by index.
var fuzzPosts = []string{"/v1/reports", "/v1/exports", "/v1/imports", "/v1/sandbox/inboxes", "/v1/webhooks/secret/rotate", "/v1/sandbox/keys"}

// FuzzPostBodies sends request bodies (with a Content-Type and an
// Idempotency-Key, both fuzzed too) to every POST of the API through the
// real handler. Whatever arrives, the answer is never 5xx, and every 4xx is
// an application/problem+json whose status member is the HTTP status. The
// scenario objects of the simulate field arrive this way too.
func FuzzPostBodies(f *testing.F) {
	seeds := []struct {
		op          uint8
		body, ctype string
		idem        string
	}{
		{0, `{"title":"January sales","from":"2026-01-01","to":"2026-01-31"}`, "application/json", ""},
		{0, `{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":5,"outcome":"fail","fail_code":"upstream_unavailable","fail_at_percent":50}}`, "application/json", "k1"},
		{0, `{"from":"2026-01-31","to":"2026-01-01","simulate":{"outcome":"stall","fail_code":"x"}}`, "application/json", ""},
		{0, `{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":1e308}}`, "application/json", ""},
		{0, `{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":-0}}`, "application/json; charset=utf-8", ""},
		{1, `{"format":"csv","from":"2026-01-01","to":"2026-03-31"}`, "application/json", ""},
		{1, `{"format":"xml"}`, "application/json", `"quoted"`},
		{2, `{"callback_url":"https://hooks.example.com/x","products":[{"sku":"A-1","name":"Lamp","price_cents":1200}]}`, "application/json", ""},
		{2, `{"callback_url":"http://127.0.0.1/","products":[]}`, "application/json", ""},
		{2, `{"products":[{"sku":"","price_cents":-1},{}]}`, "application/json", "\x00"},
		{3, `{}`, "application/json", ""},
		{4, ``, "", ""},
		{5, ``, "", ""},
		{0, `{"from":`, "application/json", ""},
		{0, `[]`, "application/json", ""},
		{0, `null`, "text/plain", ""},
		{0, "\xff\xfe", "application/cbor", ""},
		{0, `{"from":"2026-01-01","to":"2026-01-31","from":"x"}`, "application/json", ""},
	}
	for _, s := range seeds {
		f.Add(s.op, s.body, s.ctype, s.idem)
	}
	cfg := testConfig()
	cfg.QueueSize, cfg.Workers, cfg.TimeScale = 1_000_000, 4, 0.0001
	s, err := New(cfg, Deps{DB: newTestDB(f, ""), River: fastRiver, Logger: slog.New(slog.DiscardHandler), Policies: noRateLimits()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	h := s.Handler()
	// Jobs are not run (the engine is not started): the fuzz is about
	// parsing, and this keeps each input cheap. Keys rotate so no key meets
	// its limit of unfinished jobs.
	var key string
	calls := 0
	newKey := func(t testing.TB) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/sandbox/keys", nil))
		var k struct{ Key string }
		if err := json.Unmarshal(rec.Body.Bytes(), &k); err != nil {
			t.Fatalf("POST /v1/sandbox/keys: %d %s", rec.Code, rec.Body)
		}
		key = k.Key
	}
	f.Fuzz(func(t *testing.T, op uint8, body, ctype, idem string) {
		if calls%200 == 0 {
			newKey(t)
		}
		calls++
		path := fuzzPosts[int(op)%len(fuzzPosts)]
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if ctype != "" {
			req.Header["Content-Type"] = []string{ctype}
		}
		if idem != "" {
			req.Header["Idempotency-Key"] = []string{idem}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q (Content-Type %q, Idempotency-Key %q): %d\n%s", path, body, ctype, idem, rec.Code, rec.Body)
		}
		if rec.Code < 400 {
			return
		}
		mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		if mt != "application/problem+json" {
			t.Fatalf("POST %s %q: %d with Content-Type %q", path, body, rec.Code, rec.Header().Get("Content-Type"))
		}
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
			Type   string `json:"type"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Code == "" {
			t.Fatalf("POST %s %q: %d with problem %s (%v)", path, body, rec.Code, rec.Body, err)
		}
		if _, ok := s.Catalog().Entry(p.Code); !ok {
			t.Fatalf("POST %s %q: problem code %q is not in the catalog", path, body, p.Code)
		}
	})
}
