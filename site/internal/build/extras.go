package build

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	"github.com/accepted-dev/accepted/site/internal/components"
)

// maxIndexText caps the text per page in the search index: enough to find a
// page by the words in its opening sections, small enough to keep the index
// a few KB per page.
const maxIndexText = 1500

const searchIndexPlaceholder = "/__search-index-href__"

type indexEntry struct {
	Title string   `json:"t"`
	URL   string   `json:"u"`
	Desc  string   `json:"d,omitempty"`
	Heads []string `json:"h"`
	Text  string   `json:"x"`
}

// extras writes what is not a page: 404.html, the search index, sitemap.xml
// and robots.txt.
func (b *builder) extras() error {
	sort.Slice(b.pages, func(i, j int) bool { return b.pages[i].path < b.pages[j].path })
	var idx []indexEntry
	var urls []string
	for _, p := range b.pages {
		text := p.text
		if len(text) > maxIndexText {
			cut := strings.LastIndexByte(text[:maxIndexText], ' ')
			if cut < 0 {
				cut = maxIndexText
			}
			text = text[:cut]
		}
		heads := p.heads
		if heads == nil {
			heads = []string{}
		}
		idx = append(idx, indexEntry{Title: p.layout.Title, URL: b.url(p.path), Desc: p.layout.Description, Heads: heads, Text: text})
		urls = append(urls, b.cfg.SiteURL+b.url(p.path))
	}
	data, err := json.Marshal(idx)
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
	b.files["404.html"] = buf.Bytes()

	// The index is hashed like every asset, but its hash is known only now,
	// after the pages that point at it were rendered with a placeholder.
	for name, data := range b.files {
		if strings.HasSuffix(name, ".html") {
			b.files[name] = bytes.ReplaceAll(data, []byte(searchIndexPlaceholder), []byte(indexHref))
		}
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
