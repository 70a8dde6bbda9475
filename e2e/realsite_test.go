package e2e

import (
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// contrastJS lists the text on the page whose colour does not meet WCAG 2.2
// AA against what is behind it: 4.5:1, or 3:1 for large text (24 px, or
// 18.66 px bold). It looks at every visible element with text of its own,
// composes semi-transparent backgrounds down to an opaque one, and skips
// SVG (the diagrams' strokes take currentColor) and disabled controls,
// which WCAG exempts. Each finding is "ratio need: text (fg on bg)".
const contrastJS = `(() => {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = { r: 255, g: 255, b: 255, a: 1 }; // the canvas
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const css = (c) => "rgb(" + [c.r, c.g, c.b].map(Math.round).join(",") + ")";
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg") || el.disabled) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!own || el.getClientRects().length === 0) continue;
    const s = getComputedStyle(el);
    if (s.visibility !== "visible" || Number(s.opacity) === 0) continue;
    const bg = background(el);
    const fg = over(parse(s.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(s.fontSize);
    const need = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700) ? 3 : 4.5;
    if (ratio < need - 0.005) {
      const text = el.textContent.trim().replace(/\s+/g, " ").slice(0, 40);
      out.push(ratio.toFixed(2) + " < " + need + ": <" + el.localName + (el.className ? " class=" + el.className : "") + "> " + JSON.stringify(text) + " (" + css(fg) + " on " + css(bg) + ")");
    }
  }
  return out;
})()`

// TestRealSite loads every page of the site built from the real guides
// (content/, examples/) with Chromium: no console error or CSP violation on
// any page, every try-it panel taken over by the script, and text contrast
// at WCAG AA in the light and the dark theme. Then it runs the lifecycle
// guide's panel to its end and checks the diagram above it lights up.
func TestRealSite(t *testing.T) {
	e := mustEnv(t)
	site := filepath.Join(t.TempDir(), "site")
	cmd := exec.Command(e.siteBin, "build", "-out", site, "-content", filepath.Join("..", "content"),
		"-examples", filepath.Join("..", "examples"), "-rulesets", filepath.Join("..", "rulesets"), "-generated", e.generated)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("site build: %v\n%s", err, out)
	}
	base, err := start(e.sandbox, "serve", "-database", "memory", "-addr", "127.0.0.1:0", "-site-dir", site, "-time-scale", timeScale)
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	err = filepath.WalkDir(site, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".html") {
			rel, _ := filepath.Rel(site, path)
			pages = append(pages, "/"+strings.TrimSuffix(filepath.ToSlash(rel), "index.html"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 30 {
		t.Fatalf("only %d pages built: %v", len(pages), pages)
	}

	tb := newTab(t, e)
	// The check must see bad contrast when there is some: grey on white.
	tb.do(t, chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("body")))
	probe := `(() => { const p = document.createElement("p"); p.textContent = "contrast probe"; p.style.color = "#aaa"; p.style.background = "#fff"; document.querySelector("main").append(p); return true; })()`
	eval[bool](t, tb, probe)
	if got := strings.Join(eval[[]string](t, tb, contrastJS), "\n"); !strings.Contains(got, `"contrast probe" (rgb(170,170,170) on rgb(255,255,255))`) {
		t.Fatalf("the contrast check missed grey on white (2.32:1); it reported:\n%s", got)
	}

	panels := 0
	for _, p := range pages {
		tb.do(t, chromedp.Navigate(base+p), chromedp.WaitReady(chromedp.CSS("body")))
		if n := eval[int](t, tb, `document.querySelectorAll(".try-it").length`); n > 0 {
			panels += n
			tb.do(t, chromedp.WaitVisible(chromedp.CSS(".try-it.tryit-live")))
			if live := eval[int](t, tb, `document.querySelectorAll(".try-it.tryit-live").length`); live != n {
				t.Errorf("%s: %d of %d try-it panels came alive", p, live, n)
			}
		}
		for _, theme := range []string{"light", "dark"} {
			eval[bool](t, tb, fmt.Sprintf(`(document.documentElement.dataset.theme = %q, true)`, theme))
			for _, f := range eval[[]string](t, tb, contrastJS) {
				t.Errorf("%s, %s theme: contrast %s", p, theme, f)
			}
		}
	}
	if panels < 8 {
		t.Errorf("%d try-it panels on the real site, want one on every operation that starts a job and in the guides", panels)
	}

	// Without JavaScript every page still reads: the main text is there,
	// every code block shows (tab groups as a sequence) and every try-it
	// panel shows its request as a curl command.
	plain := newTab(t, e)
	if _, err := chromedp.Call(plain.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		plain.do(t, chromedp.Navigate(base+p), chromedp.WaitReady(chromedp.CSS("body")))
		// (Disclosures opened as a reader would: what they hide is meant to be.)
		got := eval[[]int](t, plain, `document.querySelectorAll("details").forEach((d) => { d.open = true; }), [
			(document.querySelector("main")?.innerText ?? "").length,
			[...document.querySelectorAll("main pre")].filter((e) => e.getClientRects().length === 0).length,
			// A shown <pre> with the command; innerText would miss the panels of
			// far operations, whose rendering content-visibility skips until
			// they near the viewport (checkVisibility counts them as shown).
			[...document.querySelectorAll(".try-it")].filter((e) => ![...e.querySelectorAll("pre")].some((p) => /curl /.test(p.textContent) && p.checkVisibility())).length,
			document.querySelectorAll(".tryit-live").length,
		]`)
		if got[0] < 100 || got[1] != 0 || got[2] != 0 || got[3] != 0 {
			t.Errorf("%s without JavaScript: %d characters of text, %d code blocks hidden, %d try-it panels without a curl command, %d panels made live", p, got[0], got[1], got[2], got[3])
		}
	}

	tb.open(t, base+"/guides/lifecycle/")
	setScenario := `(() => { const s = document.querySelector("#p0 select"); s.value = "default"; s.dispatchEvent(new Event("change", {bubbles: true})); return s.value; })()`
	if v := eval[string](t, tb, setScenario); v != "default" {
		t.Fatalf("scenario picker holds %q", v)
	}
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	if n := eval[int](t, tb, `document.querySelectorAll("main .lifecycle .lit[data-state=succeeded]").length`); n == 0 {
		t.Error("the lifecycle guide's diagram does not light up succeeded")
	}
	// The error catalog reproduces a deferred error in place: open the
	// entry's panel, send, and the job fails with that very code.
	tb.open(t, base+"/errors/")
	const entry = "#upstream_unavailable"
	eval[bool](t, tb, `(document.querySelector("`+entry+` details.problem-try").open = true, true)`)
	tb.do(t, click(entry+" .try-it button.tryit-primary"), visible(entry+" .tryit-result.tryit-failed"))
	contains(t, "reproduced failure", tb.text(t, entry+" .tryit-result"), "The job failed", "upstream_unavailable")
	if href := eval[string](t, tb, `document.querySelector("`+entry+` .tryit-result a[href*='#upstream_unavailable']")?.getAttribute("href") ?? ""`); href == "" {
		t.Error("the reproduced failure does not link its catalog entry")
	}
	// A job is visible to its own key only: the FAQ's second panel finds
	// the job the first started, and a new tab (a new session, so a new
	// sandbox key) gets 404 for the same id.
	tb.open(t, base+"/faq/other-key-404/")
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	job := eval[string](t, tb, `JSON.parse(document.querySelector("#p0 .tryit-response .tryit-json").textContent).id`)
	tb.do(t, click("#p1 button.tryit-primary"), visible("#p1 .tryit-response"))
	if got := tb.text(t, "#p1 .tryit-response"); !strings.Contains(got, "HTTP 200") {
		t.Errorf("the job with its own key: %s", got)
	}
	if v := eval[string](t, tb, `document.querySelector("#p1 input[name=id]").value`); v != job {
		t.Errorf("the second panel used %q, want the job just started, %s", v, job)
	}
	other := newTab(t, e)
	other.expect("status of 404 (Not Found)")
	other.open(t, base+"/faq/other-key-404/")
	eval[bool](t, other, `(() => { const i = document.querySelector("#p1 input[name=id]"); i.value = `+jsString(job)+`; i.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`)
	other.do(t, click("#p1 button.tryit-primary"), visible("#p1 .tryit-response"))
	contains(t, "the job with another key", other.text(t, "#p1 .tryit-response")+other.text(t, "#p1 .tryit-result"), "HTTP 404", "not_found")
	t.Logf("%d pages, %d try-it panels", len(pages), panels)
}
