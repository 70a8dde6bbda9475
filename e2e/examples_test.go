package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestJavaScriptExamplesInTheBrowser runs examples/js/poll.mjs and
// examples/js/events.mjs as a browser runs them (TestExamples in the
// sandbox runs them under Node): a page on one origin imports them as
// modules, under a CSP with no inline script, and calls a sandbox on
// another origin. It covers what only a browser does: fetch hides the 303
// (an opaque redirect), cross-origin reads of Location and Retry-After,
// and reading an event stream with fetch.
func TestJavaScriptExamplesInTheBrowser(t *testing.T) {
	e := mustEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageOrigin := "http://" + ln.Addr().String()
	sandboxURL, err := start(e.sandbox, "serve", "-database", "memory", "-addr", "127.0.0.1:0", "-time-scale", timeScale, "-cors-origins", pageOrigin)
	if err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	page := http.FileServer(http.Dir(filepath.Join("testdata", "browser-examples")))
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /run.mjs", page)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("GET /examples/js/", http.StripPrefix("/examples/js/", http.FileServer(http.Dir(filepath.Join("..", "examples", "js")))))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' "+sandboxURL+"; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	tb := newTab(t, e)
	// The refused request below is refused on purpose.
	tb.expect("status of 422 (Unprocessable Entity)")
	tb.do(t, chromedp.Navigate(pageOrigin+"/?sandbox="+url.QueryEscape(sandboxURL)),
		chromedp.WaitReady(chromedp.CSS("body[data-done]")))
	if msg := tb.text(t, "#error"); msg != "" {
		t.Fatalf("the page failed: %s", msg)
	}
	read := func(id string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(tb.text(t, "#"+id)), v); err != nil {
			t.Fatalf("#%s: %v", id, err)
		}
	}

	var report struct {
		ID, StatusURL, Status, ResultURL, ResultTitle string
		ResultStatus                                  int
		Updates                                       []int
	}
	read("report", &report)
	if want := sandboxURL + "/v1/jobs/" + report.ID; report.StatusURL != want {
		t.Errorf("status URL %q, want %q (Location read across origins)", report.StatusURL, want)
	}
	if report.Status != "succeeded" || report.ResultStatus != 200 || report.ResultTitle != "Browser" {
		t.Errorf("report: %+v, want succeeded with the report readable", report)
	}
	if len(report.Updates) == 0 || report.Updates[0] != 200 {
		t.Errorf("polls %v, want the job seen running (200) before its end", report.Updates)
	}
	if u, err := url.Parse(report.ResultURL); err != nil || u.Host != mustHost(t, sandboxURL) || len(u.Path) < len("/v1/reports/rpt_") || u.Path[:len("/v1/reports/rpt_")] != "/v1/reports/rpt_" {
		t.Errorf("result URL %q, want the report on the sandbox (the hidden 303 followed)", report.ResultURL)
	}

	var failed struct{ Status, Code string }
	read("failed", &failed)
	if failed.Status != "failed" || failed.Code != "upstream_unavailable" {
		t.Errorf("failed job: %+v, want failed with upstream_unavailable", failed)
	}

	var bad struct {
		Thrown bool
		Status int
		Code   string
	}
	read("bad", &bad)
	if !bad.Thrown || bad.Status != 422 || bad.Code == "" {
		t.Errorf("refused request: %+v, want a ProblemError with 422 and a catalog code", bad)
	}

	var events struct {
		Status       string
		Events       []string
		ResumedAfter []string
	}
	read("events", &events)
	if events.Status != "succeeded" || len(events.Events) < 2 || events.Events[len(events.Events)-1] != "succeeded" {
		t.Errorf("events: %+v, want a stream that ends with succeeded", events)
	}
	if len(events.ResumedAfter) != 1 || events.ResumedAfter[0] == "" {
		t.Errorf("events: resumed after %q, want one resume with the last event id", events.ResumedAfter)
	}
	seen := map[string]int{}
	for _, ev := range events.Events {
		seen[ev]++
	}
	if seen["succeeded"] != 1 {
		t.Errorf("events %v: the terminal event came %d times", events.Events, seen["succeeded"])
	}
	t.Logf("report polled with %v; events %v; resumed after id %v", report.Updates, events.Events, events.ResumedAfter)
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(fmt.Errorf("parse %q: %w", raw, err))
	}
	return u.Host
}
