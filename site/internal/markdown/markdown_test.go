package markdown

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/accepted-dev/accepted/site/internal/highlight"
)

var examples = fstest.MapFS{
	"go/poll/main.go": {Data: []byte("package main\n\nfunc main() {\n\t// region loop\n\tfor {\n\t\tpoll()\n\t}\n\t// endregion loop\n}\n")},
	"python/poll.py":  {Data: []byte("import time\n# region loop\nwhile True:\n    poll()\n# endregion loop\n")},
}

func newMarkdown(t testing.TB) *Markdown {
	t.Helper()
	hl, err := highlight.New(highlight.DefaultLight, highlight.DefaultDark)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Highlighter: hl, Examples: examples, ReservedIDs: []string{"main"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func render(t *testing.T, src string) *Result {
	t.Helper()
	res, err := newMarkdown(t).Render("page.md", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestHeadingsAndTOC(t *testing.T) {
	res := render(t, "## Poll the job\n\ntext\n\n### Main\n\n## Poll the job\n")
	for _, want := range []string{
		`<h2 id="poll-the-job">Poll the job <a class="anchor" href="#poll-the-job">`,
		`<h3 id="main-1">`,
		`<h2 id="poll-the-job-1">`,
	} {
		if !strings.Contains(res.HTML, want) {
			t.Errorf("missing %s in\n%s", want, res.HTML)
		}
	}
	if len(res.Headings) != 3 || res.Headings[1].Level != 3 || res.Headings[1].Text != "Main" {
		t.Errorf("headings = %+v", res.Headings)
	}
}

func TestSafeMode(t *testing.T) {
	res := render(t, "<script>alert(1)</script>\n\nHi <b onclick=\"x()\">there</b> [click](javascript:alert(1)) and <javascript:alert(2)>\n\n![img](data:text/html,hi)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
	for _, bad := range []string{"<script", "onclick", `href="javascript:`, "<b>", "data:text"} {
		if strings.Contains(res.HTML, bad) {
			t.Errorf("output contains %q:\n%s", bad, res.HTML)
		}
	}
	if !strings.Contains(res.HTML, "click") || !strings.Contains(res.HTML, "<table>") {
		t.Errorf("lost link text or table:\n%s", res.HTML)
	}
}

func TestCallouts(t *testing.T) {
	res := render(t, "> [!WARNING]\n> Do not poll in a tight loop.\n\n> [!NOTE]\n>\n> Second.\n\n> plain quote\n")
	for _, want := range []string{
		`<aside class="callout callout-warning" aria-label="Warning">`,
		`<p>Do not poll in a tight loop.</p>`,
		`<aside class="callout callout-note" aria-label="Note">`,
		`<blockquote>`,
	} {
		if !strings.Contains(res.HTML, want) {
			t.Errorf("missing %s in\n%s", want, res.HTML)
		}
	}
	if strings.Contains(res.HTML, "[!") {
		t.Errorf("marker left in output:\n%s", res.HTML)
	}
}

func TestIncludeAndTabs(t *testing.T) {
	res := render(t, "Text\n\n```go include=examples/go/poll/main.go#loop tab=\"Go\"\n```\n\n```python include=examples/python/poll.py#loop tab=Python\n```\n\n```go include=examples/go/poll/main.go\n```\n")
	h := res.HTML
	if strings.Count(h, `class="tabs"`) != 1 || strings.Count(h, `class="tab-panel"`) != 2 {
		t.Fatalf("want one group of two tabs:\n%s", h)
	}
	for _, want := range []string{`data-tab="Go"`, `data-tab="Python"`, `id="tabs_1_1"`, `id="tabs_1_2"`, "examples/go/poll/main.go",
		`data-tabs="lang"`, `<div class="tab-list" role="tablist">`,
		`<button type="button" role="tab" id="tabs_1_2_tab" aria-controls="tabs_1_2" aria-selected="false" tabindex="-1" data-tab="Python">Python</button>`} {
		if !strings.Contains(h, want) {
			t.Errorf("missing %s in\n%s", want, h)
		}
	}
	if strings.Contains(h, "region") {
		t.Errorf("region markers leaked:\n%s", h)
	}
	if !strings.Contains(h, `<span class="kd">func</span>`) {
		t.Errorf("whole-file include not highlighted:\n%s", h)
	}
	if strings.Contains(h, "style=") {
		t.Errorf("inline style:\n%s", h)
	}
}

func TestIncludeErrorsNamePageAndLine(t *testing.T) {
	m := newMarkdown(t)
	for name, tc := range map[string]struct{ src, want string }{
		"missing file":   {"# T\n\n```go include=examples/go/nope.go\n```\n", "guide.md:3: include \"examples/go/nope.go\": file examples/go/nope.go does not exist"},
		"missing region": {"a\n\nb\n\n```go include=examples/go/poll/main.go#nope\n```\n", "guide.md:5: include \"examples/go/poll/main.go#nope\": region \"nope\" not found"},
		"outside":        {"```go include=../secret.go\n```\n", "guide.md:1:"},
		"bad attribute":  {"```go includ=x\n```\n", "guide.md:1: unknown fence attribute"},
		"goat no title":  {"\n```goat\n+--+\n```\n", "guide.md:2: goat diagram needs title"},
	} {
		_, err := m.Render("guide.md", []byte(tc.src), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

func TestGoatDiagram(t *testing.T) {
	res := render(t, "```goat title=\"Job lifecycle\" desc=\"pending to done\"\n+---------+     +------+\n| pending +---->| done |\n+---------+     +------+\n```\n")
	h := res.HTML
	for _, want := range []string{`role="img"`, `aria-labelledby="fig_1_title fig_1_desc"`, `<title id="fig_1_title">Job lifecycle</title>`, `<desc id="fig_1_desc">pending to done</desc>`, "<path"} {
		if !strings.Contains(h, want) {
			t.Errorf("missing %s in\n%s", want, h)
		}
	}
	if strings.Contains(h, "style=") || strings.Contains(h, "#fff") {
		t.Errorf("inline style or fixed colour in diagram:\n%s", h)
	}
}

func TestResolveLink(t *testing.T) {
	m := newMarkdown(t)
	res, err := m.Render("p.md", []byte("[a](poll.md#x) [b](https://example.com)\n"), Options{ResolveLink: func(d string) (string, error) {
		if d == "poll.md#x" {
			return "/guides/poll/#x", nil
		}
		return d, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.HTML, `href="/guides/poll/#x"`) {
		t.Errorf("link not resolved: %s", res.HTML)
	}
	if !strings.Contains(res.Text, "a b") {
		t.Errorf("text = %q", res.Text)
	}
}

func TestExtractRegion(t *testing.T) {
	src := "a\n  // region r\n  x := 1\n    y()\n  // region inner\n  z()\n  // endregion inner\n  // endregion r\n"
	got, err := extractRegion(src, "r")
	if err != nil {
		t.Fatal(err)
	}
	if got != "x := 1\n  y()\nz()\n" {
		t.Errorf("got %q", got)
	}
	if _, err := extractRegion("// region a\n", "a"); err == nil {
		t.Error("unclosed region accepted")
	}
}
