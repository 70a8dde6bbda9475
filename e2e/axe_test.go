package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeScript is axe-core, installed from npm by tools/axe (it is never
// shipped with the site). The test injects it through the DevTools
// protocol, so the pages' Content-Security-Policy is not involved.
var axeScript = filepath.Join("..", "tools", "axe", "node_modules", "axe-core", "axe.min.js")

// axeRunJS runs axe on the whole document for WCAG 2.0 and 2.1 A and AA
// and axe's best practices, and returns one line per failing node.
const axeRunJS = `axe.run(document, {
  runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
  resultTypes: ["violations"],
}).then((r) => r.violations.flatMap((v) => v.nodes.map((n) =>
  v.id + " (" + v.impact + "): " + n.target.join(" ") + ": " + (n.failureSummary || v.help).replace(/\s+/g, " ").slice(0, 300))))`

// mustAxe reads axe-core, or fails saying how to install it.
func mustAxe(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(axeScript)
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run `npm ci --prefix tools/axe`", err)
	}
	return string(src)
}

// runAxe injects axe into the loaded page (once per document) and returns
// its violations.
func runAxe(t *testing.T, tb *tab, src string) []string {
	t.Helper()
	if !eval[bool](t, tb, `typeof window.axe === "object"`) {
		if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[json.RawMessage](src+"\n;true")); err != nil {
			t.Fatalf("injecting axe-core: %v", err)
		}
	}
	// Long reference pages skip rendering far operations (content-visibility:
	// auto) until they near the viewport. axe scrolls to each element it
	// checks, and the page's height then changes under it, so its colour
	// checks may sample whatever lands there (the sticky header). Rendered
	// in full, the page's colours are what a reader sees once scrolled.
	eval[bool](t, tb, `(() => { const s = new CSSStyleSheet(); s.replaceSync("* { content-visibility: visible !important; }"); document.adoptedStyleSheets = [...document.adoptedStyleSheets, s]; return true; })()`)
	return eval[[]string](t, tb, axeRunJS)
}

// TestAxe runs axe-core on every page of the real site, before any try-it
// run, in the light and the dark theme at a desktop's width and in the light
// theme at a phone's: no violation.
func TestAxe(t *testing.T) {
	src := mustAxe(t)
	e := mustEnv(t)
	s := mustRealSite(t, e)
	tb := newTab(t, e)
	allow(t, tb, 10*time.Minute)
	type pass struct {
		theme string
		width int64
	}
	for _, ps := range []pass{{"light", 1280}, {"dark", 1280}, {"light", 390}} {
		// The theme as a reader whose system prefers it, and no motion, so
		// that colour transitions cannot be caught half-way.
		if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: ps.theme}, {Name: "prefers-reduced-motion", Value: "reduce"}},
		}); err != nil {
			t.Fatal(err)
		}
		tb.do(t, viewport(ps.width))
		for _, p := range s.pages {
			loadPage(t, tb, s.base+p)
			if v := runAxe(t, tb, src); len(v) > 0 {
				t.Errorf("%s, %s theme, %d px: %d axe violations:\n  %s", p, ps.theme, ps.width, len(v), strings.Join(v, "\n  "))
			}
		}
	}
	t.Logf("axe-core on %d pages, light and dark", len(s.pages))
}
