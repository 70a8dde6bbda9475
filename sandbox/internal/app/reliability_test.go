package app

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReliabilityUnderLoad runs clients against one sandbox for a few
// seconds (fast time scale), starting reports, exports and imports with
// random scenarios (success, failure, stalls, crashes), cancelling some at
// random, imports calling back to built-in inboxes. Then:
//   - every accepted job reaches a terminal state (the stalls through the
//     dead-man's switch);
//   - every finished import's webhook reached its inbox at least once, and
//     every delivery of it carries the same webhook-id;
//   - after Close no goroutine is left behind.
func TestReliabilityUnderLoad(t *testing.T) {
	load := 3 * time.Second
	if testing.Short() {
		load = time.Second
	}
	// The database is the test's: its connections outlive the sandbox.
	db := newTestDB(t, "")
	baseline := runtime.NumGoroutine()

	cfg := testConfig()
	cfg.TimeScale, cfg.Workers, cfg.QueueSize, cfg.AllowPrivateCallbacks = 0.001, 8, 200, true
	d := Deps{DB: db, River: fastRiver, Logger: slog.New(slog.DiscardHandler)}
	withoutLimits(&cfg, &d)
	s, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	ts := &testSandbox{s: s, srv: srv, clock: s.clock, seen: newProblemLog()}
	closed := false
	shutdown := func() {
		if closed {
			return
		}
		closed = true
		srv.Close()
		cancel()
		c, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		if err := s.Close(c); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(shutdown)

	type started struct {
		key, loc, importID, inbox string
	}
	var mu sync.Mutex
	var accepted []started
	refused := map[int]int{}

	outcomes := []map[string]any{
		{"duration_seconds": 2},
		{"duration_seconds": 5, "outcome": "fail", "fail_code": "upstream_unavailable", "fail_at_percent": 40},
		{"duration_seconds": 1, "outcome": "stall"},
		{"duration_seconds": 3, "outcome": "crash"},
		{"duration_seconds": 0},
	}
	const clients = 6
	// The load runs for load, and on until minAccepted jobs were accepted
	// (a slow machine, or the race detector warming up the first test of
	// the process, can take seconds over the first few), but never past
	// giveUp.
	const minAccepted = 50
	began := time.Now()
	deadline, giveUp := began.Add(load), began.Add(30*time.Second)
	loading := func() bool {
		now := time.Now()
		if now.Before(deadline) {
			return true
		}
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) < minAccepted && now.Before(giveUp)
	}
	var wg sync.WaitGroup
	for c := range clients {
		key := ts.key(t)
		ib := ts.mustInbox(t, key)
		rng := rand.New(rand.NewPCG(uint64(c), 7))
		wg.Go(func() {
			for loading() {
				sim := outcomes[rng.IntN(len(outcomes))]
				var path string
				var body map[string]any
				switch rng.IntN(3) {
				case 0:
					path, body = "/v1/reports", reportBody(sim)
				case 1:
					path, body = "/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-31", "simulate": sim}
				default:
					path, body = "/v1/imports", importBody(ib.URL, rows("A-1", "B-2=0", "C-3"))
					body["simulate"] = sim
				}
				r := ts.do(t, http.MethodPost, path, key, body)
				if r.StatusCode != http.StatusAccepted {
					// A full queue is an honest answer under load; anything
					// else is a bug (ts.do has checked the problem).
					if r.StatusCode != http.StatusServiceUnavailable && r.StatusCode != http.StatusTooManyRequests {
						t.Errorf("POST %s: %d %s", path, r.StatusCode, r.body)
						return
					}
					mu.Lock()
					refused[r.StatusCode]++
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
					continue
				}
				st := started{key: key, loc: r.Header.Get("Location")}
				if path == "/v1/imports" {
					st.importID, st.inbox = r.json(t)["import_id"].(string), ib.ID
				}
				mu.Lock()
				accepted = append(accepted, st)
				mu.Unlock()
				if rng.IntN(5) == 0 { // cancel one in five, at once or a little later
					if rng.IntN(2) == 0 {
						time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
					}
					if r := ts.do(t, http.MethodDelete, st.loc, key, nil); r.StatusCode != http.StatusOK && r.StatusCode != http.StatusConflict {
						t.Errorf("DELETE %s: %d %s", st.loc, r.StatusCode, r.body)
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	took := time.Since(began).Round(time.Millisecond)
	t.Logf("%d jobs accepted in %s by %d clients (refused: %v)", len(accepted), took, clients, refused)
	if len(accepted) < minAccepted {
		t.Fatalf("only %d jobs accepted in %s, want %d (refused: %v)", len(accepted), took, minAccepted, refused)
	}

	// Every accepted job ends. Stalls need the watchdog: 1 s of silence
	// (StallFloor), noticed within a sweep (1 s).
	end := time.Now().Add(15 * time.Second)
	terminal := map[string]string{}
	for _, a := range accepted {
		for {
			r := ts.do(t, http.MethodGet, a.loc, a.key, nil)
			if r.StatusCode == http.StatusSeeOther {
				terminal[a.loc] = "succeeded"
				break
			}
			if r.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s", a.loc, r.StatusCode, r.body)
			}
			if st := r.json(t)["status"].(string); st == "failed" || st == "canceled" {
				terminal[a.loc] = st
				break
			}
			if time.Now().After(end) {
				t.Fatalf("job %s still %s after the load ended + 15 s", a.loc, r.json(t)["status"])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	counts := map[string]int{}
	for _, st := range terminal {
		counts[st]++
	}
	t.Logf("%d jobs accepted (refused %v), ended %v", len(accepted), refused, counts)

	// Every finished import called back its inbox, at least once, with one id.
	var imports, webhooks int
	for _, a := range accepted {
		if a.importID == "" {
			continue
		}
		imports++
		for {
			ids := map[string]bool{}
			for _, d := range ts.inboxDeliveries(t, a.key, a.inbox) {
				if strings.Contains(d.Body, a.importID) {
					ids[d.header("webhook-id")] = true
				}
			}
			if len(ids) > 1 {
				t.Fatalf("import %s was delivered with %d webhook-ids: %v", a.importID, len(ids), ids)
			}
			if len(ids) == 1 {
				webhooks++
				break
			}
			if time.Now().After(end) {
				t.Fatalf("import %s (job %s, %s) never reached its inbox", a.importID, a.loc, terminal[a.loc])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("%d imports, %d delivered", imports, webhooks)

	// No goroutine outlives Close.
	shutdown()
	http.DefaultClient.CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var n int
	for range 100 {
		if n = runtime.NumGoroutine(); n <= baseline {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var stacks strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	t.Errorf("%d goroutines after Close, %d before the sandbox started:\n%s", n, baseline, stacks.String())
}
