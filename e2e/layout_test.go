package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// builtSite is the site built from the real guides (content/, examples/),
// served by the shared sandbox binary, with the path of every page.
type builtSite struct {
	base  string
	pages []string // "/", "/guides/poll/", "/404.html"…
}

var (
	realOnce sync.Once
	realSite *builtSite
	realErr  error
)

// mustRealSite builds and serves the real site once per test binary; the
// layout, search and axe tests share it.
func mustRealSite(t *testing.T, e *env) *builtSite {
	t.Helper()
	realOnce.Do(func() { realSite, realErr = buildRealSite(e) })
	if realErr != nil {
		t.Fatal(realErr)
	}
	return realSite
}

func buildRealSite(e *env) (*builtSite, error) {
	site := filepath.Join(e.dir, "site-real")
	cmd := exec.Command(e.siteBin, "build", "-out", site, "-content", filepath.Join("..", "content"),
		"-examples", filepath.Join("..", "examples"), "-rulesets", filepath.Join("..", "rulesets"), "-generated", e.generated)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("site build: %v\n%s", err, out)
	}
	base, err := start(e.sandbox, "serve", "-database", "memory", "-addr", "127.0.0.1:0", "-site-dir", site, "-time-scale", timeScale)
	if err != nil {
		return nil, err
	}
	s := &builtSite{base: base}
	err = filepath.WalkDir(site, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".html") {
			rel, _ := filepath.Rel(site, path)
			s.pages = append(s.pages, "/"+strings.TrimSuffix(filepath.ToSlash(rel), "index.html"))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(s.pages) < 30 {
		return nil, fmt.Errorf("only %d pages built: %v", len(s.pages), s.pages)
	}
	return s, nil
}

// viewport sets the tab's window: a phone (touch, overlay scroll bars, the
// meta viewport honoured) below 768 px, a desktop from there.
func viewport(w int64) chromedp.Action[chromedp.Void] {
	h := int64(900)
	if w < 768 {
		return chromedp.EmulateViewport(w, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	return chromedp.EmulateViewport(w, h)
}

// loadPage navigates and waits until the page, its fonts and its scripts
// have settled: two animation frames after the load event.
func loadPage(t *testing.T, tb *tab, url string) {
	t.Helper()
	tb.do(t, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
	eval[bool](t, tb, `new Promise((ok) => {
  const settle = () => document.fonts.ready.then(() => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => ok(true), 50))));
  if (document.readyState === "complete") settle(); else addEventListener("load", settle, { once: true });
})`)
}

// overflowJS reports whether the page scrolls sideways and, if so, the
// elements that stick out past the right edge, innermost first, each with
// its classes and right edge. Content inside a box that scrolls or clips
// on its own does not count: it scrolls there, not the page.
const overflowJS = `(() => {
  const doc = document.documentElement;
  const width = doc.clientWidth;
  if (doc.scrollWidth <= width) return [];
  const clips = (el) => { for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) { const o = getComputedStyle(e).overflowX; if (o !== "visible") return true; } return false; };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.right <= width + 0.5 || r.width === 0 || clips(el)) continue;
    if ([...el.children].some((c) => c.getBoundingClientRect().right > width + 0.5 && !clips(c))) continue;
    const name = el.localName + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
    out.push(name + " right=" + Math.round(r.right) + " " + JSON.stringify((el.textContent || "").trim().slice(0, 50)));
    if (out.length >= 8) break;
  }
  return ["scrollWidth " + doc.scrollWidth + " > " + width, ...out];
})()`

// clsJS sums the page's layout shifts that no input caused (the
// cumulative layout shift of the page so far): the buffered entries arrive
// in the observer's first callback.
const clsJS = `new Promise((ok) => {
  let cls = 0;
  const shifts = [];
  const po = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.hadRecentInput) continue;
      cls += e.value;
      for (const s of e.sources || []) { const n = s.node; if (n && n.nodeType === 1) shifts.push(n.localName + (n.id ? "#" + n.id : "") + (n.className && typeof n.className === "string" ? "." + n.className.trim().split(/\s+/).join(".") : "")); }
    }
  });
  po.observe({ type: "layout-shift", buffered: true });
  setTimeout(() => { po.disconnect(); ok({ cls, shifts: shifts.slice(0, 8) }); }, 150);
})`

type clsResult struct {
	CLS    float64  `json:"cls"`
	Shifts []string `json:"shifts"`
}

// screenshotDir is where the layout test keeps a PNG of every page at a
// phone's and a desktop's width: $E2E_SCREENSHOTS, else
// generated/screenshots/ at the root of the repository.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "generated", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shotName turns a page path into a file name: "/guides/poll/" at 390 px is
// "guides-poll-390.png", the home page "home-390.png".
func shotName(page string, w int64, theme string) string {
	n := strings.Trim(strings.TrimSuffix(page, ".html"), "/")
	if n == "" {
		n = "home"
	}
	n = strings.ReplaceAll(n, "/", "-")
	if theme != "" {
		n += "-" + theme
	}
	return fmt.Sprintf("%s-%d.png", n, w)
}

// maxShotHeight caps a full-page screenshot (CSS px): the long reference
// pages would make images tens of MB; their top shows the layout.
const maxShotHeight = 12000

func screenshot(t *testing.T, tb *tab, file string) {
	t.Helper()
	h := eval[float64](t, tb, `document.documentElement.scrollHeight`)
	var png []byte
	var err error
	if h <= maxShotHeight {
		png, err = chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", file, err)
		return
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Error(err)
	}
}

// TestLayout loads every page of the real site at 320, 390, 768 and 1280 px:
// no page scrolls sideways (wide tables, code and diagrams scroll in their
// own boxes), and at 390 and 1280 px no page shifts as it loads (CLS at most
// 0.01: the controls the scripts bring are in the HTML with their room
// kept). At those two widths it keeps a screenshot of every page, in the
// light theme and, at 1280 px, the dark.
func TestLayout(t *testing.T) {
	e := mustEnv(t)
	s := mustRealSite(t, e)
	dir := screenshotDir(t)
	tb := newTab(t, e)
	allow(t, tb, 10*time.Minute) // every page at four widths, on a small machine
	for _, w := range []int64{320, 390, 768, 1280} {
		tb.do(t, viewport(w))
		for _, p := range s.pages {
			loadPage(t, tb, s.base+p)
			if got := eval[[]string](t, tb, overflowJS); len(got) > 0 {
				t.Errorf("%s at %d px scrolls sideways:\n  %s", p, w, strings.Join(got, "\n  "))
			}
			if w != 390 && w != 1280 {
				continue
			}
			if got := eval[clsResult](t, tb, clsJS); got.CLS > 0.01 {
				t.Errorf("%s at %d px: cumulative layout shift %.3f > 0.01; shifted: %v", p, w, got.CLS, got.Shifts)
			}
			screenshot(t, tb, filepath.Join(dir, shotName(p, w, "")))
		}
	}
	// The dark theme, as a reader whose system prefers it sees it.
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int64{390, 1280} {
		tb.do(t, viewport(w))
		for _, p := range s.pages {
			loadPage(t, tb, s.base+p)
			screenshot(t, tb, filepath.Join(dir, shotName(p, w, "dark")))
		}
	}
	t.Logf("%d pages; screenshots in %s", len(s.pages), dir)
}

// TestLayoutNavigation checks the frame follows the reader: on a desktop the
// header and the sidebar stay in view as the page scrolls, the sidebar marks
// the current page and the "On this page" column the heading being read; on
// a phone the menu button opens the section menu at the top of the screen.
func TestLayoutNavigation(t *testing.T) {
	e := mustEnv(t)
	s := mustRealSite(t, e)
	tb := newTab(t, e)
	const guide = "/guides/webhooks/"
	tb.do(t, viewport(1280))
	loadPage(t, tb, s.base+guide)
	if got := eval[string](t, tb, `document.querySelector("#site-menu [aria-current=page]")?.getAttribute("href") ?? ""`); !strings.HasSuffix(got, guide) {
		t.Errorf("the sidebar marks %q as the current page, want %s", got, guide)
	}
	// Scroll a heading of the contents to the top, one followed by room
	// enough that it is the one being read: it becomes current.
	target := eval[string](t, tb, `(() => {
  const links = [...document.querySelectorAll("[data-toc] .toc-list a")];
  const top = (a) => document.getElementById(decodeURIComponent(a.hash.slice(1))).getBoundingClientRect().top + scrollY;
  const i = links.findIndex((a, i) => i >= 2 && i + 1 < links.length && top(links[i + 1]) - top(a) > innerHeight);
  scrollTo(0, top(links[i]) - 80);
  return links[i].hash;
})()`)
	if !pollEval(t, tb, `document.querySelector("[data-toc] a[aria-current]")?.hash === `+jsString(target)) {
		t.Errorf("scrolled to %s, the contents mark %s", target, eval[string](t, tb, `(document.querySelector("[data-toc] a[aria-current]")?.hash ?? "nothing") + " (scrollY " + scrollY + ", heading at " + document.querySelector(`+jsString(target)+`).getBoundingClientRect().top + ")"`))
	}
	got := eval[[]float64](t, tb, `[document.querySelector(".site-header").getBoundingClientRect().top, document.querySelector("#site-menu").getBoundingClientRect().top, document.querySelector("[data-toc]").getBoundingClientRect().top, scrollY]`)
	if got[3] < 500 {
		t.Fatalf("the page did not scroll (scrollY %v)", got[3])
	}
	if got[0] != 0 || got[1] < 0 || got[1] > 100 || got[2] < 0 || got[2] > 120 {
		t.Errorf("scrolled %v px down: header at %v, sidebar at %v, contents at %v; want all in view at the top", got[3], got[0], got[1], got[2])
	}

	tb.do(t, viewport(390))
	loadPage(t, tb, s.base+guide)
	if v := eval[bool](t, tb, `(() => { const r = document.querySelector("#site-menu").getBoundingClientRect(); return r.height > 0 && r.top < innerHeight && getComputedStyle(document.querySelector("#site-menu")).visibility !== "hidden"; })()`); v {
		t.Error("on a phone the section menu shows before the menu button opens it")
	}
	tb.do(t, click("#menu-button"))
	waitEval(t, tb, `(() => { const m = document.querySelector("#site-menu"); const r = m.getBoundingClientRect(); return r.height > 100 && r.top >= 0 && r.top < 120 && getComputedStyle(m).visibility === "visible"; })()`, "the menu to open at the top of the screen")
	if v := eval[string](t, tb, `document.querySelector("#menu-button").getAttribute("aria-expanded")`); v != "true" {
		t.Errorf("the open menu's button says aria-expanded=%q", v)
	}
	if v := eval[bool](t, tb, `document.activeElement?.getAttribute("aria-current") === "page"`); !v {
		t.Error("opening the menu does not move focus to the current page's entry")
	}
}

// TestSearch checks the ranking on the real site (a heading or a page about
// a word before a page that mentions it), that a result opens its heading,
// and that "/" and Ctrl-K reach the box.
func TestSearch(t *testing.T) {
	e := mustEnv(t)
	s := mustRealSite(t, e)
	tb := newTab(t, e)
	tb.do(t, viewport(1280))
	loadPage(t, tb, s.base+"/guides/standards/")
	rank := func(q string) []string {
		t.Helper()
		return eval[[]string](t, tb, `window.acceptedSearchRank(`+jsString(q)+`)`)
	}
	got := rank("retry-after")
	if len(got) == 0 {
		t.Fatal(`"retry-after" finds nothing`)
	}
	if got[0] == "/" {
		t.Errorf(`"retry-after" ranks the home page first: %v`, got[:min(5, len(got))])
	}
	// No heading is named after the header: the pages about polling, which
	// say what to do with it in their descriptions, come first.
	if !strings.Contains(got[0], "poll") {
		t.Errorf(`"retry-after": first result %q is not about polling (top: %v)`, got[0], got[:min(5, len(got))])
	}
	if got := rank("job_stalled"); !slices.Contains(got[:min(2, len(got))], "/errors/#job_stalled") {
		t.Errorf(`"job_stalled": want the catalog entry in the first two, got %v`, got[:min(5, len(got))])
	}
	if got := rank("webhooks"); len(got) == 0 || got[0] != "/guides/webhooks/" {
		t.Errorf(`"webhooks": want the guide first, got %v`, got[:min(5, len(got))])
	}
	if got := rank("POST /v1/reports"); len(got) == 0 || !strings.HasPrefix(got[0], "/reference/reports/") {
		t.Errorf(`"POST /v1/reports": want the operation first, got %v`, got[:min(5, len(got))])
	}

	// "/" focuses the box; Ctrl-K too.
	eval[bool](t, tb, `(document.activeElement.blur(), true)`)
	tb.do(t, chromedp.KeyEvent("/"))
	if !eval[bool](t, tb, `document.activeElement?.id === "site-search"`) {
		t.Error(`"/" does not focus the search box`)
	}
	eval[bool](t, tb, `(document.activeElement.blur(), true)`)
	tb.do(t, chromedp.KeyEvent("k", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	if !eval[bool](t, tb, `document.activeElement?.id === "site-search"`) {
		t.Error("Ctrl-K does not focus the search box")
	}
	// Typing lists results; Enter opens the first at its heading.
	tb.do(t, chromedp.SendKeys(chromedp.CSS("#site-search"), "job_stalled"))
	waitEval(t, tb, `document.querySelectorAll("#search-results [role=option]").length > 0`, "search results")
	first := eval[string](t, tb, `document.querySelector("#search-results [role=option] a").href`)
	if !strings.Contains(first, "#") {
		t.Errorf("the first result %s does not open a heading", first)
	}
	tb.do(t, chromedp.KeyEvent(kb.Enter))
	waitEval(t, tb, `location.href === `+jsString(first), "Enter to open "+first)
	waitEval(t, tb, `(() => { const e = document.getElementById(decodeURIComponent(location.hash.slice(1))); if (!e) return false; const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight / 2; })()`, first+" to show its heading at the top")
}

// TestCopyButton copies a code block with the keyboard and hears "Copied".
func TestCopyButton(t *testing.T) {
	e := mustEnv(t)
	s := mustRealSite(t, e)
	tb := newTab(t, e)
	tb.do(t, viewport(1280))
	loadPage(t, tb, s.base+"/guides/webhooks/")
	// (A try-it panel's code is its own: it has "Copy as".)
	n := eval[[]int](t, tb, `(() => { const pres = [...document.querySelectorAll("main pre")].filter((p) => !p.closest(".try-it")); return [pres.length, pres.filter((p) => !p.closest(".code, [data-copy-scope]")?.querySelector("button[data-copy]")).length]; })()`)
	if n[0] == 0 || n[1] != 0 {
		t.Errorf("%d code blocks, %d of them without a copy button", n[0], n[1])
	}
	eval[bool](t, tb, `(document.querySelector("main button[data-copy]").focus(), true)`)
	tb.do(t, chromedp.KeyEvent(kb.Enter))
	waitEval(t, tb, `/Copied|clipboard/.test(document.getElementById("live").textContent)`, "the live region to announce the copy")
}

// allow gives a tab that visits every page more time than newTab's minute.
func allow(t *testing.T, tb *tab, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(tb.ctx), d)
	t.Cleanup(cancel)
	tb.ctx = ctx
}

// waitEval polls a JavaScript condition for up to five seconds.
func waitEval(t *testing.T, tb *tab, cond, what string) {
	t.Helper()
	if !pollEval(t, tb, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// pollEval polls a JavaScript condition for up to five seconds and reports
// whether it came true.
func pollEval(t *testing.T, tb *tab, cond string) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !eval[bool](t, tb, cond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestTabs checks the code tabs: the tab lists are in the page from the
// start with one panel shown per group; choosing a language shows it in
// every group, and a reader who comes back sees it from the first paint
// (theme.js), so the page does not shift as site.js takes over.
func TestTabs(t *testing.T) {
	e := mustEnv(t)
	s := mustRealSite(t, e)
	tb := newTab(t, e)
	tb.do(t, viewport(1280))
	page := s.base + "/guides/polling/"
	loadPage(t, tb, page)
	eval[bool](t, tb, `(localStorage.removeItem("accepted.lang"), true)`)
	loadPage(t, tb, page)
	// shown lists, for each group of language tabs, the labels of the panels
	// that show.
	const shown = `[...document.querySelectorAll("[data-tabs=lang]")].map((g) => [...g.querySelectorAll(":scope > .tab-panel")].filter((p) => p.offsetHeight > 0).map((p) => p.dataset.tab).join(","))`
	groups := eval[[]string](t, tb, shown)
	if len(groups) < 2 {
		t.Fatalf("%d groups of language tabs on the polling guide, want several", len(groups))
	}
	for i, g := range groups {
		if strings.Contains(g, ",") || g == "" {
			t.Errorf("group %d shows panels %q, want exactly one", i, g)
		}
	}
	tb.do(t, click(`[data-tabs=lang] [role=tab][data-tab="Python"]`))
	for i, g := range eval[[]string](t, tb, shown) {
		if g != "Python" {
			t.Errorf("after choosing Python, group %d shows %q", i, g)
		}
	}
	loadPage(t, tb, page)
	if got := eval[clsResult](t, tb, clsJS); got.CLS > 0.01 {
		t.Errorf("with Python saved, cumulative layout shift %.3f > 0.01; shifted: %v", got.CLS, got.Shifts)
	}
	for i, g := range eval[[]string](t, tb, shown) {
		if g != "Python" {
			t.Errorf("with Python saved, group %d shows %q", i, g)
		}
	}
	if n := eval[int](t, tb, `document.adoptedStyleSheets.length`); n != 1 {
		t.Errorf("theme.js adopted %d style sheets for the saved language, want 1 (blocked by the Content-Security-Policy?)", n)
	}
	if got := eval[string](t, tb, `document.querySelector("[data-tabs=lang] [aria-selected=true]").dataset.tab`); got != "Python" {
		t.Errorf("the selected tab is %q, want Python", got)
	}
	eval[bool](t, tb, `(localStorage.removeItem("accepted.lang"), true)`)
}
