package build

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/accepted-dev/accepted/site/internal/components"
)

// maxIndexText caps the text of a page in the search index, and
// maxSectionText that of a heading: enough to find an entry by the words of
// its opening paragraphs, small enough to keep the index a few KB per page.
const (
	maxIndexText   = 1500
	maxSectionText = 500
)

// The pages link to the search index, whose name holds a hash of its
// content, before it is built: they are rendered with searchIndexHole in
// place of the hash, which fillIndexHash then overwrites, in memory or in
// the files already written.
const (
	searchIndexHole   = "__________" // as long as put's hash
	searchIndexMarker = "assets/search-index." + searchIndexHole + ".json"
)

// indexHashHoles returns the offsets of searchIndexHole in a page.
func indexHashHoles(page []byte) []int {
	var out []int
	for off := 0; ; {
		i := bytes.Index(page[off:], []byte(searchIndexMarker))
		if i < 0 {
			return out
		}
		hole := off + i + len("assets/search-index.")
		out = append(out, hole)
		off = hole + len(searchIndexHole)
	}
}

// fillIndexHash writes the search index's hash, from its href, into every
// page built.
func (b *builder) fillIndexHash(href string) error {
	hash := []byte(strings.TrimSuffix(href, ".json"))
	hash = hash[len(hash)-len(searchIndexHole):]
	for name, holes := range b.written {
		if len(holes) == 0 {
			continue
		}
		if b.dir == "" {
			for _, off := range holes {
				copy(b.files[name][off:], hash)
			}
			continue
		}
		if err := fillFile(filepath.Join(b.dir, filepath.FromSlash(name)), holes, hash); err != nil {
			return fmt.Errorf("write site: %w", err)
		}
	}
	b.check.rename(b.site.SearchIndex, href)
	return nil
}

func fillFile(name string, holes []int, hash []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	for _, off := range holes {
		if _, err := f.WriteAt(hash, int64(off)); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// indexEntry is one search result: a page, or a heading of a page (its URL
// then ends with the heading's #anchor and Page names the page). search.js
// ranks them; the field names are short because the index is downloaded.
type indexEntry struct {
	Title   string   `json:"t"`
	URL     string   `json:"u"`
	Page    string   `json:"p,omitempty"` // for a heading: the title of its page
	Section string   `json:"s,omitempty"` // the site section: "Guides", "FAQ"…
	Desc    string   `json:"d,omitempty"`
	Heads   []string `json:"h,omitempty"` // other names: an operation's method and path, an error's code
	Text    string   `json:"x"`
}

// searchIndex lists every page and, after each, its headings.
func (b *builder) searchIndex() []indexEntry {
	var idx []indexEntry
	for _, p := range b.pages {
		u := b.url(p.path)
		idx = append(idx, indexEntry{Title: p.layout.Title, URL: u, Section: p.layout.Section, Desc: p.layout.Description, Heads: p.heads, Text: clip(p.text, maxIndexText)})
		secs := p.sections
		if secs == nil {
			secs = tocSections(p.layout)
		}
		for _, s := range secs {
			idx = append(idx, indexEntry{Title: s.title, URL: u + "#" + s.anchor, Page: p.layout.Title, Section: p.layout.Section, Heads: s.aka, Text: clip(s.text, maxSectionText)})
		}
	}
	return idx
}

// tocSections are the headings of a page that did not list its own: the
// fragment links of its table of contents, or else of the current page's
// entries in its sidebar (the API reference lists its operations there).
func tocSections(l components.Page) []section {
	var out []section
	add := func(links []components.Link) {
		for _, t := range links {
			if a, ok := strings.CutPrefix(t.Href, "#"); ok && a != "" {
				out = append(out, section{title: t.Label, anchor: a})
			}
		}
	}
	add(l.TOC)
	if len(out) == 0 {
		for _, g := range l.Sidebar {
			add(g.Links)
		}
	}
	return out
}

// clip cuts text to at most n bytes, at a space.
func clip(text string, n int) string {
	if len(text) <= n {
		return text
	}
	cut := strings.LastIndexByte(text[:n], ' ')
	if cut < 0 {
		cut = n
	}
	return text[:cut]
}

// extras writes what is not a page: 404.html, the search index, sitemap.xml
// and robots.txt.
func (b *builder) extras() error {
	sort.Slice(b.pages, func(i, j int) bool { return b.pages[i].path < b.pages[j].path })
	var urls []string
	for _, p := range b.pages {
		urls = append(urls, b.cfg.SiteURL+b.url(p.path))
	}
	data, err := json.Marshal(b.searchIndex())
	if err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	indexHref := b.put("search-index.json", data)

	nf := components.Page{
		Site: b.site, Title: "Page not found",
		Description: "There is no page at this address.",
		Body:        components.NotFound(b.url(""), b.site.Nav),
	}
	var buf bytes.Buffer
	if err := components.Layout(nf).Render(context.Background(), &buf); err != nil {
		return fmt.Errorf("404 page: %w", err)
	}
	if err := b.emitPage("404.html", buf.Bytes(), b.check.newSet()); err != nil {
		return err
	}
	if err := b.fillIndexHash(indexHref); err != nil {
		return err
	}

	var sm bytes.Buffer
	sm.WriteString(xml.Header)
	sm.WriteString(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` + "\n")
	for _, u := range urls {
		sm.WriteString("<url><loc>")
		if err := xml.EscapeText(&sm, []byte(u)); err != nil {
			return err
		}
		sm.WriteString("</loc></url>\n")
	}
	sm.WriteString("</urlset>\n")
	b.files["sitemap.xml"] = sm.Bytes()
	b.files["robots.txt"] = []byte("User-agent: *\nAllow: /\nSitemap: " + b.cfg.SiteURL + b.url("sitemap.xml") + "\n")
	return nil
}
