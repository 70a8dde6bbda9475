// Package e2e clicks through the try-it panels in real headless Chromium
// against a real sandbox: the sandbox and site binaries are built with go
// build, the sandbox runs as a subprocess serving the built site, and
// chromedp drives the browser. Nothing here imports the sandbox or the site:
// they are exercised only through their commands and over HTTP.
//
// Chromium comes from the system (Debian's chromium, installed by
// .ci/run). Without it the tests fail when CI is set and skip otherwise.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// timeScale makes a default report take a fraction of a second; Retry-After
// never drops below 1 s, so a flow still polls at least once.
const timeScale = "0.05"

// env is what every test shares: the built binaries, the emitted spec, the
// built site, one sandbox serving it, and one browser.
type env struct {
	dir       string // holds the binaries, the spec and the site
	sandbox   string // path of the sandbox binary
	siteBin   string // path of the site binary
	generated string // the spec the sandbox emits
	baseURL   string // the sandbox serving the site, e.g. http://127.0.0.1:40123
	browser   context.Context
	spec      string // openapi.json, for tests that need an operation to exist
}

var (
	shared    *env
	sharedErr error
	setupOnce sync.Once
	cleanups  []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// mustEnv sets up the shared environment once, or skips/fails the test.
func mustEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end browser tests skipped in -short mode")
	}
	chrome := chromiumPath()
	if chrome == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found: .ci/run installs Debian's chromium package")
		}
		t.Skip("chromium not found; install it (apt-get install chromium) to run the browser tests")
	}
	setupOnce.Do(func() { shared, sharedErr = setup(chrome) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func setup(chrome string) (*env, error) {
	dir, err := os.MkdirTemp("", "accepted-e2e-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, sandbox: filepath.Join(dir, "sandbox"), siteBin: filepath.Join(dir, "site"), generated: filepath.Join(dir, "generated")}
	for bin, pkg := range map[string]string{e.sandbox: "./sandbox", e.siteBin: "./site"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	// The site is built from the spec this very sandbox emits, and from the
	// fixture guides in testdata, so the tests never depend on guides being
	// written elsewhere in the tree.
	if out, err := exec.Command(e.sandbox, "openapi", "-out", e.generated).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sandbox openapi: %v\n%s", err, out)
	}
	spec, err := os.ReadFile(filepath.Join(e.generated, "openapi.json"))
	if err != nil {
		return nil, err
	}
	e.spec = string(spec)
	site := filepath.Join(dir, "site-same-origin")
	if err := e.buildSite(site, ""); err != nil {
		return nil, err
	}
	e.baseURL, err = start(e.sandbox, "serve", "-database", "memory", "-addr", "127.0.0.1:0", "-site-dir", site, "-time-scale", timeScale)
	if err != nil {
		return nil, err
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	cleanups = append(cleanups, cancelAlloc, cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		return nil, fmt.Errorf("starting chromium: %w", err)
	}
	e.browser = browser
	return e, nil
}

func (e *env) buildSite(out, sandboxURL string) error {
	args := []string{"build", "-out", out,
		"-content", filepath.Join("testdata", "content"),
		"-examples", filepath.Join("testdata", "examples"),
		"-generated", e.generated}
	if sandboxURL != "" {
		args = append(args, "-sandbox-url", sandboxURL)
	}
	if out, err := exec.Command(e.siteBin, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("site build: %v\n%s", err, out)
	}
	return nil
}

var listening = regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)`)

// start runs a server binary that logs "url=http://127.0.0.1:<port>" once
// it listens, and returns that URL. The process is stopped at the end.
func start(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return "", err
	}
	cleanups = append(cleanups, func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	found := make(chan string, 1)
	var log strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-found:
		return u, waitHealthy(u)
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("%s did not report its address:\n%s", filepath.Base(bin), log.String())
	}
}

func waitHealthy(u string) error {
	for range 100 {
		res, err := http.Get(u + "/")
		if err == nil {
			res.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("server at " + u + " never answered")
}

// freePort reserves a port on 127.0.0.1 for a server started later.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tab is one browser tab with its problems: console errors and warnings,
// uncaught exceptions, browser-log errors (a blocked request, a CSP
// report), and CSP violations, reported by a securitypolicyviolation
// listener installed before any page script runs (CDP-injected scripts are
// not subject to the page's CSP).
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	expected []string // problems a test causes on purpose, by substring
}

// expect marks console messages containing sub as caused on purpose (a
// request the test means to be refused logs an error in Chromium).
func (tb *tab) expect(sub string) {
	tb.mu.Lock()
	tb.expected = append(tb.expected, sub)
	tb.mu.Unlock()
}

func newTab(t *testing.T, e *env) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser)
	messages := chromedp.Console(ctx) // opens the tab and subscribes at once
	tb := &tab{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				tb.add(m.String())
			}
		}
	}()
	t.Cleanup(func() {
		time.Sleep(100 * time.Millisecond) // let the last messages arrive
		cancel()
		<-done
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			if !slices.ContainsFunc(tb.expected, func(sub string) bool { return strings.Contains(p, sub) }) {
				t.Errorf("browser: %s", p)
			}
		}
	})
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `document.addEventListener("securitypolicyviolation", (e) => console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI));`,
	}); err != nil {
		t.Fatal(err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelT)
	tb.ctx = tctx
	return tb
}

func (tb *tab) add(p string) {
	tb.mu.Lock()
	tb.problems = append(tb.problems, p)
	tb.mu.Unlock()
}

// fatal ends the test with err and the text of every panel on the page.
func (tb *tab) fatal(t *testing.T, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tb.ctx), 3*time.Second)
	defer cancel()
	dump, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll(".try-it")].map(p => p.id + ": " + p.innerText).join("\n-----\n")`))
	t.Fatalf("%v\npanels:\n%s", err, dump)
}

// do runs actions in the tab.
func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.fatal(t, err)
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise).
func eval[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fatal(t, err)
	}
	return v
}

// text reads an element's text content.
func (tb *tab) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		tb.fatal(t, err)
	}
	return s
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// open loads a page, waits for the try-it script to take over every panel,
// and numbers the panels #p0, #p1… in page order for the selectors below.
func (tb *tab) open(t *testing.T, url string) {
	t.Helper()
	tb.do(t, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(".try-it.tryit-live")))
	n := eval[int](t, tb, `(() => { const ps = document.querySelectorAll(".try-it"); ps.forEach((p, i) => p.id = "p" + i); return ps.length; })()`)
	if n == 0 {
		t.Fatalf("%s: no try-it panel", url)
	}
}

// click clicks the element sel selects.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// visible waits until sel is visible.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

func jsString(s string) string { return strconv.Quote(s) }

func itoa(n int) string { return strconv.Itoa(n) }
