package markdown

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/accepted-dev/accepted/site/internal/highlight"
)

// FuzzRender feeds guide pages, with the include syntax in fenced code
// blocks (include=examples/…#region), to the renderer. Whatever a guide
// says, rendering does not panic, errors name the page, and no raw <script>
// from the Markdown reaches the HTML.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"# Title\n\nText with `code`.\n",
		"```go include=examples/go/poll/main.go#loop tab=\"Go\"\n```\n",
		"```go include=examples/go/poll/main.go\n```\n",
		"```go include=examples/go/poll/main.go#nope\n```\n",
		"```go include=../secret.go\n```\n",
		"```go include=examples/../../etc/passwd\n```\n",
		"```python include=examples/python/poll.py#loop tab=Python\n```\n",
		"```go include=\"examples/go/poll/main.go#loop\" tab=\n```\n",
		"<script>alert(1)</script>\n\n[x](javascript:alert(1))\n",
		"```tryit op=getJob\n```\n",
		"## A\n## A\n### main\n",
	} {
		f.Add(s)
	}
	hl, err := highlight.New(highlight.DefaultLight, highlight.DefaultDark)
	if err != nil {
		f.Fatal(err)
	}
	m, err := New(Config{Highlighter: hl, Examples: fuzzExamples, ReservedIDs: []string{"main"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		res, err := m.Render("guide.md", []byte(src), Options{})
		if err != nil {
			if !strings.Contains(err.Error(), "guide.md") && !strings.Contains(err.Error(), "include") {
				t.Fatalf("error does not name the page: %v", err)
			}
			return
		}
		if strings.Contains(strings.ToLower(res.HTML), "<script") {
			t.Fatalf("raw <script> reached the HTML:\n%s", res.HTML)
		}
	})
}

// FuzzExtractRegion feeds example files and region names to the include
// syntax's region reader: no panic, and an extracted region holds no
// marker lines.
func FuzzExtractRegion(f *testing.F) {
	f.Add("a\n// region loop\n\tfor {}\n// endregion loop\nb\n", "loop")
	f.Add("# region x\n  y\n# endregion x\n", "x")
	f.Add("<!-- region x -->\n<p>\n<!-- endregion x -->\n", "x")
	f.Add("// region a\n// region b\nx\n// endregion b\n// endregion a\n", "a")
	f.Add("// region a\nno end\n", "a")
	f.Add("\r\n// endregion a\r\n// region a\r\n", "a")
	f.Fuzz(func(t *testing.T, src, name string) {
		out, err := extractRegion(src, name)
		if err != nil || name == "" {
			return
		}
		for _, l := range strings.Split(out, "\n") {
			if markerRE.MatchString(l) {
				t.Fatalf("region %q kept a marker line %q:\n%s", name, l, out)
			}
		}
	})
}

var fuzzExamples = fstest.MapFS{
	"go/poll/main.go": {Data: []byte("package main\n\nfunc main() {\n\t// region loop\n\tfor {\n\t\tpoll()\n\t}\n\t// endregion loop\n}\n")},
	"python/poll.py":  {Data: []byte("# region loop\nwhile True:\n    poll()\n# endregion loop\n")},
}
