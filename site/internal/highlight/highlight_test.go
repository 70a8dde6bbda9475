package highlight

import (
	"strings"
	"testing"
)

func TestWriteUsesClassesOnly(t *testing.T) {
	h, err := New(DefaultLight, DefaultDark)
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"go", "python", "js", "bash", "json", "", "no-such-lang"} {
		out, err := h.HTML("package main\n\nfunc main() { println(\"<hi>\") }\n", lang)
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if strings.Contains(out, "style=") {
			t.Errorf("%s: inline style in %s", lang, out)
		}
		if strings.Contains(out, "<hi>") {
			t.Errorf("%s: unescaped code in %s", lang, out)
		}
		if !strings.HasPrefix(out, `<pre class="chroma`) {
			t.Errorf("%s: unexpected wrapper %s", lang, out)
		}
	}
}

func TestCSSHasBothThemes(t *testing.T) {
	h, err := New(DefaultLight, DefaultDark)
	if err != nil {
		t.Fatal(err)
	}
	css, err := h.CSS()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".chroma .k ", "[data-theme=dark] .chroma .k ", "@media (prefers-color-scheme: dark)", ":root:not([data-theme=light]) .chroma"} {
		if !strings.Contains(css, want) {
			t.Errorf("css lacks %q", want)
		}
	}
	if _, err := New("nope", DefaultDark); err == nil {
		t.Error("unknown style accepted")
	}
}
