package app

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// TestExamples runs every program in examples/ as a separate process
// against a real sandbox, as a reader would run them: the Go ones built
// with `go build`, the others with node, python3 and sh. A language is
// skipped when its runtime is missing, except in CI (CI set), where every
// runtime must be there.
//
// The Go examples are built once and run as binaries rather than with
// `go run`, so that a signal sent to the process reaches the program
// itself, not the go command in front of it.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every example as a process")
	}
	root := exModuleRoot(t)
	ex := &exEnv{
		root: root,
		ts:   newSandbox(t, nil, withScale(0.01), func(c *Config, _ *Deps) { c.AllowPrivateCallbacks = true }),
		// Cancel tests need a job that is surely still running when the
		// signal lands, however loaded the machine: on this sandbox the
		// clock stands still, so jobs never get past their first step.
		frozen: newSandbox(t, nil, withScale(1), withFakeClock(clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))),
	}
	// Built on first use, so the other languages need not wait for it.
	binDir := t.TempDir()
	ex.goBin = sync.OnceValues(func() (string, error) {
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./examples/go/...")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./examples/go/...: %v\n%s", err, out)
		}
		return binDir, nil
	})
	// python3 is often a version manager's shim (pyenv, asdf) that starts a
	// shell on every call, and poll.sh calls it for each answer: resolve it
	// once to the interpreter itself, on a PATH of its own.
	pyDir := t.TempDir()
	ex.pyPath = sync.OnceValues(func() (string, error) {
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			return "", fmt.Errorf("python3: %w", err)
		}
		return pyDir, os.Symlink(strings.TrimSpace(string(out)), filepath.Join(pyDir, "python3"))
	})

	// Most of an example's time is spent waiting for Retry-After, so each
	// group starts its processes together and then checks them one by one:
	// `go test -parallel` (GOMAXPROCS by default) would otherwise run only a
	// couple of them at a time.
	for _, lang := range []string{"go", "js", "python", "curl"} {
		t.Run("poll/"+lang, func(t *testing.T) {
			t.Parallel()
			ex.command(t, lang, "poll") // skip early when the runtime is missing
			// Cancel first: it sends its signal once the first poll is printed.
			exCheck(t,
				"cancel", ex.pollCancel(t, lang),
				"report", ex.pollReport(t, lang),
				"export", ex.pollExport(t, lang),
				"failure", ex.pollFailure(t, lang))
		})
	}
	for _, lang := range []string{"go", "js"} {
		t.Run("events/"+lang, func(t *testing.T) { t.Parallel(); exCheck(t, "resume", ex.eventsResume(t, lang)) })
	}
	for _, lang := range []string{"go", "js", "python"} {
		t.Run("webhooks/"+lang, func(t *testing.T) { t.Parallel(); ex.webhookReceiver(t, lang) })
	}
	t.Run("webhooks/verify_known_answer", func(t *testing.T) {
		t.Parallel()
		for _, lang := range []string{"js", "python"} {
			t.Run(lang, func(t *testing.T) { ex.verifyKnownAnswer(t, lang) })
		}
	})
	t.Run("producer", func(t *testing.T) { t.Parallel(); ex.producer(t) })
	t.Run("stuck/curl", func(t *testing.T) { t.Parallel(); ex.stuck(t) })
}

// exCheck runs the checks of examples already started, each as a subtest:
// pairs of a name and a check.
func exCheck(t *testing.T, pairs ...any) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		t.Run(pairs[i].(string), pairs[i+1].(func(*testing.T)))
	}
}

// exEnv is what every example run shares.
type exEnv struct {
	root   string
	ts     *testSandbox
	frozen *testSandbox
	goBin  func() (string, error)
	pyPath func() (string, error) // a directory holding python3
}

// command returns how to run example name ("poll", "events"…) in lang,
// skipping the test when the runtime is missing outside CI.
func (ex *exEnv) command(t *testing.T, lang, name string) []string {
	t.Helper()
	switch lang {
	case "go":
		exNeed(t, "go")
		dir, err := ex.goBin()
		if err != nil {
			t.Fatal(err)
		}
		return []string{filepath.Join(dir, name)}
	case "js":
		return []string{exNeed(t, "node"), filepath.Join(ex.root, "examples", "js", name+".mjs")}
	case "python":
		return []string{ex.python(t), filepath.Join(ex.root, "examples", "python", strings.ReplaceAll(name, "-", "_")+".py")}
	case "curl":
		exNeed(t, "curl")
		ex.python(t)
		return []string{exNeed(t, "sh"), filepath.Join(ex.root, "examples", "curl", name+".sh")}
	}
	t.Fatalf("no language %q", lang)
	return nil
}

// python returns the python3 interpreter (see pyPath).
func (ex *exEnv) python(t *testing.T) string {
	t.Helper()
	exNeed(t, "python3")
	dir, err := ex.pyPath()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "python3")
}

// exNeed finds a program on PATH; missing, it skips the test, or fails it in CI.
func exNeed(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed in CI to run the examples: %v", prog, err)
		}
		t.Skipf("%s not installed: %v", prog, err)
	}
	return p
}

// exModuleRoot is the directory of go.mod.
func exModuleRoot(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod)
		}
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// start runs an example with the sandbox's URL and a fresh key (unless env
// says otherwise) in a temporary directory.
func (ex *exEnv) start(t *testing.T, lang, name string, env ...string) *exProc {
	t.Helper()
	argv := ex.command(t, lang, name)
	base := []string{
		"ACCEPTED_URL=" + ex.ts.srv.URL, "ACCEPTED_KEY=" + ex.ts.key(t),
		"ACCEPTED_KIND=", "ACCEPTED_SIMULATE=", "ACCEPTED_TIMEOUT=", "ACCEPTED_OUT=", "ACCEPTED_JOB=",
		"ACCEPTED_DROP_ONCE=", "ACCEPTED_WEBHOOK_SECRET=", "ACCEPTED_LISTEN=", "ACCEPTED_EVENTS_FILE=",
	}
	if lang == "curl" { // poll.sh calls python3 by name
		base = append(base, "PATH="+filepath.Dir(ex.python(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return exStart(t, t.TempDir(), append(base, env...), argv...)
}

// exProc is a running example.
type exProc struct {
	cmd            *exec.Cmd
	dir            string
	stdout, stderr exBuffer
	exited         chan struct{}
	code           int
}

type exBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *exBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *exBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func exStart(t *testing.T, dir string, env []string, argv ...string) *exProc {
	t.Helper()
	p := &exProc{dir: dir, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	go func() {
		_ = p.cmd.Wait() // an exit status other than 0 is an error too: the code says it
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			if err := p.cmd.Process.Kill(); err != nil {
				t.Logf("killing %v: %v", p.cmd.Args, err)
			}
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// wait returns the exit code, failing the test if it takes over 30 s.
func (p *exProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.code
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit in 30 s", p.cmd.Path)
		return -1
	}
}

// await waits until stdout matches re, and returns the submatches.
func (p *exProc) await(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(30 * time.Second)
	for {
		if m := rx.FindStringSubmatch(p.stdout.String()); m != nil {
			return m
		}
		select {
		case <-p.exited:
			if m := rx.FindStringSubmatch(p.stdout.String()); m != nil {
				return m
			}
			t.Fatalf("exited (%d) before printing /%s/", p.code, re)
		case <-deadline:
			t.Fatalf("no /%s/ in 30 s", re)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exMustMatch checks that s matches re and returns the submatches.
func exMustMatch(t *testing.T, what, s, re string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s does not match /%s/:\n%s", what, re, s)
	}
	return m
}

func (ex *exEnv) pollReport(t *testing.T, lang string) func(*testing.T) {
	env := []string{}
	if lang == "js" { // one client shows getting a key by itself
		env = append(env, "ACCEPTED_KEY=")
	}
	p := ex.start(t, lang, "poll", env...)
	return func(t *testing.T) {
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		exMustMatch(t, "stdout", p.stdout.String(), `(?m)^started job_[a-z0-9]+ \(report\)`)
		exMustMatch(t, "stdout", p.stdout.String(), `(?m)^report rpt_[a-z0-9]+ "January" 2026-01-01\.\.2026-01-31: 31 days, [1-9][0-9]* orders`)
		if lang == "js" {
			exMustMatch(t, "stderr", p.stderr.String(), `using a new sandbox key sk_sandbox_\w+`)
		}
	}
}

func (ex *exEnv) pollExport(t *testing.T, lang string) func(*testing.T) {
	key := ex.ts.key(t)
	p := ex.start(t, lang, "poll", "ACCEPTED_KEY="+key, "ACCEPTED_KIND=export")
	return func(t *testing.T) {
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		out := p.stdout.String()
		job := exMustMatch(t, "stdout", out, `(?m)^started job_([a-z0-9]+) \(export\)`)[1]
		m := exMustMatch(t, "stdout", out, `(?m)^saved (\S+) \((\d+) bytes\), sha256 ([0-9a-f]{64}) verified$`)
		data, err := os.ReadFile(filepath.Join(p.dir, filepath.Base(m[1])))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		file := ex.ts.do(t, http.MethodGet, "/v1/exports/exp_"+job, key, nil).json(t)["file"].(map[string]any)
		if hex.EncodeToString(sum[:]) != m[3] || m[3] != file["sha256"] || fmt.Sprint(len(data)) != m[2] {
			t.Errorf("saved file: sha256 %x (%d bytes); printed %s (%s bytes); the export says %v", sum, len(data), m[3], m[2], file["sha256"])
		}
	}
}

func (ex *exEnv) pollFailure(t *testing.T, lang string) func(*testing.T) {
	p := ex.start(t, lang, "poll", `ACCEPTED_SIMULATE={"outcome":"fail","fail_code":"upstream_unavailable"}`)
	return func(t *testing.T) {
		if code := p.wait(t); code != 3 {
			t.Fatalf("exit %d, want 3", code)
		}
		job := exMustMatch(t, "stdout", p.stdout.String(), `(?m)^started (job_[a-z0-9]+)`)[1]
		e, _ := ex.ts.s.Catalog().Entry("upstream_unavailable")
		want := fmt.Sprintf("job %s failed: upstream_unavailable: %s", job, e.Title)
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func (ex *exEnv) pollCancel(t *testing.T, lang string) func(*testing.T) {
	key := ex.frozen.key(t)
	// Five seconds of work: the first Retry-After is 1.
	p := ex.start(t, lang, "poll", "ACCEPTED_URL="+ex.frozen.srv.URL, "ACCEPTED_KEY="+key, `ACCEPTED_SIMULATE={"duration_seconds":5}`)
	return func(t *testing.T) {
		job := p.await(t, `(?m)^started (job_[a-z0-9]+)`)[1]
		p.await(t, `next poll in`)
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(t); code != 130 {
			t.Fatalf("exit %d after SIGINT, want 130", code)
		}
		if st := ex.frozen.do(t, http.MethodGet, "/v1/jobs/"+job, key, nil).json(t)["status"]; st != "canceled" {
			t.Errorf("after SIGINT the job is %v on the server, want canceled", st)
		}
		exMustMatch(t, "stderr", p.stderr.String(), job+`:? canceled`)
	}
}

// eventsResume drops the stream after the first event and checks that the
// client reconnects with that event's id and gets only later ones.
func (ex *exEnv) eventsResume(t *testing.T, lang string) func(*testing.T) {
	p := ex.start(t, lang, "events", "ACCEPTED_DROP_ONCE=1", `ACCEPTED_SIMULATE={"duration_seconds":300}`)
	return func(t *testing.T) {
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		out := p.stdout.String()
		lines := strings.Split(out, "\n")
		var before, after []int
		resumedFrom := -1
		for _, l := range lines {
			var id int
			var typ string
			if _, err := fmt.Sscanf(l, "event %d %s", &id, &typ); err == nil {
				if resumedFrom < 0 {
					before = append(before, id)
				} else {
					after = append(after, id)
				}
			} else if m := regexp.MustCompile(`Last-Event-ID: (\d+)$`).FindStringSubmatch(l); m != nil {
				if resumedFrom >= 0 {
					t.Fatalf("reconnected twice:\n%s", out)
				}
				if resumedFrom, err = strconv.Atoi(m[1]); err != nil {
					t.Fatalf("Last-Event-ID %q: %v", m[1], err)
				}
			}
		}
		if len(before) != 1 || resumedFrom != before[0] || len(after) == 0 || after[0] <= resumedFrom {
			t.Fatalf("events before the drop %v, resumed from %d, events after %v; want one event, its id, then later ids:\n%s", before, resumedFrom, after, out)
		}
		exMustMatch(t, "stdout", out, `(?m)^event \d+ succeeded: succeeded 100%`)
	}
}

// exImportRows make an import in which every row is imported.
var exImportRows = []map[string]any{
	{"sku": "MUG-BLUE-350", "name": "Blue mug, 350 ml", "quantity": 24, "price_cents": 1290},
	{"sku": "MUG-RED-350", "name": "Red mug, 350 ml", "quantity": 12, "price_cents": 1290},
}

// webhookReceiver feeds a receiver a real import's webhook and its
// redelivery, then hand-signed deliveries: tampered, too old, duplicated.
func (ex *exEnv) webhookReceiver(t *testing.T, lang string) {
	ts := ex.ts
	key := ts.key(t)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	// No ACCEPTED_WEBHOOK_SECRET: the receiver reads its key's secret from the sandbox.
	p := ex.start(t, lang, "webhook-receiver", "ACCEPTED_KEY="+key, "ACCEPTED_LISTEN=127.0.0.1:0", "ACCEPTED_EVENTS_FILE="+events)
	url := p.await(t, `listening on (http://\S+/webhooks)`)[1]

	r := ts.mustStart(t, key, "/v1/imports", map[string]any{"rows": exImportRows, "callback_url": url})
	deliveries := r.json(t)["deliveries_url"].(string)
	log := exAwaitDeliveries(t, ts, key, deliveries, 1)
	msgID := log["message_id"].(string)
	stored := exReadEvents(t, events)
	if len(stored) != 1 || stored[0]["webhook_id"] != msgID || stored[0]["event"].(map[string]any)["type"] != "import.complete" {
		t.Fatalf("after the import's webhook, the receiver stored %v; want one import.complete with id %s", stored, msgID)
	}

	// A redelivery has the same webhook-id: answered 2xx, not stored again.
	if re := ts.do(t, http.MethodPost, deliveries, key, nil); re.StatusCode != http.StatusAccepted {
		t.Fatalf("redeliver: %d %s", re.StatusCode, re.body)
	}
	exAwaitDeliveries(t, ts, key, deliveries, 2)
	p.await(t, `duplicate `+msgID)
	if n := len(exReadEvents(t, events)); n != 1 {
		t.Errorf("after a redelivery the receiver holds %d events, want 1", n)
	}

	// Hand-signed deliveries, with the key's secret.
	secret := ts.do(t, http.MethodGet, "/v1/webhooks/secret", key, nil).json(t)["secret"].(string)
	signer, err := webhooks.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"import.complete","timestamp":"2026-01-31T09:30:03Z","data":{"import_id":"imp_handmade"}}`)
	send := func(id string, at time.Time, body []byte, tamper func(sig string, body []byte) (string, []byte)) int {
		sig, err := signer.Sign(id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			sig, body = tamper(sig, body)
		}
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhooks.HeaderID, id)
		req.Header.Set(webhooks.HeaderTimestamp, fmt.Sprint(at.Unix()))
		req.Header.Set(webhooks.HeaderSignature, sig)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	now := time.Now()
	tamperedSig := func(sig string, body []byte) (string, []byte) {
		b := []byte(sig)
		b[len(b)-3] ^= 1 // one bit of the base64 HMAC
		return string(b), body
	}
	tamperedBody := func(sig string, body []byte) (string, []byte) {
		return sig, bytes.Replace(body, []byte("handmade"), []byte("tampered"), 1)
	}
	if code := send(webhooks.NewMessageID(), now, body, tamperedSig); code < 400 || code > 499 {
		t.Errorf("tampered signature: %d, want 4xx", code)
	}
	if code := send(webhooks.NewMessageID(), now, body, tamperedBody); code < 400 || code > 499 {
		t.Errorf("tampered body: %d, want 4xx", code)
	}
	if code := send(webhooks.NewMessageID(), now.Add(-10*time.Minute), body, nil); code < 400 || code > 499 {
		t.Errorf("timestamp 10 minutes old: %d, want 4xx", code)
	}
	dup := webhooks.NewMessageID()
	for i := range 2 {
		if code := send(dup, now, body, nil); code != http.StatusOK {
			t.Errorf("delivery %d of %s: %d, want 200", i+1, dup, code)
		}
	}
	stored = exReadEvents(t, events)
	if len(stored) != 2 || stored[1]["webhook_id"] != dup {
		t.Errorf("after tampered, old and twice-sent deliveries the receiver stored %d events (%v), want 2 ending with %s", len(stored), stored, dup)
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
}

// exAwaitDeliveries waits until an import's delivery log shows n delivered
// attempts, and returns the log.
func exAwaitDeliveries(t *testing.T, ts *testSandbox, key, path string, n int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := ts.do(t, http.MethodGet, path, key, nil)
		if r.StatusCode == http.StatusOK {
			log := r.json(t)
			delivered := 0
			attempts, _ := log["attempts"].([]any)
			for _, a := range attempts {
				if a.(map[string]any)["outcome"] == "delivered" {
					delivered++
				}
			}
			if delivered >= n {
				return log
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery log after 20 s: %s", r.body)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exReadEvents reads a receiver's JSON Lines file.
func exReadEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v in %q", path, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// verifyKnownAnswer calls the receivers' verify functions on the Standard
// Webhooks known-answer vector (ASYNC-CONFORMANCE.md R25), at its own time
// and six minutes later, and on a changed body. The Go receiver's verify
// has its own go test next to it.
func (ex *exEnv) verifyKnownAnswer(t *testing.T, lang string) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		stamp  = "1614265330"
		body   = `{"test": 2432232314}`
		sig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	var argv []string
	switch lang {
	case "js":
		src := fmt.Sprintf(`
import { verify } from %q;
const h = { id: %q, timestamp: %q, signature: %q };
const check = (body, now) => { try { verify(%q, h, Buffer.from(body), now); return 'ok'; } catch (e) { return e.message; } };
console.log(check(%q, %s));
console.log(check(%q, %s + 360));
console.log(check(%q, %s));`,
			"file://"+filepath.Join(ex.root, "examples", "js", "webhook-receiver.mjs"), id, stamp, sig, secret,
			body, stamp, body, stamp, strings.Replace(body, "4}", "5}", 1), stamp)
		argv = []string{exNeed(t, "node"), "--input-type=module", "-e", src}
	case "python":
		src := fmt.Sprintf(`
import sys
sys.path.insert(0, %q)
from webhook_receiver import verify
def check(body, now):
    try:
        verify(%q, %q, %q, %q, body.encode(), now)
        return "ok"
    except Exception as e:
        return str(e)
print(check(%q, %s))
print(check(%q, %s + 360))
print(check(%q, %s))`,
			filepath.Join(ex.root, "examples", "python"), secret, id, stamp, sig,
			body, stamp, body, stamp, strings.Replace(body, "4}", "5}", 1), stamp)
		argv = []string{ex.python(t), "-c", src}
	}
	p := exStart(t, t.TempDir(), nil, argv...)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if len(got) != 3 || got[0] != "ok" || !strings.Contains(got[1], "off our clock") || got[2] != "no signature matches" {
		t.Errorf("verify on the known answer, six minutes late, and a changed body: %q", got)
	}
}

// producer runs the producer example and points the Go poll client at it.
func (ex *exEnv) producer(t *testing.T) {
	srv := exStart(t, t.TempDir(), []string{"ACCEPTED_LISTEN=127.0.0.1:0", "ACCEPTED_WORK_SECONDS=1.5"}, ex.command(t, "go", "producer")...)
	base := srv.await(t, `listening on (http://\S+)`)[1]

	// The status codes, by hand.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req := func(method, path, key, body string) *http.Response {
		r, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	accepted := req(http.MethodPost, "/v1/reports", "a", `{"from":"2026-01-01","to":"2026-01-03"}`)
	loc := accepted.Header.Get("Location")
	if accepted.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/v1/jobs/job_") || !regexp.MustCompile(`^[0-9]+$`).MatchString(accepted.Header.Get("Retry-After")) {
		t.Fatalf("POST: %d, Location %q, Retry-After %q", accepted.StatusCode, loc, accepted.Header.Get("Retry-After"))
	}
	if bad := req(http.MethodPost, "/v1/reports", "a", `{"from":"2026-01-03","to":"2026-01-01"}`); bad.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("POST with to before from: %d, want 422", bad.StatusCode)
	}
	if running := req(http.MethodGet, loc, "a", ""); running.StatusCode != http.StatusOK || running.Header.Get("Retry-After") == "" {
		t.Errorf("GET while running: %d, Retry-After %q", running.StatusCode, running.Header.Get("Retry-After"))
	}
	if other := req(http.MethodGet, loc, "b", ""); other.StatusCode != http.StatusNotFound {
		t.Errorf("GET with other credentials: %d, want 404", other.StatusCode)
	}

	// The Go poll client against it: 202, a 200 with Retry-After, the 303, the report.
	p := exStart(t, t.TempDir(), []string{"ACCEPTED_URL=" + base, "ACCEPTED_KEY=producer-test", "ACCEPTED_KIND=", "ACCEPTED_SIMULATE=", "ACCEPTED_TIMEOUT=20"}, ex.command(t, "go", "poll")...)
	if code := p.wait(t); code != 0 {
		t.Fatalf("poll against the producer: exit %d", code)
	}
	out := p.stdout.String()
	exMustMatch(t, "stdout", out, `(?m)^job_[a-z0-9]+: processing \d+%; next poll in 1s`)
	exMustMatch(t, "stdout", out, `(?m)^report rpt_[a-z0-9]+ "January" 2026-01-01\.\.2026-01-31: 31 days`)

	if done := req(http.MethodGet, loc, "a", ""); done.StatusCode != http.StatusSeeOther || !strings.HasPrefix(done.Header.Get("Location"), "/v1/reports/rpt_") {
		t.Errorf("GET after the work: %d, Location %q; want 303 to the report", done.StatusCode, done.Header.Get("Location"))
	}
	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("SIGINT to the producer: %v", err)
	}
	if code := srv.wait(t); code != 0 {
		t.Errorf("producer exit %d after SIGINT, want 0", code)
	}
}
