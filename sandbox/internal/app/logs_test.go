package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNoSecretsInLogs runs the webhook flows with debug logs on, through a
// shutdown that leaves a webhook pending, and checks that no credential
// reaches the logs: API keys, webhook signing secrets, inbox ids (an
// inbox URL is a bearer credential) and tokens in a callback URL's query
// string.
func TestNoSecretsInLogs(t *testing.T) {
	var logs exBuffer // safe for concurrent writes
	cfg := testConfig()
	cfg.AllowPrivateCallbacks = true
	d := Deps{DB: newTestDB(t, ""), River: fastRiver, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	withoutLimits(&cfg, &d)
	s, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ts := &testSandbox{s: s, srv: srv, clock: s.clock, seen: newProblemLog()}

	// A receiver that always fails, so attempts are logged and one is
	// still waiting for a retry at shutdown.
	var hits sync.WaitGroup
	hits.Add(1)
	var once sync.Once
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(hits.Done)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer recv.Close()

	key := ts.key(t)
	secret := ts.do(t, http.MethodGet, "/v1/webhooks/secret", key, nil).json(t)["secret"].(string)
	rotated := ts.do(t, http.MethodPost, "/v1/webhooks/secret/rotate", key, nil).json(t)["secret"].(string)
	in := ts.mustInbox(t, key)

	const token = "qs-token-5f2b9c"
	// (User info in a callback URL is refused when the import is created.)
	callback := recv.URL + "/hooks/accepted?token=" + token
	r1 := ts.mustStart(t, key, "/v1/imports", importBody(in.URL, rows("SKU-1")))
	r2 := ts.mustStart(t, key, "/v1/imports", importBody(callback, rows("SKU-2")))
	ts.mustFollow(t, key, r1.Header.Get("Location"))
	ts.mustFollow(t, key, r2.Header.Get("Location"))
	waitFor(t, "a delivery in the inbox", func() bool {
		ds, _ := ts.do(t, http.MethodGet, "/v1/sandbox/inboxes/"+in.ID+"/deliveries", key, nil).json(t)["deliveries"].([]any)
		return len(ds) > 0
	})
	hits.Wait()

	closing, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if err := s.Close(closing); err != nil {
		t.Fatalf("Close: %v", err)
	}

	out := logs.String()
	for _, want := range []string{"webhook attempt", "inbox " + in.ID[:8] + "…", "/hooks/accepted?redacted"} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %q, so this test would not see a leak there:\n%s", want, out)
		}
	}
	for name, secret := range map[string]string{
		"API key": key, "webhook secret": secret, "rotated webhook secret": rotated, "inbox secret": in.Secret,
		"inbox id": in.ID, "query token": token,
	} {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("the %s %q is in the logs:\n%s", name, secret, out)
		}
	}
}
