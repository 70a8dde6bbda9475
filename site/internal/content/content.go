// Package content loads the Markdown pages of the site from an fs.FS: it
// splits off and checks the YAML front matter, works out each page's section
// and slug, and orders pages within their section. It does not render
// Markdown; that is package markdown's job.
package content

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Meta is the front matter a page may carry.
type Meta struct {
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	Section     string `yaml:"section"`
	Order       int    `yaml:"order"`
	Slug        string `yaml:"slug"`
	// Actions are call-to-action buttons under the page's lead, the first
	// one the primary: the home page's "Start here".
	Actions []Action `yaml:"actions"`
}

// Action is a call-to-action link. Href is written like a link in the
// page's Markdown: another page's source ("guides/start-here.md"), a site
// path ("/reference/reports/#create-report") or a URL.
type Action struct {
	Label string `yaml:"label"`
	Href  string `yaml:"href"`
}

// Page is one Markdown file.
type Page struct {
	Meta
	// File is the path of the source inside the content FS, e.g. "guides/poll.md".
	File string
	// Source is the Markdown with the front matter blanked out line for
	// line, so a line number in Source is the line number in File.
	Source []byte
	// Path is the page's URL path below the site root, without the base URL:
	// "" for the home page, "guides/poll/" for a guide.
	Path string
}

// IsHome reports whether p is the site's home page (index.md at the root).
func (p *Page) IsHome() bool { return p.Path == "" }

// Load reads every *.md file in fsys. A page's section is its front matter
// "section" or else its top directory; its slug is "slug" or else the file
// name without ".md". index.md at the root is the home page. Pages come back
// sorted by section, then order, then title.
func Load(fsys fs.FS) ([]*Page, error) {
	var pages []*Page
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(name) != ".md" {
			return nil
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		p, err := Parse(name, data)
		if err != nil {
			return err
		}
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load content: %w", err)
	}
	seen := map[string]string{}
	for _, p := range pages {
		if other, ok := seen[p.Path]; ok {
			return nil, fmt.Errorf("load content: %s and %s both want the URL /%s", other, p.File, p.Path)
		}
		seen[p.Path] = p.File
	}
	slices.SortFunc(pages, func(a, b *Page) int {
		return cmp.Or(
			cmp.Compare(a.Section, b.Section),
			cmp.Compare(a.Order, b.Order),
			cmp.Compare(a.Title, b.Title),
			cmp.Compare(a.File, b.File),
		)
	})
	return pages, nil
}

// Parse reads one page. name is its path inside the content FS.
func Parse(name string, data []byte) (*Page, error) {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	meta, src, err := splitFrontMatter(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var m Meta
	if len(meta) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(meta))
		dec.KnownFields(true) // a misspelt key is a mistake, not an extension
		if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: front matter: %w", name, err)
		}
	}
	if strings.TrimSpace(m.Title) == "" {
		return nil, fmt.Errorf("%s: front matter: title is required", name)
	}
	for i, a := range m.Actions {
		if strings.TrimSpace(a.Label) == "" || strings.TrimSpace(a.Href) == "" {
			return nil, fmt.Errorf("%s: front matter: actions[%d] needs a label and an href", name, i)
		}
	}
	p := &Page{Meta: m, File: name, Source: src}
	dir, file := path.Split(name)
	dir = strings.Trim(dir, "/")
	if p.Section == "" && dir != "" {
		p.Section = strings.SplitN(dir, "/", 2)[0]
	}
	if p.Slug == "" {
		p.Slug = strings.TrimSuffix(file, ".md")
	}
	if !validSegment(p.Section) || p.Slug != "index" && !validSegment(p.Slug) {
		return nil, fmt.Errorf("%s: section %q or slug %q is not a lowercase URL segment", name, p.Section, p.Slug)
	}
	switch {
	case p.Section == "" && p.Slug == "index":
		p.Path = ""
	case p.Section == "":
		p.Path = p.Slug + "/"
	case p.Slug == "index":
		p.Path = p.Section + "/"
	default:
		p.Path = p.Section + "/" + p.Slug + "/"
	}
	return p, nil
}

// splitFrontMatter returns the YAML between the leading "---" lines and the
// rest of the document with the front matter replaced by empty lines.
func splitFrontMatter(data []byte) (meta, body []byte, err error) {
	if !bytes.HasPrefix(data, []byte("---\n")) {
		return nil, data, nil
	}
	rest := data[4:]
	end := bytes.Index(rest, []byte("\n---\n"))
	trail := 5
	if end < 0 {
		if bytes.HasSuffix(rest, []byte("\n---")) {
			end, trail = len(rest)-4, 4
		} else {
			return nil, nil, errors.New("front matter: no closing ---")
		}
	}
	meta = rest[:end+1]
	n := bytes.Count(data[:4+end+trail], []byte("\n"))
	body = append(bytes.Repeat([]byte("\n"), n), rest[end+trail:]...)
	return meta, body, nil
}

func validSegment(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Section groups the pages of one section, in order.
type Section struct {
	Name  string
	Pages []*Page
}

// Sections groups pages (as sorted by Load) by section, skipping the pages
// that have no section (the home page and other top-level pages).
func Sections(pages []*Page) []Section {
	var out []Section
	for _, p := range pages {
		if p.Section == "" {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Name != p.Section {
			out = append(out, Section{Name: p.Section})
		}
		out[len(out)-1].Pages = append(out[len(out)-1].Pages, p)
	}
	return out
}
