package codesamples

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFollowOnlyFor202(t *testing.T) {
	ops := testOps()
	if got := Follow(ops["get-job"], "https://x.test"); got != nil {
		t.Errorf("a GET that answers 200 got follow samples: %v", got)
	}
	got := Follow(ops["create-report"], "https://x.test")
	want := []string{"curl", "javascript", "python", "go"}
	if len(got) != len(want) {
		t.Fatalf("%d follow samples, want %d", len(got), len(want))
	}
	fresh := map[string]string{"curl": FreshShell, "javascript": "crypto.randomUUID()", "python": "uuid.uuid4()", "go": "rand.Text()"}
	for i, s := range got {
		if s.Lang != want[i] {
			t.Errorf("sample %d is %s, want %s", i, s.Lang, want[i])
		}
		for _, w := range []string{"https://x.test/v1/reports", "Location", "Retry-After", "ACCEPTED_KEY", fresh[s.Lang]} {
			if !strings.Contains(s.Code, w) {
				t.Errorf("%s follow sample lacks %q:\n%s", s.Lang, w, s.Code)
			}
		}
		// The spec's example key is never sent: a second run would replay the first job.
		if strings.Contains(s.Code, "9b2c") {
			t.Errorf("%s follow sample sends the example Idempotency-Key:\n%s", s.Lang, s.Code)
		}
	}
}

// The try-it script fills the templates by replacing each quoted token:
// the quoting must be the one it expects, and nothing else may be there.
func TestFollowTemplatesQuoteTokens(t *testing.T) {
	for _, s := range FollowTemplates(testOps()["create-report"]) {
		q := `"`
		if s.Lang == "curl" {
			q = `'`
		}
		for _, name := range []string{"URL", "BODY", "KEY"} {
			if n := strings.Count(s.Code, q+Token(name)+q); n != 1 {
				t.Errorf("%s template holds %s%s%s %d times, want once:\n%s", s.Lang, q, Token(name), q, n, s.Code)
			}
			if strings.Count(s.Code, Token(name)) != 1 {
				t.Errorf("%s template holds %s unquoted", s.Lang, Token(name))
			}
		}
		if strings.Contains(s.Code, "ACCEPTED_KEY") {
			t.Errorf("%s template reads the environment although the key is filled in:\n%s", s.Lang, s.Code)
		}
	}
}

// fakeAsync is an API with one async operation: POST /v1/reports answers
// 202 with Location and Retry-After; the monitor answers 200 "processing"
// once, then 303 to the result.
func fakeAsync(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var log []string
	polls := map[string]int{}
	keys := map[string]bool{}
	mux := http.NewServeMux()
	authed := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer sk_test" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux.HandleFunc("POST /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		if !authed(w, r) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		k := r.Header.Get("Idempotency-Key")
		mu.Lock()
		polls = map[string]int{}
		dup := keys[k]
		keys[k] = true
		log = append(log, fmt.Sprintf("POST key=%t dup=%t body=%t", k != "", dup, strings.Contains(string(body), `"kind": "sales"`)))
		mu.Unlock()
		w.Header().Set("Location", "/v1/jobs/job_1")
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"job_1","status":"queued"}`)
	})
	mux.HandleFunc("GET /v1/jobs/job_1", func(w http.ResponseWriter, r *http.Request) {
		if !authed(w, r) {
			return
		}
		mu.Lock()
		polls[r.Header.Get("User-Agent")]++
		n := polls[r.Header.Get("User-Agent")]
		log = append(log, "GET monitor")
		mu.Unlock()
		if n < 2 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"job_1","status":"processing","percent_complete":50,"error":{"status":"x"}}`)
			return
		}
		http.Redirect(w, r, "/v1/reports/rpt_1", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /v1/reports/rpt_1", func(w http.ResponseWriter, r *http.Request) {
		if !authed(w, r) {
			return
		}
		mu.Lock()
		log = append(log, "GET result")
		mu.Unlock()
		_, _ = io.WriteString(w, `{"id":"rpt_1","title":"THE REPORT"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := log
		log = nil
		polls = map[string]int{}
		return out
	}
}

// TestFollowSamplesRun runs each follow sample, with the tool its language
// needs where it is installed, against a fake API: each sends a fresh key,
// waits, polls until the 303 and prints the result.
func TestFollowSamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four interpreters")
	}
	srv, take := fakeAsync(t)
	op := testOps()["create-report"]
	dir := t.TempDir()
	run := map[string]func(file string) *exec.Cmd{
		"curl":       func(f string) *exec.Cmd { return exec.Command("sh", f) },
		"javascript": func(f string) *exec.Cmd { return exec.Command("node", f) },
		"python":     func(f string) *exec.Cmd { return exec.Command("python3", f) },
		"go":         func(f string) *exec.Cmd { return exec.Command("go", "run", f) },
	}
	need := map[string]string{"curl": "curl", "javascript": "node", "python": "python3", "go": "go"}
	ext := map[string]string{"curl": ".sh", "javascript": ".mjs", "python": ".py", "go": ".go"}
	for _, s := range Follow(op, srv.URL) {
		t.Run(s.Lang, func(t *testing.T) {
			if _, err := exec.LookPath(need[s.Lang]); err != nil {
				t.Skipf("%s not installed", need[s.Lang])
			}
			file := filepath.Join(dir, "follow"+ext[s.Lang])
			if err := os.WriteFile(file, []byte(s.Code), 0o644); err != nil {
				t.Fatal(err)
			}
			for range 2 { // two runs: two fresh keys
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				cmd := run[s.Lang](file)
				cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "ACCEPTED_KEY=sk_test", "GOTOOLCHAIN=local")
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Fatalf("%v\n%s\n%s", err, out, s.Code)
				}
				if !strings.Contains(string(out), "THE REPORT") {
					t.Errorf("no result printed:\n%s", out)
				}
			}
			log := take()
			want := []string{"POST key=true dup=false body=true", "GET monitor", "GET monitor", "GET result",
				"POST key=true dup=false body=true", "GET monitor", "GET monitor", "GET result"}
			if strings.Join(log, "\n") != strings.Join(want, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
