package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// Tests of what keeps a public sandbox standing: request framing on the
// wire (RFC 9112 §6.1), the site answering GET and HEAD only and listing no
// directory, and the rate-limit flags.

// testSite is a built site small enough to read: pages, hashed assets in a
// directory without an index, and the 404 page.
func testSite() fs.FS {
	return fstest.MapFS{
		"index.html":             {Data: []byte("<!doctype html><title>Home</title>home")},
		"404.html":               {Data: []byte("<!doctype html><title>Not found</title>the 404 page")},
		"guides/poll/index.html": {Data: []byte("<!doctype html><title>Poll</title>poll")},
		"assets/site.abc123.css": {Data: []byte("body{}")},
		"assets/app.def456.js":   {Data: []byte("void 0")},
	}
}

// newServedSite runs a sandbox with a site as `serve` does (Run, on a real
// listener, so through the http.Server and its connections) and returns
// its address.
func newServedSite(t *testing.T) string {
	t.Helper()
	d := testDeps()
	d.DB = newTestDB(t, "")
	d.Site = testSite()
	s, err := New(testConfig(), d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return 30 s after its context ended")
		}
	})
	return ln.Addr().String()
}

// rawAnswer is one response read off a raw connection.
type rawAnswer struct {
	*http.Response
	body []byte
}

// rawExchange writes raw on a new connection, reads want responses, then
// reports whether the server closed the connection: it waits up to 5 s for
// the close when one is expected, briefly otherwise.
func rawExchange(t *testing.T, addr, raw string, want int, expectClosed bool) ([]rawAnswer, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var answers []rawAnswer
	for range want {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading answer %d of %d to %q: %v", len(answers)+1, want, raw, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, rawAnswer{res, body})
	}
	wait := 300 * time.Millisecond
	if expectClosed {
		wait = 5 * time.Second
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	extra, err := br.ReadByte()
	var ne net.Error
	switch {
	case err == nil:
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("%q: more than %d answers: %q", raw, want, append([]byte{extra}, rest...))
	case errors.As(err, &ne) && ne.Timeout():
		return answers, false
	}
	return answers, true
}

// TestFramingRefusesContentLengthWithTransferEncoding: a request with both
// Content-Length and Transfer-Encoding (which net/http alone would read by
// the chunked coding, keeping the connection for the next request) gets 400
// malformed_request and the connection closed, on API and site paths; so
// does an HTTP/1.0 request with Transfer-Encoding. The request pipelined
// behind it is never answered.
func TestFramingRefusesContentLengthWithTransferEncoding(t *testing.T) {
	addr := newServedSite(t)
	const next = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	body := `{"title":"T","from":"2026-01-01","to":"2026-01-31"}`
	chunk := func(s string) string { return fmt.Sprintf("%X\r\n%s\r\n0\r\n\r\n", len(s), s) }
	for _, tc := range []struct{ name, raw, says string }{
		{"API, Content-Length first", "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(body) + next,
			"both Content-Length and Transfer-Encoding"},
		{"API, Transfer-Encoding first", "POST /v1/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 200\r\nContent-Type: application/json\r\n\r\n" + chunk(body) + next,
			"both Content-Length and Transfer-Encoding"},
		{"API, lower case and Chunked", "POST /v1/sandbox/keys HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n" + next,
			"both Content-Length and Transfer-Encoding"},
		{"API GET", "GET /v1/jobs/job_x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
			"both Content-Length and Transfer-Encoding"},
		{"site page", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
			"both Content-Length and Transfer-Encoding"},
		{"site asset", "GET /assets/site.abc123.css HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + next,
			"both Content-Length and Transfer-Encoding"},
		{"site, unknown path", "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
			"both Content-Length and Transfer-Encoding"},
		{"HTTP/1.0 with both", "POST /v1/reports HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello" + next,
			"HTTP/1.0 and has Transfer-Encoding"},
		{"HTTP/1.0 with Transfer-Encoding alone", "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + next,
			"HTTP/1.0 and has Transfer-Encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers, closed := rawExchange(t, addr, tc.raw, 1, true)
			a := answers[0]
			if a.StatusCode != http.StatusBadRequest || !a.Close || !closed {
				t.Fatalf("%d, Connection: close %v, closed %v; want 400 with Connection: close, and the connection closed\n%s", a.StatusCode, a.Close, closed, a.body)
			}
			var p problems.Problem
			if err := json.Unmarshal(a.body, &p); err != nil || a.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("not a problem (%v, %s): %s", err, a.Header.Get("Content-Type"), a.body)
			}
			if p.Code != problems.MalformedRequest || p.Status != 400 || !strings.Contains(p.Detail, tc.says) || !strings.Contains(p.Detail, "RFC 9112") || p.Instance == "" {
				t.Errorf("problem %+v, want malformed_request saying %q", p, tc.says)
			}
		})
	}
}

// TestFramingFollowsTheConnection: the connection is followed request by
// request, so nothing but an ambiguous request is refused: keep-alive and
// pipelining go on, a body that looks like an ambiguous request is only a
// body, a chunked request alone is served (and its connection closed), and
// the refusals net/http makes by itself stay as they were.
func TestFramingFollowsTheConnection(t *testing.T) {
	addr := newServedSite(t)
	ambiguous := "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	fake := "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name   string
		raw    string
		status []int
		closed bool
	}{
		{"pipelined keep-alive", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nGET /guides/poll/ HTTP/1.1\r\nHost: x\r\n\r\n",
			[]int{200, 200, 200}, false},
		{"a body that looks like an ambiguous request", "POST /v1/sandbox/keys HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(fake)) + "\r\n\r\n" + fake + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			[]int{201, 200}, false},
		{"a body, then an ambiguous request", "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd" + ambiguous + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			[]int{405, 400}, true},
		{"lines ending in LF alone", "GET /healthz HTTP/1.1\nHost: x\n\n" + strings.ReplaceAll(ambiguous, "\r\n", "\n"),
			[]int{200, 400}, true},
		{"a folded line is not a header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			[]int{200, 200}, false},
		{"OPTIONS * answered by net/http, then an ambiguous request", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + ambiguous,
			[]int{200, 400}, true},
		{"chunked alone is served, then the connection closed", "POST /v1/sandbox/keys HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
			[]int{201}, true},
		{"HTTP/1.0 without Transfer-Encoding", "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
			[]int{200, 200}, true},
		// What net/http refuses by itself (text/plain, connection closed).
		{"net/http: Transfer-Encoding other than chunked", "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\nhello",
			[]int{501}, true},
		{"net/http: two Transfer-Encoding fields", "POST /v1/reports HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			[]int{501}, true},
		{"net/http: two different Content-Lengths", "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
			[]int{400}, true},
		{"net/http: space before the colon", "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\nhello",
			[]int{400}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers, closed := rawExchange(t, addr, tc.raw, len(tc.status), tc.closed)
			for i, a := range answers {
				if a.StatusCode != tc.status[i] {
					t.Errorf("answer %d: %d, want %d\n%s", i+1, a.StatusCode, tc.status[i], a.body)
				}
			}
			if closed != tc.closed {
				t.Errorf("connection closed: %v, want %v", closed, tc.closed)
			}
		})
	}
}

// siteGet sends one request to a site path; site answers are pages, not
// API problems, so ts.do (which checks problems) is not used.
func siteGet(t *testing.T, ts *testSandbox, method, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// TestSiteAnswersGetAndHeadOnly: site paths answer GET and HEAD; other
// methods get 405 with Allow: GET, HEAD. The API's own 405s stay catalog
// problems.
func TestSiteAnswersGetAndHeadOnly(t *testing.T) {
	ts := newSandbox(t, nil, func(_ *Config, d *Deps) { d.Site = testSite() })
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		if res, _ := siteGet(t, ts, m, "/guides/poll/"); res.StatusCode != 200 {
			t.Errorf("%s /guides/poll/: %d", m, res.StatusCode)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
		for _, p := range []string{"/", "/guides/poll/", "/assets/site.abc123.css", "/nope"} {
			res, body := siteGet(t, ts, m, p)
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(body, "GET and HEAD") {
				t.Errorf("%s %s: %d, Allow %q: %q; want 405 with Allow: GET, HEAD", m, p, res.StatusCode, res.Header.Get("Allow"), body)
			}
			if !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("%s %s: CSP %q", m, p, res.Header.Get("Content-Security-Policy"))
			}
		}
	}
	// The API's wrong methods are still problems, with their own Allow.
	r := ts.do(t, http.MethodDelete, "/v1/reports", "", nil)
	if r.StatusCode != http.StatusMethodNotAllowed || r.json(t)["code"] != problems.MethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("DELETE /v1/reports: %d, Allow %q: %s", r.StatusCode, r.Header.Get("Allow"), r.body)
	}
}

// TestSiteListsNoDirectories: a directory without an index.html answers the
// site's 404 page, with or without its trailing slash, never
// http.FileServer's listing of its files.
func TestSiteListsNoDirectories(t *testing.T) {
	ts := newSandbox(t, nil, func(_ *Config, d *Deps) { d.Site = testSite() })
	for _, p := range []string{"/assets/", "/assets", "/guides/", "/guides"} {
		res, body := siteGet(t, ts, http.MethodGet, p)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "the 404 page") || strings.Contains(body, "site.abc123.css") {
			t.Errorf("GET %s: %d %q, want the 404 page", p, res.StatusCode, body)
		}
	}
	// A directory with an index.html is a page.
	if res, body := siteGet(t, ts, http.MethodGet, "/guides/poll/"); res.StatusCode != 200 || body != "<!doctype html><title>Poll</title>poll" {
		t.Errorf("GET /guides/poll/: %d %q", res.StatusCode, body)
	}
	if res, _ := siteGet(t, ts, http.MethodGet, "/guides/poll"); res.StatusCode != http.StatusMovedPermanently {
		t.Errorf("GET /guides/poll: %d, want the redirect to /guides/poll/", res.StatusCode)
	}
}

// parseServeFlags reads serve's flags as `serve` does.
func parseServeFlags(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	envErr := bindFlags(fs, &cfg, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, envErr()
}

// withRateFlags runs a sandbox on the rate limits the flags set (and not
// on testDeps' loosened policies).
func withRateFlags(t *testing.T, env map[string]string, args ...string) func(*Config, *Deps) {
	t.Helper()
	parsed, err := parseServeFlags(t, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config, d *Deps) {
		c.RateLimits = parsed.RateLimits
		d.Policies = nil
	}
}

// TestRateLimitFlags: -rate-poll, -rate-start and -rate-keys (and their
// environment variables, which the flags override) change the policy each
// answer shows in RateLimit-Policy, and when the 429 comes.
func TestRateLimitFlags(t *testing.T) {
	ts := newSandbox(t, nil, withRateFlags(t, map[string]string{"ACCEPTED_RATE_POLL": "100/100", "ACCEPTED_RATE_KEYS": "0.01/3"},
		"-rate-poll", "3/7", "-rate-start", "0.01/2"))
	policy := func(r response, want string) {
		t.Helper()
		if got := r.Header.Get("RateLimit-Policy"); got != want {
			t.Errorf("%s %s: RateLimit-Policy %q, want %q", r.Request.Method, r.Request.URL.Path, got, want)
		}
	}
	r := ts.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
	policy(r, `"keys";q=3;w=300`) // ACCEPTED_RATE_KEYS=0.01/3
	key := r.json(t)["key"].(string)
	r = ts.mustStart(t, key, "/v1/reports", reportBody(nil))
	policy(r, `"start";q=2;w=200`) // -rate-start 0.01/2
	r = ts.do(t, http.MethodGet, r.Header.Get("Location"), key, nil)
	policy(r, `"poll";q=7;w=3`) // -rate-poll 3/7 over ACCEPTED_RATE_POLL=100/100

	ts.mustStart(t, key, "/v1/reports", reportBody(nil))
	if r := ts.do(t, http.MethodPost, "/v1/reports", key, reportBody(nil)); r.StatusCode != http.StatusTooManyRequests || r.json(t)["code"] != problems.RateLimited {
		t.Errorf("third start with a burst of 2: %d %s, want 429 rate_limited", r.StatusCode, r.body)
	}
	ts.key(t)
	ts.key(t)
	if r := ts.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fourth key with a burst of 3: %d %s, want 429", r.StatusCode, r.body)
	}
}

// TestRateLimitsOff: -rate-limits off sends no RateLimit header fields and
// never answers 429 rate_limited, far past every default burst.
func TestRateLimitsOff(t *testing.T) {
	ts := newSandbox(t, nil, withRateFlags(t, nil, "-rate-limits", "off", "-rate-keys", "0.01/1"))
	check := func(r response, want int) {
		t.Helper()
		if r.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body, want)
		}
		for _, h := range []string{"RateLimit", "RateLimit-Policy"} {
			if v := r.Header.Values(h); len(v) > 0 {
				t.Fatalf("%s %s: %s %q sent with the limits off", r.Request.Method, r.Request.URL.Path, h, v)
			}
		}
	}
	var key string
	for range 15 { // the keys burst is 1 (and 10 by default)
		r := ts.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
		check(r, http.StatusCreated)
		key = r.json(t)["key"].(string)
	}
	var location string
	for range 25 { // the start burst is 20
		r := ts.do(t, http.MethodPost, "/v1/reports", key, reportBody(map[string]any{"duration_seconds": 600}))
		check(r, http.StatusAccepted)
		location = r.Header.Get("Location")
	}
	for range 30 { // the poll burst is 20
		check(ts.do(t, http.MethodGet, location, key, nil), http.StatusOK)
	}
}

// TestRateLimitFlagErrors: a value that is not <per second>/<burst> within
// bounds, by flag or environment variable, stops serve with a message that
// names the setting and shows the form.
func TestRateLimitFlagErrors(t *testing.T) {
	def, err := parseServeFlags(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := def.RateLimits.policies(); !reflect.DeepEqual(got, DefaultPolicies()) {
		t.Errorf("the flags' defaults give %+v, want DefaultPolicies %+v", got, DefaultPolicies())
	}
	if def.RateLimits.Off {
		t.Error("the limits are off by default")
	}
	ok, err := parseServeFlags(t, map[string]string{"ACCEPTED_RATE_LIMITS": "OFF", "ACCEPTED_RATE_START": " 0.5 / 10 "})
	if err != nil || !ok.RateLimits.Off || ok.RateLimits.Start != (Rate{0.5, 10}) {
		t.Errorf("ACCEPTED_RATE_LIMITS=OFF, ACCEPTED_RATE_START=' 0.5 / 10 ': %+v, %v", ok.RateLimits, err)
	}
	for _, tc := range []struct {
		env        map[string]string
		args       []string
		says, form string
	}{
		{nil, []string{"-rate-poll", "10"}, "-rate-poll", "has no burst"},
		{nil, []string{"-rate-poll", "0/20"}, "-rate-poll", "the rate must be"},
		{nil, []string{"-rate-start", "-1/20"}, "-rate-start", "the rate must be"},
		{nil, []string{"-rate-start", "fast/20"}, "-rate-start", "the rate must be"},
		{nil, []string{"-rate-keys", "NaN/20"}, "-rate-keys", "the rate must be"},
		{nil, []string{"-rate-keys", "1e9/20"}, "-rate-keys", "the rate must be"},
		{nil, []string{"-rate-poll", "10/0"}, "-rate-poll", "the burst must be"},
		{nil, []string{"-rate-poll", "10/2.5"}, "-rate-poll", "the burst must be"},
		{nil, []string{"-rate-poll", "10/"}, "-rate-poll", "the burst must be"},
		{nil, []string{"-rate-limits", "maybe"}, "-rate-limits", "write on, or off"},
		{map[string]string{"ACCEPTED_RATE_POLL": "10 per second"}, nil, "ACCEPTED_RATE_POLL", "has no burst"},
		{map[string]string{"ACCEPTED_RATE_LIMITS": "no"}, nil, "ACCEPTED_RATE_LIMITS", "write on, or off"},
	} {
		_, err := parseServeFlags(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.form) {
			t.Errorf("%v %v: %v, want an error naming %s that says %q", tc.env, tc.args, err, tc.says, tc.form)
		}
		if err != nil && tc.says != "-rate-limits" && tc.says != "ACCEPTED_RATE_LIMITS" && !strings.Contains(err.Error(), "such as 10/20") {
			t.Errorf("%v %v: %v does not show the form", tc.env, tc.args, err)
		}
	}
	// And serve stops with it before it opens anything.
	var stderr bytes.Buffer
	if code := Main(t.Context(), []string{"serve", "-database", "memory", "-rate-start", "0/5"}, func(string) string { return "" }, io.Discard, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "-rate-start") || !strings.Contains(stderr.String(), "the rate must be") {
		t.Errorf("serve -rate-start 0/5: exit %d, %s", code, stderr.String())
	}
}

// TestRateLimitFlagsLeaveSpecUnchanged: the committed spec is generated
// with the defaults, and says nothing that the flags change: the same spec
// comes out whatever the rates, or with the limits off, and it still
// documents the 429 and the RateLimit header fields (which a sandbox with
// other limits sends with its own values, and one with the limits off
// does not send: the spec declares them, never requires them).
func TestRateLimitFlagsLeaveSpecUnchanged(t *testing.T) {
	spec := func(args ...string) []byte {
		t.Helper()
		cfg, err := parseServeFlags(t, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Artifacts(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return files[SpecJSON]
	}
	def := spec()
	for _, args := range [][]string{{"-rate-poll", "1/1", "-rate-start", "0.001/1", "-rate-keys", "1000/5000"}, {"-rate-limits", "off"}} {
		if !bytes.Equal(spec(args...), def) {
			t.Errorf("the spec generated with %v differs from the one generated with the defaults", args)
		}
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Headers map[string]struct {
					Required bool `json:"required"`
				} `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(def, &doc); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct{ path, method string }{{"/v1/reports", "post"}, {"/v1/jobs/{id}", "get"}, {"/v1/sandbox/keys", "post"}} {
		rs := doc.Paths[op.path][op.method].Responses
		if _, ok := rs["429"]; !ok {
			t.Errorf("%s %s: 429 not documented", op.method, op.path)
		}
		for status, r := range rs {
			for _, h := range []string{"RateLimit", "RateLimit-Policy"} {
				if hdr, ok := r.Headers[h]; ok && hdr.Required {
					t.Errorf("%s %s %s: %s is required, but a sandbox with -rate-limits off does not send it", op.method, op.path, status, h)
				}
			}
		}
	}
	committed, err := os.ReadFile("../../../generated/" + SpecJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, def) {
		t.Log("generated/openapi.json differs from the code's spec: run make generate (the golden test says so too)")
	}
}

// followed is a framingConn fed data as net/http would read it, in reads
// of at most size bytes.
func followed(data []byte, size int) *framingConn {
	c := &framingConn{}
	for len(data) > 0 {
		n := min(size, len(data))
		c.follow(data[:n])
		data = data[n:]
	}
	return c
}

// FuzzFraming feeds a connection's bytes to framingConn. However the bytes
// are split into reads it records the same header blocks; and as long as
// it follows the connection, the requests it records are the ones
// net/http reads from the same bytes, in order (a request it missed or
// made up would refuse, or let through, the wrong one).
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST / HTTP/1.1\nHost: x\ncontent-length: 3\n\nabcGET / HTTP/1.0\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n Transfer-Encoding: chunked\r\nContent-Length:\r\n 2\r\n\r\nabGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz",
		"\r\nGET / HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		whole, pieces := followed(data, len(data)+1), followed(data, int(split%16)+1)
		if !reflect.DeepEqual(whole.heads, pieces.heads) || whole.stopped != pieces.stopped || whole.skip != pieces.skip {
			t.Fatalf("read at once: %+v stopped %v skip %d; in reads of %d: %+v stopped %v skip %d",
				whole.heads, whole.stopped, whole.skip, split%16+1, pieces.heads, pieces.stopped, pieces.skip)
		}
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if i >= len(whole.heads) {
				if !whole.stopped {
					t.Fatalf("net/http read request %d (%s %s %s) that framingConn did not record", i+1, req.Method, req.RequestURI, req.Proto)
				}
				return
			}
			h := whole.heads[i]
			if want := req.Method + " " + req.RequestURI + " " + req.Proto; h.line != want {
				t.Fatalf("request %d: framingConn recorded %q, net/http read %q", i+1, h.line, want)
			}
			if len(req.TransferEncoding) > 0 && !h.transfer {
				t.Fatalf("request %d (%s): net/http reads it chunked, framingConn saw no Transfer-Encoding", i+1, h.line)
			}
			if h.transfer {
				return // framingConn stops here; the server closes after it
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
}
