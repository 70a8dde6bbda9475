package build

import (
	"bytes"
	"compress/gzip"
	"regexp"
	"strings"
	"testing"

	"github.com/accepted-dev/accepted/site/internal/assets"
)

// tryItBudget is what everything the try-it panels need may weigh, gzipped:
// the minified script plus its share of the stylesheet. The renderers in
// ../shared/PEERS.md load 250-1,250 KB; this is a regression guard.
const tryItBudget = 15_000

func gzipLen(t testing.TB, data []byte) int {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

func TestTryItWeight(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	var js []byte
	for name, data := range s.Files {
		if regexp.MustCompile(`^assets/tryit\.[0-9a-f]{10}\.js$`).MatchString(name) {
			js = data
		}
	}
	if js == nil {
		t.Fatal("no assets/tryit.<hash>.js")
	}
	css, err := assets.FS.ReadFile("tryit.css")
	if err != nil {
		t.Fatal(err)
	}
	src, err := assets.FS.ReadFile("tryit.js")
	if err != nil {
		t.Fatal(err)
	}
	gjs, gcss := gzipLen(t, js), gzipLen(t, css)
	t.Logf("try-it: script %d bytes minified (%d source), %d gzipped; styles %d gzipped; total %d of %d",
		len(js), len(src), gjs, gcss, gjs+gcss, tryItBudget)
	if gjs+gcss > tryItBudget {
		t.Errorf("try-it weighs %d bytes gzipped, over the %d budget", gjs+gcss, tryItBudget)
	}
	if len(js) >= len(src) {
		t.Errorf("tryit.js was not minified: %d bytes from %d", len(js), len(src))
	}
}

// The script goes only to pages that hold a panel: reference pages with
// operations, and guides with a ```tryit block. A guide's panel is the
// operation's, with the guide's body in the curl command shown without
// JavaScript.
func TestTryItScriptOnlyWherePanelsAre(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	has := func(page string) bool {
		return regexp.MustCompile(`<script src="/assets/tryit\.[0-9a-f]{10}\.js" defer>`).Match(s.Files[page])
	}
	for page, want := range map[string]bool{
		"guides/poll/index.html":       true,
		"reference/reports/index.html": true,
		"index.html":                   false,
		"errors/index.html":            false,
		"reference/models/index.html":  false,
	} {
		if has(page) != want {
			t.Errorf("%s: try-it script %v, want %v", page, has(page), want)
		}
	}
	guide := string(s.Files["guides/poll/index.html"])
	for _, want := range []string{
		`<div class="try-it" data-operation="create-report" data-method="POST" data-path="/v1/reports"`,
		`data-body="{&#34;kind&#34;: &#34;sales&#34;`,
		`2025-02-28`, // the guide's body, in the curl command
	} {
		if !strings.Contains(guide, want) {
			t.Errorf("guide lacks %s", want)
		}
	}
	if strings.Contains(guide, `<pre class="ref-try-it-curl" hidden`) {
		t.Error("the curl command is hidden without JavaScript")
	}
}

// A reference page has no diagram of its own: each panel that follows a job
// gets a copy of the guides' lifecycle diagram, with its own ids, to light up.
func TestLifecycleDiagramInReferencePanels(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	ref := string(s.Files["reference/reports/index.html"])
	for _, want := range []string{
		`<figure class="diagram lifecycle">`, `aria-labelledby="lifecycle_1_title lifecycle_1_desc"`,
		`<title id="lifecycle_1_title">Job lifecycle</title>`, `data-state='processing'`,
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference page lacks %s", want)
		}
	}
	i, j := strings.Index(ref, `<div class="try-it" data-operation="create-report"`), strings.Index(ref, `<figure class="diagram lifecycle">`)
	if i < 0 || j < i {
		t.Error("the diagram is not inside the create-report panel")
	}
	if n := strings.Count(string(s.Files["guides/poll/index.html"]), `<figure class="diagram lifecycle">`); n != 1 {
		t.Errorf("the guide, which has its own diagram, holds %d", n)
	}
}
