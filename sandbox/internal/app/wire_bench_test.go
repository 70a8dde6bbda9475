package app

// Benchmarks measured from where a user stands (ARCHITECTURE.md, habit 18): the sandbox runs as
// its own process, the binary `go build ./sandbox` makes, on a SQLite file and on PostgreSQL; the
// load comes over loopback sockets from vegeta, used as a library in the benchmark's own process;
// and beside it, in the same run and in alternating rounds, runs the peer a user would pick
// instead: a bare net/http server, also its own process (testdata/wirebare), answering with the
// same status, headers and body bytes as the sandbox did. So a neighbour's burst on the shared
// machine slows both, and the ratio to bare says what the sandbox costs on top of net/http.
//
//	make bench-wire         # poll and accept: 16 connections at full speed, and 2,000 req/s open loop
//	make bench-wire-scale   # 100,000 jobs in flight on each backend, a restart, two replicas
//
// Each takes minutes and starts servers, so they run only when -bench names them (Wire): the
// -bench . of `make bench` skips them. PostgreSQL comes from pgtest (a throwaway cluster with
// fsync off; ACCEPTED_TEST_DATABASE_URL points at a server of your own instead); without its
// binaries they skip. -wire.round, -wire.rounds and -wire.jobs change the rounds and the jobs in
// flight, -wire.rate the open loop's rate (make bench-wire WIRE_FLAGS='-wire.rounds=5 -wire.rate=200').
//
// Rate limits: a key may start 5 jobs a second (burst 20) and poll 10 times a second (burst 20),
// and a client address may create a key every 2 s (burst 10). When `sandbox serve -h` offers a
// -rate-limits flag the servers run with -rate-limits off; otherwise the load is spread over
// enough keys that no limit is met (2,000 keys round-robin), and keys are created from as many
// loopback addresses (127.77.x.y) as needed. A refused request fails the benchmark, so a limit is
// never what is measured.

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/accepted-dev/accepted/sandbox/internal/pgtest"
)

var (
	wireRound     = flag.Duration("wire.round", 5*time.Second, "how long each target is driven in each round of the wire benchmarks")
	wireRoundsN   = flag.Int("wire.rounds", 3, "rounds of the wire benchmarks (each: bare, sqlite, bare, postgres)")
	wireInFlightN = flag.Int("wire.jobs", 100_000, "jobs in flight for BenchmarkWireInFlight")
	wireRateN     = flag.Int("wire.rate", 2000, "requests a second of the wire benchmarks' open loop, for latency")
	wireLimits    = flag.String("wire.limits", "off", "the sandbox's rate limits in the wire benchmarks: off (-rate-limits off), or on (the defaults, as deployed; only key minting is relaxed, to mint the keys the load goes round)")
)

// wireModes are the two ways the poll and accept loads run: a closed loop at full speed for
// throughput, and an open loop at a fixed rate for latency.
func wireModes() []wireMode {
	return []wireMode{{name: "max", conc: wireConns}, {name: fmt.Sprintf("rate=%d", *wireRateN), conc: 64, rate: *wireRateN}}
}

const (
	// wireConns is the closed loop's concurrency: 16 connections, each sending its next request
	// as soon as the previous answer arrived.
	wireConns = 16
	// wireOpenMaxWorkers bounds the open loop's concurrency: vegeta adds a worker whenever every
	// worker is busy when a request is due, so a slow server meets more connections, not fewer
	// requests.
	wireOpenMaxWorkers = 1000
	// wireKeyCount is how many API keys the poll and accept loads go round: over 2,000 keys,
	// 20,000 polls a second (after a burst of 40,000) and 10,000 starts a second stay under the
	// per-key limits.
	wireKeyCount = 2000
	// wireReportBody is accepted by the accept loads: 600 simulated seconds, 6 s at the
	// benchmarks' -time-scale 0.01, in 5 steps, so that every job accepted also runs.
	wireReportBody = `{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":600}}`
	// wireQuickBody ends at once: the poll loads poll jobs that are done (303 See Other).
	wireQuickBody = `{"from":"2026-01-01","to":"2026-01-31","simulate":{"duration_seconds":0}}`
	// wireDrainWithin bounds the wait for a sandbox to finish the jobs a round accepted.
	wireDrainWithin = 5 * time.Minute
)

// wireRequested skips the benchmark unless -bench names it: `make bench` (-bench .) would
// otherwise spend many minutes, past go test's default timeout, starting servers.
func wireRequested(b *testing.B) {
	b.Helper()
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Wire") {
		b.Skip("starts servers as processes and runs for minutes: run it by name (make bench-wire, make bench-wire-scale)")
	}
	if testing.Short() {
		b.Skip("runs the sandbox binary")
	}
}

// ---- processes ----

// wireProc is a server the benchmark started, its output going to a log file.
type wireProc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// wireStart starts argv with its output in logPath; the benchmark's cleanup kills it.
func wireStart(tb testing.TB, name, logPath string, argv ...string) *wireProc {
	tb.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	_ = f.Close() // the child has its own descriptor
	if err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	p := &wireProc{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.kill(tb)
		if tb.Failed() {
			tb.Logf("%s (%s), last lines of its log:\n%s", name, strings.Join(argv, " "), p.tail())
		}
	})
	return p
}

func (p *wireProc) pid() int { return p.cmd.Process.Pid }

func (p *wireProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *wireProc) kill(tb testing.TB) {
	tb.Helper()
	if !p.alive() {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Errorf("kill -9 %s (pid %d): %v", p.name, p.pid(), err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		tb.Errorf("%s (pid %d) still running 10 s after SIGKILL", p.name, p.pid())
	}
}

// tail is the end of the process's log.
func (p *wireProc) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// wireRSS answers the resident set of process pid now and at its peak (VmRSS and VmHWM, bytes).
func wireRSS(tb testing.TB, pid int) (rss, peak int64) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("reading the server's memory: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			tb.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak
}

// wireBareBin builds testdata/wirebare once per test binary, beside the sandbox binary.
var wireBareBin = sync.OnceValues(func() (string, error) {
	return buildBin("./sandbox/internal/app/testdata/wirebare", "wirebare")
})

// wireRelaxFlags answers the serve flags that turn the rate limits off when the binary has
// them (`sandbox serve -h` lists -rate-limits), nil otherwise.
var wireRelaxFlags = sync.OnceValues(func() ([]string, error) {
	bin, err := sandboxBin()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "serve", "-h").CombinedOutput() // -h exits 0 or 2 by version
	if ctx.Err() != nil {
		return nil, fmt.Errorf("sandbox serve -h did not answer within 30 s")
	}
	var flags []string
	switch *wireLimits {
	case "off":
		if bytes.Contains(out, []byte("-rate-limits")) {
			flags = append(flags, "-rate-limits", "off")
		}
	case "on":
		flags = append(flags, "-rate-keys", "1000000/1000000")
	default:
		return nil, fmt.Errorf("-wire.limits %q: use on or off", *wireLimits)
	}
	// Every key a benchmark mints comes from loopback, one network (/24): its share of keys
	// would evict most of them.
	if bytes.Contains(out, []byte("-max-keys-per-network")) {
		flags = append(flags, "-max-keys-per-network", "10000000")
	}
	return flags, nil
})

// ---- the sandbox as a process ----

// wireSandbox is one `sandbox serve` process (started again after a kill with launch).
type wireSandbox struct {
	name    string
	url     string
	bin     string
	base    []string // serve and the flags every start gets
	relaxed bool     // started with the rate limits off
	dir     string   // logs
	starts  int
	proc    *wireProc
	hc      *http.Client
}

// wireServe starts `sandbox serve` on database with the benchmarks' flags and extra, and waits
// until /readyz answers 200.
func wireServe(tb testing.TB, name, database string, extra ...string) *wireSandbox {
	tb.Helper()
	bin, err := sandboxBin()
	if err != nil {
		tb.Fatal(err)
	}
	relax, err := wireRelaxFlags()
	if err != nil {
		tb.Fatal(err)
	}
	port := freePort(tb)
	u := "http://127.0.0.1:" + strconv.Itoa(port)
	base := []string{"serve", "-addr", "127.0.0.1:" + strconv.Itoa(port), "-public-url", u, "-database", database}
	base = append(base, relax...)
	s := &wireSandbox{
		name: name, url: u, bin: bin, base: base, relaxed: *wireLimits == "off" && relax != nil, dir: tb.TempDir(),
		hc: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	tb.Cleanup(s.hc.CloseIdleConnections)
	s.launch(tb, extra...)
	s.waitReady(tb, time.Now(), 2*time.Minute)
	return s
}

// launch starts the process with the base flags and extra; it does not wait.
func (s *wireSandbox) launch(tb testing.TB, extra ...string) {
	tb.Helper()
	s.starts++
	argv := append(append([]string{s.bin}, s.base...), extra...)
	s.proc = wireStart(tb, s.name, filepath.Join(s.dir, fmt.Sprintf("%s-%d.log", s.name, s.starts)), argv...)
}

// wireHealth is what /readyz says: queued and running count the unfinished jobs of every
// replica (a count at most 100 ms old).
type wireHealth struct {
	code    int
	Status  string `json:"status"`
	Queued  *int   `json:"queued"`
	Running *int   `json:"running"`
}

func (h wireHealth) idle() bool {
	return h.code == http.StatusOK && h.Queued != nil && h.Running != nil && *h.Queued == 0 && *h.Running == 0
}

func (s *wireSandbox) readyz() (wireHealth, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
	res, err := s.hc.Do(req)
	if err != nil {
		return wireHealth{}, err
	}
	defer res.Body.Close()
	h := wireHealth{code: res.StatusCode}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&h); err != nil {
		return h, fmt.Errorf("/readyz %d: %w", res.StatusCode, err)
	}
	return h, nil
}

// waitReady waits until /readyz answers 200, failing after within (counted from began) or when
// the process exits.
func (s *wireSandbox) waitReady(tb testing.TB, began time.Time, within time.Duration) {
	tb.Helper()
	var last string
	for {
		h, err := s.readyz()
		if err == nil && h.code == http.StatusOK {
			return
		}
		if last = fmt.Sprint(err); err == nil {
			last = fmt.Sprintf("%d %s", h.code, h.Status)
		}
		if !s.proc.alive() {
			tb.Fatalf("%s exited before it was ready:\n%s", s.name, s.proc.tail())
		}
		if time.Since(began) > within {
			tb.Fatalf("%s not ready %s after its start (last: %v):\n%s", s.name, within, last, s.proc.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle waits until no job is queued or running, and answers how long that took.
func (s *wireSandbox) waitIdle(tb testing.TB, within time.Duration) time.Duration {
	tb.Helper()
	began := time.Now()
	var h wireHealth
	var err error
	for {
		h, err = s.readyz()
		if err == nil && h.idle() {
			return time.Since(began)
		}
		if !s.proc.alive() {
			tb.Fatalf("%s exited:\n%s", s.name, s.proc.tail())
		}
		if time.Since(began) > within {
			tb.Fatalf("%s still busy %s later: /readyz %d queued %v running %v (err %v)", s.name, within, h.code, deref(h.Queued), deref(h.Running), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func deref(p *int) any {
	if p == nil {
		return "?"
	}
	return *p
}

// do sends one request and answers the status, header and body.
func (s *wireSandbox) do(tb testing.TB, method, path, key, body string) (int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := s.hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s on %s: %v", method, path, s.name, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s on %s: %v", method, path, s.name, err)
	}
	return res.StatusCode, res.Header, b
}

// wireKeys issues n API keys on s over the wire. Key creation is limited per client network (10
// at once, then one every 2 s), so unless s runs without rate limits the keys come from n/10
// loopback addresses: Linux routes all of 127.0.0.0/8 to the loopback interface.
func wireKeys(tb testing.TB, s *wireSandbox, n int) []string {
	tb.Helper()
	const perAddr = 10
	clients := make([]*http.Client, (n+perAddr-1)/perAddr)
	for a := range clients {
		d := &net.Dialer{Timeout: 5 * time.Second}
		if !s.relaxed {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 77, byte(a/250), byte(1+a%250))}
		}
		clients[a] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	keys := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, wireConns)
	for range wireConns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				res, err := clients[i/perAddr].Post(s.url+"/v1/sandbox/keys", "", nil)
				if err != nil {
					errs <- fmt.Errorf("key %d on %s: %w", i, s.name, err)
					return
				}
				var k struct{ Key string }
				body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
				_ = res.Body.Close()
				if res.StatusCode != http.StatusCreated || json.Unmarshal(body, &k) != nil || k.Key == "" {
					errs <- fmt.Errorf("key %d on %s: POST /v1/sandbox/keys: %s %s", i, s.name, res.Status, body)
					return
				}
				keys[i] = k.Key
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	return keys
}

// wireFinishedJobs starts one job per key that ends at once, waits until every job is done, and
// answers each job's status URL path; polling one answers 303 See Other.
func wireFinishedJobs(tb testing.TB, s *wireSandbox, keys []string) []string {
	tb.Helper()
	locs := make([]string, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, wireConns)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: wireConns}}
	defer c.CloseIdleConnections()
	for range wireConns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/reports", strings.NewReader(wireQuickBody))
				req.Header.Set("Authorization", "Bearer "+keys[i])
				req.Header.Set("Content-Type", "application/json")
				res, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
				_ = res.Body.Close()
				if res.StatusCode != http.StatusAccepted || res.Header.Get("Location") == "" {
					errs <- fmt.Errorf("POST /v1/reports on %s: %s %s", s.name, res.Status, body)
					return
				}
				locs[i] = res.Header.Get("Location")
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	s.waitIdle(tb, wireDrainWithin)
	return locs
}

// ---- the bare peer ----

// wireAnswer is one recorded answer, as testdata/wirebare reads it.
type wireAnswer struct {
	Status int         `json:"status"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

// wireBare starts the bare server in its own process, answering like the sandbox did with
// status, header and body, and answers its URL.
func wireBare(tb testing.TB, status int, header http.Header, body []byte) string {
	tb.Helper()
	bin, err := wireBareBin()
	if err != nil {
		tb.Fatal(err)
	}
	h := header.Clone()
	h.Del("Date") // net/http writes these itself, on both
	h.Del("Content-Length")
	raw, err := json.Marshal(wireAnswer{Status: status, Header: h, Body: body})
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	file := filepath.Join(dir, "answer.json")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(tb))
	p := wireStart(tb, "bare", filepath.Join(dir, "bare.log"), bin, "-addr", addr, "-answer", file)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return "http://" + addr
		}
		if !p.alive() || time.Now().After(deadline) {
			tb.Fatalf("the bare server did not listen on %s within 30 s: %v\n%s", addr, err, p.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- load ----

// wireMode is how vegeta drives a target: closed (rate 0: conc workers, each sending its next
// request when the previous answer arrived) or open (rate requests a second, however the
// answers come).
type wireMode struct {
	name string
	conc int
	rate int
}

// connections bounds the connections a target's client keeps: one per worker.
func (m wireMode) connections() int {
	if m.rate == 0 {
		return m.conc
	}
	return wireOpenMaxWorkers
}

func (m wireMode) describe() string {
	if m.rate == 0 {
		return fmt.Sprintf("closed loop, %d connections at full speed", m.conc)
	}
	return fmt.Sprintf("open loop at %d req/s (latency from when each request was due)", m.rate)
}

// wireRun is what vegeta saw of one target, over one round or several.
type wireRun struct {
	due      int // open loop: the requests the pacer was to send
	ok, bad  int
	firstBad string
	elapsed  time.Duration // summed over rounds: first request sent to last answer
	lat      []time.Duration
}

func (r *wireRun) add(o wireRun) {
	r.due += o.due
	r.ok += o.ok
	r.bad += o.bad
	r.firstBad = cmp.Or(r.firstBad, o.firstBad)
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
}

func (r wireRun) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// q answers the q-quantile of the latencies (nearest rank), in milliseconds.
func (r wireRun) q(q float64) float64 {
	if len(r.lat) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(r.lat)))) - 1
	return float64(r.lat[min(max(i, 0), len(r.lat)-1)].Microseconds()) / 1000
}

// wireTargeter answers the i-th request from each call (concurrently); with n > 0 it ends the
// attack after n requests.
func wireTargeter(n int, fill func(i int, t *vegeta.Target)) vegeta.Targeter {
	var next atomic.Int64
	return func(t *vegeta.Target) error {
		i := int(next.Add(1)) - 1
		if n > 0 && i >= n {
			return vegeta.ErrNoTargets
		}
		fill(i, t)
		return nil
	}
}

// wireClient is the HTTP client of one target's attacks: connections kept alive across
// rounds, as a client's would be, and redirects not followed (a 303 is the answer measured).
func wireClient(tb testing.TB, conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// wireAttack drives tr with vegeta for d (or until tr runs out) and answers what it saw; a
// request counts as ok only with status want.
func wireAttack(c *http.Client, tr vegeta.Targeter, want int, m wireMode, d time.Duration) wireRun {
	opts := []func(*vegeta.Attacker){vegeta.Client(c), vegeta.Workers(uint64(m.conc))}
	pacer := vegeta.ConstantPacer{} // zero: as fast as the workers go
	if m.rate == 0 {
		opts = append(opts, vegeta.MaxWorkers(uint64(m.conc)))
	} else {
		opts = append(opts, vegeta.MaxWorkers(wireOpenMaxWorkers))
		pacer = vegeta.ConstantPacer{Freq: m.rate, Per: time.Second}
	}
	var r wireRun
	if m.rate > 0 {
		r.due = int(d.Seconds() * float64(m.rate))
	}
	a := vegeta.NewAttacker(opts...)
	var first, last time.Time
	type sent struct {
		seq     uint64
		at      time.Time
		latency time.Duration
	}
	var all []sent
	for res := range a.Attack(tr, pacer, d, m.name) {
		if res.Error == vegeta.ErrNoTargets.Error() {
			continue
		}
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if end := res.End(); end.After(last) {
			last = end
		}
		all = append(all, sent{res.Seq, res.Timestamp, res.Latency})
		if int(res.Code) == want && res.Error == "" {
			r.ok++
			continue
		}
		r.bad++
		if r.firstBad == "" {
			body := res.Body
			if len(body) > 300 {
				body = body[:300]
			}
			r.firstBad = fmt.Sprintf("%s %s: %d %s %s", res.Method, res.URL, res.Code, res.Error, body)
		}
	}
	r.elapsed = last.Sub(first)
	r.lat = make([]time.Duration, 0, len(all))
	if m.rate == 0 {
		for _, s := range all {
			r.lat = append(r.lat, s.latency)
		}
	} else {
		// Vegeta's latency runs from when a request was sent. The pacer makes request k due at
		// (k+1)/rate after the attack began, so measure from then: a generator that fell
		// behind (all workers busy, a starved CPU) cannot hide a slow server's queue.
		interval := time.Second / time.Duration(m.rate)
		var began time.Time
		for i, s := range all {
			if b := s.at.Add(-time.Duration(s.seq+1) * interval); i == 0 || b.Before(began) {
				began = b
			}
		}
		for _, s := range all {
			due := began.Add(time.Duration(s.seq+1) * interval)
			r.lat = append(r.lat, max(s.at.Add(s.latency).Sub(due), s.latency))
		}
	}
	slices.Sort(r.lat)
	return r
}

// wireTarget is one server under load in a comparison.
type wireTarget struct {
	name string
	want int
	tr   vegeta.Targeter
	c    *http.Client
	// after runs after each of its rounds (accept: wait until the jobs it accepted are done) and
	// answers a note for the table.
	after func(b *testing.B) string
}

// wireCompare warms every target, then drives them in alternating rounds, the reference (the
// bare server) before each other target (bare, sqlite, bare, postgres, …), so that a neighbour's
// burst slows both; it reports each target's throughput and latency, with its ratio to the
// reference, as metrics and as one table. go test keeps only the first 10 lines a benchmark
// logs, so each round is a column of the table, not a line.
func wireCompare(b *testing.B, what, setup string, m wireMode, ref *wireTarget, others ...*wireTarget) map[string]wireRun {
	b.Helper()
	round, rounds := *wireRound, *wireRoundsN
	runs := map[string]wireRun{}
	perRound := map[string][]string{}
	drive := func(t *wireTarget, d time.Duration, label string) {
		r := wireAttack(t.c, t.tr, t.want, m, d)
		if r.bad > 0 {
			b.Fatalf("%s, %s on %s: %d of %d requests failed, first: %s", what, label, t.name, r.bad, r.ok+r.bad, r.firstBad)
		}
		if r.ok == 0 {
			b.Fatalf("%s, %s on %s: no answer", what, label, t.name)
		}
		note := ""
		if t.after != nil {
			note = t.after(b)
		}
		if label == "warm-up" {
			return
		}
		run := runs[t.name]
		run.add(r)
		runs[t.name] = run
		cell := fmt.Sprintf("%.0f", r.rps())
		if m.rate > 0 {
			cell = fmt.Sprintf("%.1f", r.q(0.99))
		}
		if sent := r.ok + r.bad; sent < r.due*99/100 {
			// Every worker was busy: vegeta sends a due request only when one is free.
			note = strings.TrimPrefix(note+fmt.Sprintf("; %d of %d due sent", sent, r.due), "; ")
		}
		if note != "" {
			cell += " (" + note + ")"
		}
		perRound[t.name] = append(perRound[t.name], cell)
	}
	all := append([]*wireTarget{ref}, others...)
	for _, t := range all {
		drive(t, time.Second, "warm-up")
	}
	load := wireLoadAvg()
	b.ResetTimer()
	for r := range rounds {
		for _, t := range others {
			label := fmt.Sprintf("round %d", r+1)
			drive(ref, round, label)
			drive(t, round, label)
		}
	}
	b.StopTimer()

	floor := runs[ref.name]
	roundsCol := "req/s of each round"
	if m.rate > 0 {
		roundsCol = "p99 ms of each round"
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%s, %s, %d rounds of %s (load average before: %s):\n", what, m.describe(), rounds, round, load)
	if setup != "" {
		fmt.Fprintf(&tbl, "  (%s)\n", setup)
	}
	fmt.Fprintf(&tbl, "  %-9s %9s %8s %8s %8s %9s   %s\n", "target", "req/s", "of "+ref.name, "p50 ms", "p99 ms", "requests", roundsCol)
	for i, t := range all {
		r := runs[t.name]
		ratio := r.rps() / floor.rps()
		fmt.Fprintf(&tbl, "  %-9s %9.0f %8.2f %8.2f %8.2f %9d   %s", t.name, r.rps(), ratio, r.q(0.5), r.q(0.99), r.ok, strings.Join(perRound[t.name], ", "))
		if i < len(all)-1 {
			tbl.WriteByte('\n')
		}
		b.ReportMetric(r.rps(), t.name+"-req/s")
		b.ReportMetric(r.q(0.5), t.name+"-p50-ms")
		b.ReportMetric(r.q(0.99), t.name+"-p99-ms")
		if t != ref && m.rate == 0 {
			b.ReportMetric(ratio, t.name+"-of-"+ref.name)
		}
	}
	b.Log(tbl.String())
	return runs
}

// wireBackends starts the two sandboxes the comparisons load, SQLite first: pgtest.URL skips
// the benchmark when there is no PostgreSQL to start.
func wireBackends(b *testing.B, extra ...string) (sqlite, postgres *wireSandbox) {
	b.Helper()
	pg := pgtest.URL(b)
	sqlite = wireServe(b, "sqlite", filepath.Join(b.TempDir(), "sandbox.db"), extra...)
	postgres = wireServe(b, "postgres", pg, extra...)
	return sqlite, postgres
}

// wireSetup says, for the table, how the sandbox was loaded and what the bare server answers.
// The parent of sub-benchmarks has its log dropped, so this goes in each table.
func wireSetup(s *wireSandbox, status int, header http.Header, body []byte, extra string) string {
	limits := "rate limits off"
	if !s.relaxed {
		limits = fmt.Sprintf("rate limits on, so the load goes round %d keys", wireKeyCount)
	}
	return fmt.Sprintf("%s%s; bare replays the sandbox's %d: %d header fields, %d-byte body", limits, extra, status, len(header), len(body))
}

// wireSandboxFlags are the flags of the poll and accept sandboxes: jobs run 100 times faster
// than real time, and the queue holds every job the rounds accept.
var wireSandboxFlags = []string{"-time-scale", "0.01", "-queue-size", "1000000", "-max-jobs-per-network", "1000000"}

func wireGoal(got, goal float64) string {
	if got >= goal {
		return "met"
	}
	return "NOT met"
}

// BenchmarkWirePoll is GET /v1/jobs/{id} of a finished job (303 See Other) over loopback, on
// SQLite and PostgreSQL against the bare server. Goals: 0.5 of bare on SQLite, 0.3 on
// PostgreSQL (and 0.8 later).
func BenchmarkWirePoll(b *testing.B) {
	wireRequested(b)
	sqlite, postgres := wireBackends(b, wireSandboxFlags...)
	type polled struct {
		s    *wireSandbox
		keys []string
		locs []string
	}
	var sets []polled
	for _, s := range []*wireSandbox{sqlite, postgres} {
		keys := wireKeys(b, s, wireKeyCount)
		locs := wireFinishedJobs(b, s, keys)
		sets = append(sets, polled{s, keys, locs})
	}
	// The bare server answers exactly as SQLite's sandbox did to one poll.
	status, header, body := sqlite.do(b, http.MethodGet, sets[0].locs[0], sets[0].keys[0], "")
	if status != http.StatusSeeOther {
		b.Fatalf("polling a finished job: %d %s, want 303", status, body)
	}
	bareURL := wireBare(b, status, header, body)
	setup := wireSetup(sqlite, status, header, body, ", each with one finished job")
	bareHdr := http.Header{"Authorization": {"Bearer " + sets[0].keys[0]}}

	for _, m := range wireModes() {
		b.Run(m.name, func(b *testing.B) {
			conns := m.connections()
			bare := &wireTarget{name: "bare", want: http.StatusSeeOther, c: wireClient(b, conns),
				tr: wireTargeter(0, func(_ int, t *vegeta.Target) {
					t.Method, t.URL, t.Header = http.MethodGet, bareURL+sets[0].locs[0], bareHdr
				})}
			var targets []*wireTarget
			for _, p := range sets {
				hdrs := make([]http.Header, len(p.keys))
				for i, k := range p.keys {
					hdrs[i] = http.Header{"Authorization": {"Bearer " + k}}
				}
				targets = append(targets, &wireTarget{name: p.s.name, want: http.StatusSeeOther, c: wireClient(b, conns),
					tr: wireTargeter(0, func(i int, t *vegeta.Target) {
						j := i % len(p.locs)
						t.Method, t.URL, t.Header = http.MethodGet, p.s.url+p.locs[j], hdrs[j]
					})})
			}
			runs := wireCompare(b, "poll (GET /v1/jobs/{id} → 303)", setup, m, bare, targets...)
			if m.rate == 0 {
				sq, pg := runs["sqlite"].rps()/runs["bare"].rps(), runs["postgres"].rps()/runs["bare"].rps()
				b.Logf("goals: SQLite %.2f of bare (≥ 0.5: %s; ≥ 0.8 later: %s), PostgreSQL %.2f of bare (≥ 0.3: %s; ≥ 0.8 later: %s)",
					sq, wireGoal(sq, 0.5), wireGoal(sq, 0.8), pg, wireGoal(pg, 0.3), wireGoal(pg, 0.8))
			}
		})
	}
}

// BenchmarkWireAccept is POST /v1/reports → 202 Accepted over loopback, on SQLite and
// PostgreSQL against the bare server. Every job accepted also runs (6 s, 5 steps), partly during
// its round; after each round the sandbox is left to finish them before the next round starts,
// so that each round begins on a quiet machine. Goals: 1,000 jobs/s on each backend (and 0.6 of
// bare later).
func BenchmarkWireAccept(b *testing.B) {
	wireRequested(b)
	sqlite, postgres := wireBackends(b, wireSandboxFlags...)
	keys := map[*wireSandbox][]string{}
	for _, s := range []*wireSandbox{sqlite, postgres} {
		keys[s] = wireKeys(b, s, wireKeyCount)
	}
	status, header, body := sqlite.do(b, http.MethodPost, "/v1/reports", keys[sqlite][0], wireReportBody)
	if status != http.StatusAccepted {
		b.Fatalf("POST /v1/reports: %d %s, want 202", status, body)
	}
	bareURL := wireBare(b, status, header, body)
	setup := wireSetup(sqlite, status, header, body, "")
	post := func(url, key string, t *vegeta.Target) {
		t.Method, t.URL, t.Body = http.MethodPost, url+"/v1/reports", []byte(wireReportBody)
		t.Header = http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
	}

	for _, m := range wireModes() {
		b.Run(m.name, func(b *testing.B) {
			conns := m.connections()
			bare := &wireTarget{name: "bare", want: http.StatusAccepted, c: wireClient(b, conns),
				tr: wireTargeter(0, func(_ int, t *vegeta.Target) { post(bareURL, keys[sqlite][0], t) })}
			var targets []*wireTarget
			for _, s := range []*wireSandbox{sqlite, postgres} {
				ks := keys[s]
				targets = append(targets, &wireTarget{name: s.name, want: http.StatusAccepted, c: wireClient(b, conns),
					tr: wireTargeter(0, func(i int, t *vegeta.Target) { post(s.url, ks[i%len(ks)], t) }),
					after: func(b *testing.B) string {
						return fmt.Sprintf("idle %.1fs later", s.waitIdle(b, wireDrainWithin).Seconds())
					}})
			}
			// Jobs left by the setup or an earlier mode do not run into the first round.
			for _, s := range []*wireSandbox{sqlite, postgres} {
				s.waitIdle(b, wireDrainWithin)
			}
			runs := wireCompare(b, "accept (POST /v1/reports → 202)", setup, m, bare, targets...)
			if m.rate == 0 {
				sq, pg := runs["sqlite"].rps(), runs["postgres"].rps()
				fb := runs["bare"].rps()
				b.Logf("goals: SQLite %.0f jobs/s (≥ 1,000: %s), %.2f of bare (≥ 0.6 later: %s); PostgreSQL %.0f jobs/s (≥ 1,000: %s), %.2f of bare (≥ 0.6 later: %s)",
					sq, wireGoal(sq, 1000), sq/fb, wireGoal(sq/fb, 0.6), pg, wireGoal(pg, 1000), pg/fb, wireGoal(pg/fb, 0.6))
			}
		})
	}
}

// ---- scale ----

// wireDiskSize answers what the database takes on disk: the SQLite file with its WAL and
// shared-memory files, or pg_database_size.
func wireDiskSize(tb testing.TB, backend, database string) int64 {
	tb.Helper()
	if backend == "sqlite" {
		var n int64
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if st, err := os.Stat(database + suffix); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	var n int64
	wirePG(tb, database, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	})
	return n
}

func wirePG(tb testing.TB, url string, f func(context.Context, *pgx.Conn) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	if err := f(ctx, c); err != nil {
		tb.Fatal(err)
	}
}

// wireUnfinished counts the queued and processing jobs in the database of a stopped sandbox:
// exactly what it left, which /readyz of a running one answers only within 100 ms.
func wireUnfinished(tb testing.TB, backend, database string) (queued, processing int) {
	tb.Helper()
	const q = `SELECT COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'processing' THEN 1 ELSE 0 END), 0) FROM jobs`
	if backend == "postgres" {
		wirePG(tb, database, func(ctx context.Context, c *pgx.Conn) error { return c.QueryRow(ctx, q).Scan(&queued, &processing) })
		return queued, processing
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Read-write, as the sandbox will open it: the first connection after a kill -9 may have to
	// rebuild the WAL index. Nothing is written.
	db, err := sql.Open("sqlite", "file:"+database+"?_pragma=busy_timeout(10000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, q).Scan(&queued, &processing); err != nil {
		tb.Fatalf("counting the jobs left in %s: %v", database, err)
	}
	return queued, processing
}

// BenchmarkWireInFlight holds 100,000 accepted, long-running jobs (600 simulated seconds at
// -time-scale 100: 17 hours) in a sandbox on each backend, and reports:
//
//   - accepting them over the wire, 16 connections, by a sandbox started with -workers 1, so
//     that, as after a burst beyond the workers, nearly all of them are still queued;
//   - the server process's resident memory per job (VmRSS after minus before, from
//     /proc/<pid>/status: /debug/pprof is not exposed) and the database's size on disk per job;
//   - kill -9, then a start with the default -workers: the time until /readyz answers 200, until
//     the first of those jobs advances (the queued count of /readyz falls), and how fast the
//     backlog is then started, within a bounded wait.
func BenchmarkWireInFlight(b *testing.B) {
	wireRequested(b)
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) { wireInFlight(b, backend) })
	}
}

func wireInFlight(b *testing.B, backend string) {
	n := *wireInFlightN
	var database string
	if backend == "postgres" {
		database = pgtest.URL(b)
	} else {
		database = filepath.Join(b.TempDir(), "sandbox.db")
	}
	// At most 100 jobs per key (the default cap of unfinished jobs per key) over at least 500
	// keys: 10,000 at once and 2,500 a second after that stay under the start limit.
	flags := []string{"-time-scale", "100", "-queue-size", strconv.Itoa(2 * n), "-max-jobs-per-network", strconv.Itoa(2 * n)}
	s := wireServe(b, backend, database, append(flags, "-workers", "1")...)
	keys := wireKeys(b, s, max(n/100, 500))
	time.Sleep(time.Second) // let what starting and the keys allocated settle
	rss0, _ := wireRSS(b, s.proc.pid())
	disk0 := wireDiskSize(b, backend, database)

	load := wireLoadAvg()
	c := wireClient(b, wireConns)
	tr := wireTargeter(n, func(i int, t *vegeta.Target) {
		t.Method, t.URL, t.Body = http.MethodPost, s.url+"/v1/reports", []byte(wireReportBody)
		t.Header = http.Header{"Authorization": {"Bearer " + keys[i%len(keys)]}, "Content-Type": {"application/json"}}
	})
	b.ResetTimer()
	fill := wireAttack(c, tr, http.StatusAccepted, wireMode{name: "fill", conc: wireConns}, 30*time.Minute)
	b.StopTimer()
	if fill.bad > 0 || fill.ok != n {
		b.Fatalf("accepted %d of %d jobs (%d refused), first refusal: %s", fill.ok, n, fill.bad, fill.firstBad)
	}
	time.Sleep(3 * time.Second)
	rss1, peak1 := wireRSS(b, s.proc.pid())
	disk1 := wireDiskSize(b, backend, database)
	h, _ := s.readyz()

	// kill -9, and count exactly what it left.
	s.proc.kill(b)
	queued, processing := wireUnfinished(b, backend, database)
	if queued+processing < n {
		b.Fatalf("after the kill the database holds %d queued and %d processing jobs, want %d unfinished", queued, processing, n)
	}

	// Start again, watching /readyz from the first instant: until it answers 200, until its
	// queued count falls (the first job advanced: River took it and its first step committed),
	// and then, every 250 ms for at most 3 minutes, until nothing is queued any more.
	began := time.Now()
	s.launch(b, flags...)
	var ready, first, most, drained time.Duration // most: 99 % of the queued jobs started
	lastQueued := queued
watch:
	for {
		if !s.proc.alive() {
			b.Fatalf("%s exited after its restart:\n%s", s.name, s.proc.tail())
		}
		h, err := s.readyz()
		at := time.Since(began)
		if err == nil && h.code == http.StatusOK {
			if ready == 0 {
				ready = at
			}
			if h.Queued != nil {
				lastQueued = *h.Queued
				if first == 0 && *h.Queued < queued {
					first = at
				}
				if most == 0 && *h.Queued <= queued/100 {
					most = at
				}
				if *h.Queued == 0 {
					drained = at
					break watch
				}
			}
		}
		switch {
		case (ready == 0 || first == 0) && at > 5*time.Minute:
			b.Fatalf("%s restarted with %d queued jobs: ready after %v, first advance after %v; gave up after 5 min:\n%s",
				backend, queued, ready, first, s.proc.tail())
		case ready == 0 || first == 0:
			time.Sleep(10 * time.Millisecond)
		case at-first > 3*time.Minute:
			break watch
		default:
			time.Sleep(250 * time.Millisecond)
		}
	}
	// The rate at which the backlog starts, from the first start to 99 % (or to the end of the
	// wait): the last jobs may be the ones whose River job was running in the killed process,
	// which River rescues only after RescueStuckJobsAfter.
	started, startedIn := queued-lastQueued, time.Since(began)-first
	if most > 0 {
		started, startedIn = queued-queued/100, most-first
	}
	rate := float64(started) / startedIn.Seconds()
	rss2, peak2 := wireRSS(b, s.proc.pid())

	perJob := float64(rss1-rss0) / float64(n)
	diskPerJob := float64(disk1-disk0) / float64(n)
	b.ReportMetric(fill.rps(), "accept-jobs/s")
	b.ReportMetric(perJob, "rss-B/job")
	b.ReportMetric(diskPerJob, "disk-B/job")
	b.ReportMetric(ready.Seconds(), "ready-s")
	if queued > 0 {
		b.ReportMetric(first.Seconds(), "first-advance-s")
		b.ReportMetric(rate, "restarted-jobs/s")
	}
	// At most 9 lines: go test keeps 10 of what a benchmark logs, and pgtest may log one.
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%s, %d jobs in flight (accepted by a sandbox with -workers 1; kill -9; started again with the default -workers; load average before: %s):\n", backend, n, load)
	fmt.Fprintf(&tbl, "  accepting them, 16 connections    %.0f jobs/s (%s; p50 %.2f ms, p99 %.2f ms)\n", fill.rps(), fill.elapsed.Round(time.Millisecond), fill.q(0.5), fill.q(0.99))
	fmt.Fprintf(&tbl, "  server RSS before → after         %.1f → %.1f MB (peak %.1f MB): %.0f B per job\n", mb(rss0), mb(rss1), mb(peak1), perJob)
	fmt.Fprintf(&tbl, "  database on disk before → after   %.1f → %.1f MB: %.0f B per job\n", mb(disk0), mb(disk1), diskPerJob)
	fmt.Fprintf(&tbl, "  at the kill                       %d queued, %d processing in the database (/readyz just before: %v queued, %v running)\n", queued, processing, deref(h.Queued), deref(h.Running))
	if queued == 0 {
		fmt.Fprintf(&tbl, "  restart: /readyz 200 after        %.3f s; first job advancing not timed: none was queued at the kill\n", ready.Seconds())
	} else {
		fmt.Fprintf(&tbl, "  restart: /readyz 200 after        %.3f s; first job advanced after %.3f s (the queued count of /readyz fell; ≤ 100 ms old)\n", ready.Seconds(), first.Seconds())
	}
	switch {
	case drained > 0:
		fmt.Fprintf(&tbl, "  restart: the queued jobs started   99 %% after %.1f s (%.0f jobs/s), all after %.1f s\n", most.Seconds(), rate, drained.Seconds())
	case most > 0:
		fmt.Fprintf(&tbl, "  restart: the queued jobs started   99 %% after %.1f s (%.0f jobs/s); %d still queued 3 min later\n", most.Seconds(), rate, lastQueued)
	default:
		fmt.Fprintf(&tbl, "  restart: 3 min later, started     %d of %d queued: %.0f jobs/s\n", started, queued, rate)
	}
	fmt.Fprintf(&tbl, "  server RSS then                   %.1f MB (peak %.1f MB)", mb(rss2), mb(peak2))
	b.Log(tbl.String())
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// wireLoadAvg is the machine's load average over 1, 5 and 15 minutes: on a shared machine,
// what the neighbours were doing.
func wireLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkWireReplicas is accepting (POST /v1/reports, 16 connections at full speed) on one
// PostgreSQL database through one sandbox, and through two replicas taken in turn by the
// generator (a round-robin, as a load balancer would), in alternating rounds. Every process
// shares the same two cores: the generator, both replicas and PostgreSQL, so a second replica
// adds no CPU, only a second process to share it with.
func BenchmarkWireReplicas(b *testing.B) {
	wireRequested(b)
	database := pgtest.URL(b)
	one := wireServe(b, "replica-a", database, wireSandboxFlags...)
	two := wireServe(b, "replica-b", database, wireSandboxFlags...)
	keys := wireKeys(b, one, wireKeyCount) // keys live in the database: both replicas know them
	post := func(url, key string, t *vegeta.Target) {
		t.Method, t.URL, t.Body = http.MethodPost, url+"/v1/reports", []byte(wireReportBody)
		t.Header = http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
	}
	after := func(b *testing.B) string { // /readyz counts the jobs of every replica
		return fmt.Sprintf("idle %.1fs later", one.waitIdle(b, wireDrainWithin).Seconds())
	}
	m := wireMode{name: "max", conc: wireConns}
	single := &wireTarget{name: "one", want: http.StatusAccepted, c: wireClient(b, wireConns), after: after,
		tr: wireTargeter(0, func(i int, t *vegeta.Target) { post(one.url, keys[i%len(keys)], t) })}
	pair := &wireTarget{name: "two", want: http.StatusAccepted, c: wireClient(b, wireConns), after: after,
		tr: wireTargeter(0, func(i int, t *vegeta.Target) {
			post([]string{one.url, two.url}[i%2], keys[(i/2)%len(keys)], t)
		})}
	one.waitIdle(b, wireDrainWithin)
	runs := wireCompare(b, "accept (POST /v1/reports → 202) on one PostgreSQL database, one replica vs two in turn", "", m, single, pair)
	b.Logf("two replicas: %.2f of one; both share the 2 cores with PostgreSQL and the generator", runs["two"].rps()/runs["one"].rps())
}
