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

// The lifecycle diagram is drawn once, in the guide that teaches it. A
// reference panel that follows a job holds a compact strip of the job's
// states instead, which tryit.js lights up (data-state), with a link to
// that guide; a guide with its own diagram gets no strip.
func TestLifecycleDiagramInReferencePanels(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	ref := string(s.Files["reference/reports/index.html"])
	if strings.Contains(ref, `<figure class="diagram lifecycle">`) {
		t.Error("the reference page repeats the full lifecycle diagram")
	}
	panel := regexp.MustCompile(`(?s)<div class="try-it" data-operation="create-report"[^>]*>(.*?)</div>`).FindStringSubmatch(ref)
	if panel == nil {
		t.Fatal("no create-report panel")
	}
	for _, want := range []string{
		`<figure class="lifecycle lifecycle-strip">`, `aria-label="Job states"`,
		`<li data-state="queued">queued</li>`, `<li data-state="processing">processing</li>`,
		`<li data-state="succeeded">succeeded</li>`, `<li data-state="failed">failed</li>`, `<li data-state="canceled">canceled</li>`,
		`<a href="/guides/poll/">The job lifecycle</a>`,
	} {
		if !strings.Contains(panel[1], want) {
			t.Errorf("the create-report panel lacks %s:\n%s", want, panel[1])
		}
	}
	// Only panels that follow a job get one: GET /v1/jobs/{id} answers 200.
	if p := regexp.MustCompile(`(?s)<div class="try-it" data-operation="get-job"[^>]*>(.*?)</div>`).FindStringSubmatch(string(s.Files["reference/jobs/index.html"])); p != nil && strings.Contains(p[1], "lifecycle-strip") {
		t.Error("the get-job panel, which starts no job, has a strip")
	}
	guide := string(s.Files["guides/poll/index.html"])
	if n := strings.Count(guide, `<figure class="diagram lifecycle">`); n != 1 {
		t.Errorf("the guide, which has its own diagram, holds %d", n)
	}
	if strings.Contains(guide, "lifecycle-strip") {
		t.Error("the guide, which has its own diagram, got a strip")
	}
}
