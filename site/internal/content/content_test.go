package content

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"index.md":         {Data: []byte("---\ntitle: Home\n---\n# Hi\n")},
		"guides/b.md":      {Data: []byte("---\ntitle: B\norder: 2\n---\nb\n")},
		"guides/a.md":      {Data: []byte("---\ntitle: A\norder: 1\nslug: first\ndescription: d\n---\na\n")},
		"faq/index.md":     {Data: []byte("---\ntitle: FAQ\n---\n")},
		"guides/notes.txt": {Data: []byte("ignored")},
	}
	pages, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pages {
		got = append(got, p.File+"=/"+p.Path)
	}
	want := "index.md=/ faq/index.md=/faq/ guides/a.md=/guides/first/ guides/b.md=/guides/b/"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v\nwant %v", got, want)
	}
	secs := Sections(pages)
	if len(secs) != 2 || secs[1].Name != "guides" || len(secs[1].Pages) != 2 {
		t.Errorf("sections = %+v", secs)
	}
}

func TestFrontMatterKeepsLineNumbers(t *testing.T) {
	p, err := Parse("x.md", []byte("---\ntitle: X\nsection: guides\n---\nline 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(p.Source, []byte("\n"))
	if string(lines[4]) != "line 5" {
		t.Errorf("line 5 is %q in %q", lines[4], p.Source)
	}
	if p.Section != "guides" || p.Path != "guides/x/" {
		t.Errorf("got %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"no title":        "---\ndescription: x\n---\n",
		"unknown key":     "---\ntitle: x\ntitel: y\n---\n",
		"unclosed":        "---\ntitle: x\n",
		"bad slug":        "---\ntitle: x\nslug: Not OK\n---\n",
		"no front matter": "# just text\n",
	} {
		if _, err := Parse("p.md", []byte(src)); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "p.md") {
			t.Errorf("%s: error %v does not name the file", name, err)
		}
	}
	if _, err := Load(fstest.MapFS{
		"a/x.md": {Data: []byte("---\ntitle: 1\nsection: s\n---\n")},
		"s/x.md": {Data: []byte("---\ntitle: 2\n---\n")},
	}); err == nil {
		t.Error("duplicate URL accepted")
	}
}
