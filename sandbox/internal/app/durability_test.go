package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/pgtest"
)

// The tests in this file run the sandbox as users run it: the real binary,
// as separate processes, killed with SIGKILL. They check R38–R41 of the
// conformance table: nothing accepted is lost to a crash, the idempotency
// record and its job stay together, any replica answers for any job, and a
// webhook survives the replica that held it.

// sandboxBin builds the sandbox binary once per test binary (TestMain
// removes binDir).
var (
	binDir     string
	sandboxBin = sync.OnceValues(func() (string, error) { return buildBin("./sandbox", "sandbox") })
)

// buildBin builds the package pkg (a path from the module root) into
// binDir/name.
func buildBin(pkg, name string) (string, error) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		return "", err
	}
	out := filepath.Join(binDir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// replica is one `sandbox serve` process.
type replica struct {
	name string
	url  string
	proc *exProc
	args []string
}

// freePort answers a loopback port nobody listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startReplica runs `sandbox serve` on port with the database and extra
// flags, and waits until it is ready (GET /readyz answers 200).
// Its public URL is its own address, unless extra sets -public-url (the
// replicas behind a load balancer share the balancer's).
func startReplica(t *testing.T, name string, port int, database string, extra ...string) *replica {
	t.Helper()
	bin, err := sandboxBin()
	if err != nil {
		t.Fatal(err)
	}
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{bin, "serve", "-addr", "127.0.0.1:" + strconv.Itoa(port), "-database", database, "-time-scale", "0.01", "-log-level", "debug"}
	if !slices.Contains(extra, "-public-url") {
		args = append(args, "-public-url", u)
	}
	args = append(args, extra...)
	r := &replica{name: name, url: u, args: args}
	r.proc = exStart(t, t.TempDir(), nil, args...)
	r.waitReady(t)
	return r
}

// restart starts the replica again with the same flags.
func (r *replica) restart(t *testing.T) {
	t.Helper()
	r.proc = exStart(t, t.TempDir(), nil, r.args...)
	r.waitReady(t)
}

func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(r.url + "/readyz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-r.proc.exited:
			t.Fatalf("replica %s exited (%d) before it was ready:\n%s", r.name, r.proc.code, r.proc.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready after 60 s (last: %v)\n%s", r.name, err, r.proc.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the replica with SIGKILL: no drain, no goodbye.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if err := r.proc.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9 %s: %v", r.name, err)
	}
	r.proc.wait(t)
}

// client talks to a sandbox over HTTP without following redirects.
type client struct {
	base string
	key  string
	hc   *http.Client
}

func newClient(base string) *client {
	return &client{base: base, hc: &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// call sends a request; a 429 (the sandbox's own rate limits, which these
// tests keep) is waited out as its Retry-After says, a few times.
func (c *client) call(t *testing.T, method, path string, body any, headers ...string) (*http.Response, []byte) {
	t.Helper()
	for range 5 {
		res, b := c.once(t, method, path, body, headers...)
		if res.StatusCode != http.StatusTooManyRequests {
			return res, b
		}
		secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		time.Sleep(time.Duration(min(max(secs, 1), 3)) * time.Second)
	}
	return c.once(t, method, path, body, headers...)
}

func (c *client) once(t *testing.T, method, path string, body any, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return res, b
}

// must calls and checks the status, answering the JSON object.
func (c *client) must(t *testing.T, want int, method, path string, body any, headers ...string) (*http.Response, map[string]any) {
	t.Helper()
	res, b := c.call(t, method, path, body, headers...)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d\n%s", method, path, res.StatusCode, want, b)
	}
	var m map[string]any
	if len(b) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return res, m
}

func (c *client) newKey(t *testing.T) {
	t.Helper()
	_, m := c.must(t, http.StatusCreated, http.MethodPost, "/v1/sandbox/keys", nil)
	c.key = m["key"].(string)
}

// follow polls a status monitor until it answers 303 or a terminal 200,
// within the deadline, and answers the last status code and body.
func (c *client) follow(t *testing.T, loc string, within time.Duration) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, b := c.call(t, http.MethodGet, loc, nil)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		switch {
		case res.StatusCode == http.StatusSeeOther:
			return res.StatusCode, m
		case res.StatusCode == http.StatusOK && (m["status"] == "failed" || m["status"] == "canceled"):
			return res.StatusCode, m
		case res.StatusCode != http.StatusOK && res.StatusCode != http.StatusTooManyRequests:
			t.Fatalf("GET %s: %d %s", loc, res.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job at %s not finished after %s: last %d %s", loc, within, res.StatusCode, b)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// waitUntil polls check until it answers true, failing after within.
func waitUntil(t *testing.T, what string, within time.Duration, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// inboxDeliveries answers the webhook-id and the inbox's answer of each
// delivery to inbox id, oldest first.
func (c *client) inboxDeliveries(t *testing.T, id string) (ids []string, answered []int) {
	t.Helper()
	_, m := c.must(t, http.StatusOK, http.MethodGet, "/v1/sandbox/inboxes/"+id+"/deliveries", nil)
	ds, _ := m["deliveries"].([]any)
	for i := len(ds) - 1; i >= 0; i-- { // the list is newest first
		d := ds[i].(map[string]any)
		h, _ := d["headers"].(map[string]any)
		var wid string
		for k, v := range h {
			if strings.EqualFold(k, "webhook-id") {
				if vs, ok := v.([]any); ok && len(vs) > 0 {
					wid, _ = vs[0].(string)
				}
			}
		}
		ids = append(ids, wid)
		n, _ := d["answered"].(float64)
		answered = append(answered, int(n))
	}
	return ids, answered
}

// TestRestartKeepsEverything is R38 and R41 on the default database, a
// SQLite file: a sandbox killed with SIGKILL and started again still knows
// the key, finishes the report it had accepted, replays an idempotent POST
// as the same job, and delivers a webhook that was waiting for a retry with
// its original webhook-id.
func TestRestartKeepsEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sandbox binary")
	}
	db := filepath.Join(t.TempDir(), "data", "sandbox.db")
	r := startReplica(t, "sqlite", freePort(t), db)
	c := newClient(r.url)
	c.newKey(t)

	// A report that outlives the process: 300 simulated seconds, 3 s here.
	res, rep := c.must(t, http.StatusAccepted, http.MethodPost, "/v1/reports", reportBody(map[string]any{"duration_seconds": 300}))
	reportLoc := res.Header.Get("Location")
	// An idempotent POST.
	idemKey := "restart-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, first := c.must(t, http.StatusAccepted, http.MethodPost, "/v1/reports", reportBody(nil), "Idempotency-Key", idemKey)
	// An import whose webhook goes to an inbox that answers 503 twice:
	// attempt 1 at once, 2 after 50 ms, 3 after 3 s (the standard schedule
	// at time scale 0.01), so the third is pending when the process dies.
	_, inbox := c.must(t, http.StatusCreated, http.MethodPost, "/v1/sandbox/inboxes", nil)
	inboxID := inbox["id"].(string)
	c.must(t, http.StatusOK, http.MethodPut, "/v1/sandbox/inboxes/"+inboxID+"/behaviour", map[string]any{"status": 503, "count": 2})
	c.must(t, http.StatusAccepted, http.MethodPost, "/v1/imports", map[string]any{
		"rows":         []any{map[string]any{"sku": "MUG-1", "name": "Mug", "quantity": 1, "price_cents": 100}},
		"callback_url": inbox["url"],
	})
	var before []string
	waitUntil(t, "two failed webhook deliveries", 20*time.Second, func() bool {
		ids, _ := c.inboxDeliveries(t, inboxID)
		before = ids
		return len(ids) >= 2
	})
	if len(before) != 2 {
		t.Fatalf("%d deliveries before the crash, want 2 (the third is 3 s later): %v", len(before), before)
	}
	// River records a snooze a moment after the attempt: killed in that
	// moment, the delivery's River job would still read running, and only
	// River's rescuer (minutes) would hand it on. This test is about a
	// webhook waiting for its retry; the rescue is TestTwoReplicas's.
	waitUntil(t, "the webhook's River job to wait for its retry", 20*time.Second, func() bool {
		return riverStates(t, db, "accepted_webhook")["running"] == 0
	})

	r.kill(t)
	r.restart(t)

	// The key still works, and the report goes on to its result (a step
	// the kill cut short is rescued by River, which may take a minute).
	if code, m := c.follow(t, reportLoc, 2*time.Minute); code != http.StatusSeeOther {
		t.Errorf("report accepted before the crash ended %d %v, want 303", code, m)
	}
	if id := rep["id"]; id == nil {
		t.Fatalf("no job id in the 202: %v", rep)
	}
	// The idempotent POST replays the same job.
	res, again := c.must(t, http.StatusAccepted, http.MethodPost, "/v1/reports", reportBody(nil), "Idempotency-Key", idemKey)
	if again["id"] != first["id"] || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("after the restart, the same Idempotency-Key answered job %v (replayed %q), want %v", again["id"], res.Header.Get("Idempotent-Replayed"), first["id"])
	}
	// The webhook arrives, with the id it had before.
	var after []string
	var answered []int
	waitUntil(t, "the webhook's third attempt after the restart", 30*time.Second, func() bool {
		after, answered = c.inboxDeliveries(t, inboxID)
		return len(after) >= 3
	})
	if after[2] != before[0] || after[1] != before[0] || answered[2]/100 != 2 {
		t.Errorf("deliveries %v answered %v: want the third with the first's webhook-id %s, answered 2xx", after, answered, before[0])
	}
}

// roundRobin is a reverse proxy that sends each request to the next
// replica in turn. It listens before the replicas start, so they can be
// told its URL as their public one.
type roundRobin struct {
	mu      sync.Mutex
	next    int
	proxies []*httputil.ReverseProxy
}

func newRoundRobin(t *testing.T) (*httptest.Server, *roundRobin) {
	t.Helper()
	rr := &roundRobin{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr.mu.Lock()
		if len(rr.proxies) == 0 {
			rr.mu.Unlock()
			http.Error(w, "no replica yet", http.StatusBadGateway)
			return
		}
		p := rr.proxies[rr.next%len(rr.proxies)]
		rr.next++
		rr.mu.Unlock()
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, rr
}

// to sends the balancer's requests to these replicas.
func (rr *roundRobin) to(t *testing.T, bases ...string) {
	t.Helper()
	var ps []*httputil.ReverseProxy
	for _, b := range bases {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.FlushInterval = -1 // event streams go through as they come
		ps = append(ps, p)
	}
	rr.mu.Lock()
	rr.proxies = ps
	rr.mu.Unlock()
}

// sseEvents reads a job's event stream from base until the terminal event,
// answering the ids (the job's versions) of the events seen.
func sseEvents(ctx context.Context, base, key, jobID string, out chan<- []int64) {
	var ids []int64
	defer func() { out <- ids }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/jobs/"+jobID+"/events", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 8<<10)
	idRE := regexp.MustCompile(`(?m)^id: (\d+)$`)
	for {
		n, err := res.Body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			end := bytes.Index(buf, []byte("\n\n"))
			if end < 0 {
				break
			}
			ev := string(buf[:end])
			buf = buf[end+2:]
			if m := idRE.FindStringSubmatch(ev); m != nil {
				v, _ := strconv.ParseInt(m[1], 10, 64)
				ids = append(ids, v)
			}
			if strings.Contains(ev, "event: succeeded") || strings.Contains(ev, "event: failed") || strings.Contains(ev, "event: canceled") {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestTwoReplicas is R40 and R41 on PostgreSQL: two sandboxes on one
// database behind a round-robin proxy serve one client as one sandbox; an
// event stream held on one replica hears every change, whichever replica's
// worker made it; when one replica is killed mid-job, every accepted job
// still ends and its webhooks are delivered by the other.
func TestTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sandbox binary")
	}
	dbURL := pgtest.URL(t)
	// Both replicas are reached through the balancer: its URL is their
	// public one (inbox URLs, links in webhooks).
	lb, rr := newRoundRobin(t)
	// Both start at once: the migrations take turns behind a lock.
	var a, b *replica
	var wg sync.WaitGroup
	pa, pb := freePort(t), freePort(t)
	wg.Go(func() { a = startReplica(t, "A", pa, dbURL, "-workers", "4", "-public-url", lb.URL) })
	wg.Go(func() { b = startReplica(t, "B", pb, dbURL, "-workers", "4", "-public-url", lb.URL) })
	wg.Wait()
	if t.Failed() {
		return
	}
	rr.to(t, a.url, b.url)
	c := newClient(lb.URL)
	c.newKey(t)

	// Jobs started and followed through the proxy, polls alternating: 12
	// steps each (an export of a year), so both replicas' workers take
	// part. A stream on A follows each.
	const n = 4
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	streams := make([]chan []int64, n)
	locs := make([]string, n)
	for i := range n {
		res, m := c.must(t, http.StatusAccepted, http.MethodPost, "/v1/exports", map[string]any{
			"format": "csv", "from": "2025-01-01", "to": "2025-12-31", "simulate": map[string]any{"duration_seconds": 120}})
		locs[i] = res.Header.Get("Location")
		streams[i] = make(chan []int64, 1)
		go sseEvents(ctx, a.url, c.key, m["id"].(string), streams[i])
	}
	for i, loc := range locs {
		if code, m := c.follow(t, loc, 60*time.Second); code != http.StatusSeeOther {
			t.Fatalf("export %d ended %d %v, want 303", i, code, m)
		}
	}
	var versions int64
	for i, ch := range streams {
		select {
		case ids := <-ch:
			if len(ids) == 0 {
				t.Fatalf("stream %d on A saw no event", i)
			}
			// Versions rise by one per change; coalescing may skip some,
			// but the last is the terminal one every poll saw.
			for j := 1; j < len(ids); j++ {
				if ids[j] <= ids[j-1] {
					t.Errorf("stream %d on A: versions %v do not rise", i, ids)
				}
			}
			versions += int64(len(ids))
		case <-ctx.Done():
			t.Fatalf("stream %d on A did not reach the terminal event", i)
		}
	}
	t.Logf("streams on A saw %d events of %d jobs", versions, n)
	workedBy := workersOf(t, dbURL)
	if len(workedBy) < 2 {
		t.Errorf("River jobs were worked by %v; want both replicas to have taken part", workedBy)
	}

	// Kill B while jobs run and a webhook waits for a retry: A finishes them.
	_, inbox := c.must(t, http.StatusCreated, http.MethodPost, "/v1/sandbox/inboxes", nil)
	inboxID := inbox["id"].(string)
	c.must(t, http.StatusOK, http.MethodPut, "/v1/sandbox/inboxes/"+inboxID+"/behaviour", map[string]any{"status": 503, "count": 2})
	c.must(t, http.StatusAccepted, http.MethodPost, "/v1/imports", map[string]any{
		"rows":         []any{map[string]any{"sku": "MUG-1", "name": "Mug", "quantity": 1, "price_cents": 100}},
		"callback_url": inbox["url"],
	})
	var accepted []string
	var refused atomic.Int32
	for range 10 {
		res, _ := c.call(t, http.MethodPost, "/v1/reports", reportBody(map[string]any{"duration_seconds": 200}))
		if res.StatusCode == http.StatusAccepted {
			accepted = append(accepted, res.Header.Get("Location"))
		} else {
			refused.Add(1)
		}
	}
	waitUntil(t, "two failed webhook deliveries", 20*time.Second, func() bool {
		ids, _ := newClientWith(a.url, c.key).inboxDeliveries(t, inboxID)
		return len(ids) >= 2
	})
	b.kill(t)
	rr.to(t, a.url) // the balancer notices B is gone
	ca := newClientWith(lb.URL, c.key)
	for _, loc := range accepted {
		// A job whose step was under way on B waits for River's rescue.
		if code, m := ca.follow(t, loc, 150*time.Second); code != http.StatusSeeOther {
			t.Errorf("a job accepted before B died ended %d %v, want 303", code, m)
		}
	}
	var ids []string
	var answered []int
	waitUntil(t, "the webhook's third attempt, by A", 60*time.Second, func() bool {
		ids, answered = ca.inboxDeliveries(t, inboxID)
		return len(ids) >= 3
	})
	if ids[2] != ids[0] || answered[2]/100 != 2 {
		t.Errorf("deliveries %v answered %v: want a third, 2xx, with the first's webhook-id", ids, answered)
	}
	t.Logf("%d jobs accepted before B died all finished on A (%d refused by rate limits)", len(accepted), refused.Load())
}

func newClientWith(base, key string) *client {
	c := newClient(base)
	c.key = key
	return c
}

// riverStates counts the River jobs of a kind by state, read from the
// database a sandbox process is using.
func riverStates(t *testing.T, database, kind string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := OpenDatabase(ctx, database, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Read().Query(ctx, `SELECT CAST(state AS TEXT), COUNT(*) FROM river_job WHERE kind = ? GROUP BY state`, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			t.Fatal(err)
		}
		out[state] = n
	}
	return out
}

// workersOf answers the River client ids that worked jobs, from the
// database.
func workersOf(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := OpenDatabase(ctx, dbURL, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Read().Query(ctx, `SELECT DISTINCT unnest(attempted_by) FROM river_job WHERE kind = 'accepted_job'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}
