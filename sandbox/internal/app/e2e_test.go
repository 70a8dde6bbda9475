package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the committed files in generated/ from the code")

// TestGenerated fails when generated/ differs from what the code emits.
// `go test ./sandbox/internal/app -run TestGenerated -update` (or `make generate`) rewrites it.
func TestGenerated(t *testing.T) {
	files, err := Artifacts(defaultConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "..", "generated")
	for name, want := range files {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run `make generate`)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run `make generate` and commit it", path)
		}
	}
}

// defaultConfig is what `sandbox openapi` uses: the flags' defaults.
func defaultConfig(t *testing.T) Config {
	t.Helper()
	var cfg Config
	fs := flagSetFor(&cfg)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func flagSetFor(cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	bindFlags(fs, cfg, func(string) string { return "" })
	return fs
}

// TestEndToEnd runs a report and an export from POST to result over a real
// listener, checking the result's content.
func TestEndToEnd(t *testing.T) {
	ts := newSandbox(t, nil, withScale(0.01))
	key := ts.key(t)

	t.Run("report", func(t *testing.T) {
		r := ts.mustStart(t, key, "/v1/reports", map[string]any{"title": "Three days", "from": "2026-02-01", "to": "2026-02-03"})
		polls := ts.mustFollow(t, key, r.Header.Get("Location"))
		res := ts.do(t, http.MethodGet, polls[len(polls)-1].Header.Get("Location"), key, nil)
		rep := res.json(t)
		days := rep["days"].([]any)
		if res.StatusCode != 200 || len(days) != 3 || rep["title"] != "Three days" || rep["job_id"] != r.json(t)["id"] {
			t.Fatalf("report: %d %s", res.StatusCode, res.body)
		}
		var sum float64
		for _, d := range days {
			sum += d.(map[string]any)["orders"].(float64)
		}
		if tot := rep["totals"].(map[string]any)["orders"].(float64); tot != sum || sum == 0 {
			t.Errorf("totals.orders %v, sum of days %v", tot, sum)
		}
	})

	t.Run("export", func(t *testing.T) {
		r := ts.mustStart(t, key, "/v1/exports", map[string]any{"format": "ndjson", "from": "2026-02-01", "to": "2026-02-02", "granularity": "hour"})
		polls := ts.mustFollow(t, key, r.Header.Get("Location"))
		fileURL := polls[len(polls)-1].Header.Get("Location")
		meta := ts.do(t, http.MethodGet, r.json(t)["links"].(map[string]any)["resource"].(string), key, nil).json(t)
		file := meta["file"].(map[string]any)
		if file["url"] != fileURL {
			t.Errorf("file.url %v, 303 Location %q", file["url"], fileURL)
		}
		res := ts.do(t, http.MethodGet, fileURL, key, nil)
		sum := sha256.Sum256(res.body)
		lines := strings.Count(string(res.body), "\n")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" ||
			!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment; filename=") ||
			res.Header.Get("Content-Length") != strconv.Itoa(len(res.body)) {
			t.Fatalf("download: %d %v", res.StatusCode, res.Header)
		}
		if hex.EncodeToString(sum[:]) != file["sha256"] || float64(len(res.body)) != file["bytes"] || float64(lines) != file["rows"] || lines != 2*24*3 {
			t.Errorf("file %v does not match the download (%d bytes, %d lines)", file, len(res.body), lines)
		}
	})
}

// TestMain_commands covers the command line: help, bad flags, bad
// environment values, and the openapi command writing generated files.
func TestMain_commands(t *testing.T) {
	noenv := func(string) string { return "" }
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"help"}, noenv, &out, &errb); code != 0 || !strings.Contains(out.String(), "sandbox serve") {
		t.Errorf("help: %d %q", code, out.String())
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"bogus"}, noenv, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "bogus"`) {
		t.Errorf("bogus: %d %q", code, errb.String())
	}
	errb.Reset()
	env := func(k string) string {
		if k == "ACCEPTED_TIME_SCALE" {
			return "fast"
		}
		return ""
	}
	if code := Main(context.Background(), []string{"serve"}, env, &out, &errb); code != 1 || !strings.Contains(errb.String(), "ACCEPTED_TIME_SCALE") {
		t.Errorf("bad env: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"serve", "-time-scale", "0"}, noenv, &out, &errb); code != 1 || !strings.Contains(errb.String(), "-time-scale") {
		t.Errorf("bad flag value: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := Main(context.Background(), []string{"serve", "-site-dir", t.TempDir()}, noenv, &out, &errb); code != 1 || !strings.Contains(errb.String(), "index.html") {
		t.Errorf("empty site dir: %d %q", code, errb.String())
	}
	dir := t.TempDir()
	out.Reset()
	if code := Main(context.Background(), []string{"openapi", "-out", dir}, noenv, &out, &errb); code != 0 {
		t.Fatalf("openapi: %d %s", code, errb.String())
	}
	for _, name := range []string{SpecJSON, SpecYAML, Spec30JSON, ErrorsJSON} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	spec30, _ := os.ReadFile(filepath.Join(dir, Spec30JSON))
	if !bytes.Contains(spec30, []byte(`"openapi": "3.0.3"`)) || bytes.Contains(spec30, []byte(`"webhooks"`)) {
		t.Errorf("3.0 spec: wrong version or has webhooks")
	}
}

// TestServe starts the real command on a free port and stops it with the
// context, as SIGTERM would.
func TestServe(t *testing.T) {
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<!doctype html><title>Home</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errb bytes.Buffer
	addr := freeAddr(t)
	go func() {
		done <- Main(ctx, []string{"serve", "-database", "memory", "-addr", addr, "-site-dir", site}, func(string) string { return "" }, &bytes.Buffer{}, &errb)
	}()
	var res *http.Response
	var err error
	for range 100 {
		if res, err = http.Get("http://" + addr + "/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("site: %d CSP %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
	}
	if res, err := http.Get("http://" + addr + "/missing-page"); err != nil || res.StatusCode != 404 {
		t.Errorf("missing page: %v %v", res, err)
	}
	if res, err := http.Get("http://" + addr + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Errorf("healthz: %v %v", res, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}

// freeAddr finds a free loopback port for a server that opens its own listener.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestKeyCreationIsLimitedPerAddress uses the default policies: a client
// address gets a burst of keys, then 429 with Retry-After.
func TestKeyCreationIsLimitedPerAddress(t *testing.T) {
	ts := newSandbox(t, nil, func(_ *Config, d *Deps) { d.Policies = DefaultPolicies() })
	for i := range 30 {
		r := ts.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
		if r.StatusCode == http.StatusTooManyRequests {
			if i < 10 || r.Header.Get("Retry-After") == "" {
				t.Errorf("refused after %d keys, Retry-After %q", i, r.Header.Get("Retry-After"))
			}
			return
		}
	}
	t.Error("30 keys in a row from one address were all issued")
}

// TestServeOnPortZero: asked for port 0, the sandbox hands out inbox URLs
// with the port it really listens on, and a webhook sent to one arrives.
func TestServeOnPortZero(t *testing.T) {
	cfg := testConfig()
	cfg.Addr = "localhost:0"
	sd := runServing(t, cfg, nil, "")
	t.Cleanup(func() {
		sd.sigterm()
		if err := <-sd.stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(sd.ln.Addr().String())
	kr := sd.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
	key, _ := kr.json(t)["key"].(string)
	ir := sd.do(t, http.MethodPost, "/v1/sandbox/inboxes", key, nil)
	if ir.StatusCode != http.StatusCreated && ir.StatusCode != http.StatusOK {
		t.Fatalf("create inbox: %d %s", ir.StatusCode, ir.body)
	}
	inboxURL, _ := ir.json(t)["url"].(string)
	if want := "http://localhost:" + port + "/v1/sandbox/inboxes/"; !strings.HasPrefix(inboxURL, want) {
		t.Fatalf("inbox URL %q, want it to start with %q (the listener's port, the host asked for)", inboxURL, want)
	}
	r := sd.mustStart(t, key, "/v1/imports", importBody(inboxURL, rows("SKU-1")))
	sd.mustFollow(t, key, r.Header.Get("Location"))
	id := strings.TrimPrefix(inboxURL, "http://localhost:"+port+"/v1/sandbox/inboxes/")
	for range 200 {
		dr := sd.do(t, http.MethodGet, "/v1/sandbox/inboxes/"+id+"/deliveries", key, nil)
		if ds, _ := dr.json(t)["deliveries"].([]any); len(ds) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no webhook reached the inbox")
}

// TestOneProcessPerSQLiteFile: a second serve on the SQLite file another
// one uses is refused with a message saying what to do, since its workers'
// changes would never reach the first one's event streams.
func TestOneProcessPerSQLiteFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "data", "sandbox.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var first syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "-database", db, "-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard, &first)
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(first.String(), "sandbox listening") {
		select {
		case code := <-done:
			t.Fatalf("the first serve exited (%d): %s", code, first.String())
		case <-deadline:
			t.Fatalf("the first serve did not listen in 30 s: %s", first.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var second bytes.Buffer
	if code := Main(context.Background(), []string{"serve", "-database", db, "-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard, &second); code != 1 ||
		!strings.Contains(second.String(), "in use by another sandbox process") {
		t.Errorf("a second serve on the same file: exit %d, %q", code, second.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("the first serve exited %d after its signal: %s", code, first.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first serve did not stop in 30 s")
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
