package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/api"
	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/pgtest"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/riverqueue/river"
)

// testSandbox is a real sandbox on a real listener (127.0.0.1:0).
type testSandbox struct {
	s     *Server
	srv   *httptest.Server
	clock clock.Clock
	seen  *problemLog
}

// problemLog records every problem code the tests saw, in responses and in
// failed jobs, so R16 can check the catalog against what is really sent.
type problemLog struct {
	mu    sync.Mutex
	codes map[string]bool
	types map[string]bool
}

func (l *problemLog) add(code, typ string) {
	if l == nil { // a sandbox whose problems no catalog test reads
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.codes[code] = true
	l.types[typ] = true
}

func newProblemLog() *problemLog {
	return &problemLog{codes: map[string]bool{}, types: map[string]bool{}}
}

func testConfig() Config {
	return Config{
		Addr: "127.0.0.1:0", TimeScale: 0.001, Retention: 24 * time.Hour, LogLevel: slog.LevelInfo,
		LogFormat: "text", DocsBase: "http://localhost:8080", Workers: 16, QueueSize: 100, MaxKeys: 1000, MaxStreams: 5, MaxJobsPerKey: 1000, ShutdownTimeout: 5 * time.Second,
	}
}

// testDeps are the sandbox's defaults but for the key policy: tests make
// many keys from one address, so it is loosened, and only the limits a
// test is about can get in its way.
func testDeps() Deps {
	policies := DefaultPolicies()
	for i := range policies {
		if policies[i].Name == api.PolicyKeys {
			policies[i].Burst = 10000
		}
	}
	return Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Policies: policies, River: fastRiver}
}

// newTestDB opens a migrated throwaway database: SQLite unless name says
// otherwise ("postgres": a fresh PostgreSQL database from pgtest).
func newTestDB(t testing.TB, name string) sqldb.DB {
	t.Helper()
	ctx := context.Background()
	url := "memory"
	if name == "postgres" {
		url = pgtest.URL(t)
	}
	db, err := OpenDatabase(ctx, url, nil, time.Now)
	if err != nil {
		t.Fatalf("opening the %s database: %v", name, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing the database: %v", err)
		}
	})
	if _, err := db.Migrate(ctx, true); err != nil {
		t.Fatalf("migrating the %s database: %v", name, err)
	}
	return db
}

// fastRiver makes River look for work often, so that tests of jobs that
// take milliseconds are not paced by its polling.
func fastRiver(c *river.Config) {
	c.FetchCooldown, c.FetchPollInterval = 2*time.Millisecond, 20*time.Millisecond
	for name, q := range c.Queues {
		q.FetchPollInterval = 20 * time.Millisecond
		c.Queues[name] = q
	}
}

// withBackend runs the sandbox on another database ("postgres").
func withBackend(name string) func(*Config, *Deps) {
	return func(c *Config, d *Deps) { d.backend = name }
}

// newSandbox starts a sandbox; opts adjust its config and deps.
func newSandbox(t testing.TB, seen *problemLog, opts ...func(*Config, *Deps)) *testSandbox {
	t.Helper()
	cfg := testConfig()
	d := testDeps()
	for _, o := range opts {
		o(&cfg, &d)
	}
	if d.DB == nil {
		d.DB = newTestDB(t, d.backend)
	}
	s, err := New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		closeCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := s.Close(closeCtx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if seen == nil {
		seen = newProblemLog()
	}
	return &testSandbox{s: s, srv: srv, clock: s.clock, seen: seen}
}

func withFakeClock(f *clock.Fake) func(*Config, *Deps) {
	return func(_ *Config, d *Deps) { d.Clock = f }
}

func withScale(scale float64) func(*Config, *Deps) {
	return func(c *Config, _ *Deps) { c.TimeScale = scale }
}

// response is a finished exchange.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v\n%s", r.Request.Method, r.Request.URL.Path, err, r.body)
	}
	return m
}

// do sends a request without following redirects. Every error response is
// checked against R15 (problem+json, status member equal to the HTTP
// status, a catalog type) on the way.
func (ts *testSandbox) do(t testing.TB, method, path, key string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, ts.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{res, raw}
	checkSpec(t, req, res, raw)
	// fetch joins repeated fields: two Retry-After lines read as "1, 1",
	// which no client can parse.
	if ra := res.Header.Values("Retry-After"); len(ra) > 1 || len(ra) == 1 && strings.Contains(ra[0], ",") {
		t.Errorf("%s %s answered %d with Retry-After %q: one delay-seconds value, once", method, path, res.StatusCode, ra)
	}
	if res.StatusCode >= 400 {
		ts.checkProblem(t, r)
	}
	return r
}

// checkProblem is R15 for one response.
func (ts *testSandbox) checkProblem(t testing.TB, r response) {
	t.Helper()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/problem+json" {
		t.Errorf("R15: %s %s answered %d with Content-Type %q, want application/problem+json", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.Header.Get("Content-Type"))
		return
	}
	p := r.json(t)
	if int(p["status"].(float64)) != r.StatusCode {
		t.Errorf("R15: problem status %v != HTTP status %d", p["status"], r.StatusCode)
	}
	ts.checkCatalogProblem(t, p)
}

func (ts *testSandbox) checkCatalogProblem(t testing.TB, p map[string]any) {
	t.Helper()
	code, _ := p["code"].(string)
	typ, _ := p["type"].(string)
	e, ok := ts.s.Catalog().Entry(code)
	if !ok {
		t.Errorf("R16: problem code %q is not in the catalog: %v", code, p)
		return
	}
	if typ != e.Type || p["title"] != e.Title {
		t.Errorf("R16: problem %q has type %q title %q, catalog says %q %q", code, typ, p["title"], e.Type, e.Title)
	}
	ts.seen.add(code, typ)
}

// key gets a fresh sandbox key.
func (ts *testSandbox) key(t testing.TB) string {
	t.Helper()
	r := ts.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/sandbox/keys: %d %s", r.StatusCode, r.body)
	}
	return r.json(t)["key"].(string)
}

func reportBody(sim map[string]any) map[string]any {
	b := map[string]any{"title": "Test", "from": "2026-01-01", "to": "2026-01-31"}
	if sim != nil {
		b["simulate"] = sim
	}
	return b
}

// mustStartWith is mustStart with extra request headers.
func (ts *testSandbox) mustStartWith(t testing.TB, key, path string, body any, headers ...string) response {
	t.Helper()
	r := ts.do(t, http.MethodPost, path, key, body, headers...)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d, want 202\n%s", path, r.StatusCode, r.body)
	}
	return r
}

// mustStart starts a report (or another flow's POST) and checks the 202.
func (ts *testSandbox) mustStart(t testing.TB, key, path string, body any) response {
	t.Helper()
	r := ts.do(t, http.MethodPost, path, key, body)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d, want 202\n%s", path, r.StatusCode, r.body)
	}
	return r
}

// mustFollow polls a status monitor until it is terminal (200 with a
// terminal status, or 303), honouring Retry-After scaled down by the
// sandbox's time scale, and returns every poll.
func (ts *testSandbox) mustFollow(t testing.TB, key, location string) []response {
	t.Helper()
	var polls []response
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := ts.do(t, http.MethodGet, location, key, nil)
		if r.StatusCode != http.StatusTooManyRequests {
			polls = append(polls, r)
		}
		switch r.StatusCode {
		case http.StatusSeeOther:
			return polls
		case http.StatusTooManyRequests:
			time.Sleep(100 * time.Millisecond)
		case http.StatusOK:
			st := r.json(t)["status"].(string)
			if st == "failed" || st == "canceled" {
				return polls
			}
			secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil {
				t.Fatalf("poll of running job without integer Retry-After: %q", r.Header.Get("Retry-After"))
			}
			// At the scaled Retry-After, but no faster than the poll
			// policy refills (10 a second): a test that follows a job
			// leaves its key the budget the next request needs.
			time.Sleep(max(time.Duration(float64(secs)*float64(time.Second)*ts.s.cfg.TimeScale), 100*time.Millisecond))
		default:
			t.Fatalf("GET %s: %d %s", location, r.StatusCode, r.body)
		}
	}
	t.Fatalf("job at %s did not finish in time", location)
	return nil
}

// serving is a sandbox run as `serve` runs it (Run on a real listener, so
// shutdown goes through its drain), for tests of what only Run does.
type serving struct {
	*testSandbox
	ln      net.Listener
	sigterm context.CancelFunc // what SIGTERM does to serve
	stopped chan error         // Run's result
}

func runServing(t testing.TB, cfg Config, seen *problemLog, backend string) *serving {
	t.Helper()
	d := testDeps()
	d.DB = newTestDB(t, backend)
	s, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(context.Background())
	sv := &serving{ln: ln, sigterm: sigterm, stopped: make(chan error, 1),
		testSandbox: &testSandbox{s: s, srv: &httptest.Server{URL: "http://" + ln.Addr().String()}, seen: seen}}
	go func() { sv.stopped <- s.Run(ctx, ln) }()
	return sv
}
