package content

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds guide files (YAML front matter, then Markdown) to Parse:
// no panic; a page parsed has a title and a path made of its section and
// slug; and CRLF line ends parse exactly as LF ones.
func FuzzParse(f *testing.F) {
	for _, s := range [][2]string{
		{"guides/polling.md", "---\ntitle: Polling\norder: 2\n---\n\n# Polling\n"},
		{"index.md", "---\ntitle: Home\n---\nText\n"},
		{"guides/x.md", "---\ntitle: X\nunknown: 1\n---\n"},
		{"guides/x.md", "---\ntitle: [unclosed\n---\n"},
		{"guides/x.md", "no front matter\n"},
		{"guides/x.md", "---\ntitle: X\n"},
		{"guides/X Y.md", "---\ntitle: Bad slug\n---\n"},
		{"guides/x.md", "---\r\ntitle: CRLF\r\n---\r\nbody\r\n"},
		{"guides/x.md", "---\ntitle: &a [*a, *a]\n---\n"},
		{"a/b/c.md", "---\ntitle: ' '\n---\n"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		p, err := Parse(name, data)
		if err != nil {
			return
		}
		if strings.TrimSpace(p.Title) == "" {
			t.Fatalf("page without a title: %+v", p.Meta)
		}
		if p.Path != "" && !strings.HasSuffix(p.Path, "/") {
			t.Fatalf("path %q does not end in /", p.Path)
		}
		if bytes.Contains(data, []byte("\r")) {
			return
		}
		crlf, err := Parse(name, bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")))
		if err != nil {
			t.Fatalf("CRLF version refused: %v", err)
		}
		if !reflect.DeepEqual(crlf, p) {
			t.Fatalf("CRLF version parsed differently:\n%+v\n%+v", crlf, p)
		}
	})
}
