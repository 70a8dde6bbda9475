package build

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/a-h/templ"

	"github.com/accepted-dev/accepted/site/internal/apiref"
	"github.com/accepted-dev/accepted/site/internal/components"
	"github.com/accepted-dev/accepted/site/internal/markdown"
	"github.com/accepted-dev/accepted/site/internal/refpages"
)

// referencePages renders the API reference from generated/openapi.json:
// an overview at /reference/, one page per tag, then webhooks and models.
// Without the spec the overview says so and the build logs a warning.
func (b *builder) referencePages() error {
	const label = "API reference"
	data, err := readOptional(b.cfg.Generated, "openapi.json")
	if err != nil {
		return err
	}
	if data == nil {
		b.log.Warn("no openapi.json in generated/: the API reference is a placeholder")
		p := b.newPage("reference/", label, label, "Every operation, webhook and model of the API.")
		p.layout.Breadcrumbs = b.crumbs("", "")
		p.layout.Body = placeholder("The API reference has not been generated yet (generated/openapi.json is missing).")
		return nil
	}
	doc, err := apiref.Load(data)
	if err != nil {
		return fmt.Errorf("openapi.json: %w", err)
	}
	if b.cfg.SandboxURL != "" {
		doc.SetServer(b.cfg.SandboxURL)
	}
	b.tryIts.set(doc)

	// Where each anchor lives, so links between reference pages resolve.
	where := map[string]string{}
	addOp := func(op *apiref.Operation, page string) {
		where[op.Anchor] = page
		for _, r := range op.Responses {
			where[r.Anchor] = page
		}
		for _, cb := range op.Callbacks {
			for i := range cb.Operations {
				where[cb.Operations[i].Anchor] = page
				for _, r := range cb.Operations[i].Responses {
					where[r.Anchor] = page
				}
			}
		}
	}
	type refPage struct {
		path, title, desc string
		body              templ.Component
		toc               []components.Link
		text              []string
		tryIt             bool // holds a try-it panel
		wide              bool // operations in two columns: prose, then samples
	}
	r := refpages.Renderer{
		Markdown:  b.markdownComponent,
		Highlight: b.highlightComponent,
		Href: func(anchor string) string {
			if page, ok := where[anchor]; ok {
				return b.url(page) + "#" + anchor
			}
			return "#" + anchor
		},
		// The spec files and the ruleset, as the downloads step publishes
		// them (after this one, before any page is rendered).
		Downloads: func() []refpages.Download {
			var out []refpages.Download
			for _, l := range b.site.Downloads {
				out = append(out, refpages.Download{Label: l.Label, Href: l.Href, Note: l.Note})
			}
			return out
		},
	}
	pages := []refPage{{path: "reference/", title: doc.Title, desc: b.plain(doc.Description), body: r.Overview(doc)}}
	for _, s := range doc.SecuritySchemes {
		where[s.Anchor] = "reference/"
	}
	for i := range doc.Tags {
		tag := &doc.Tags[i]
		if len(tag.Operations) == 0 {
			continue
		}
		slug := tag.Slug
		if slug == "webhooks" || slug == "models" {
			// Those paths hold the webhooks and models pages; a tag of
			// that name (operations that manage webhooks, say) moves aside.
			slug += "-operations"
		}
		rp := refPage{path: "reference/" + slug + "/", title: tag.Name, desc: b.plain(tag.Description), body: r.Operations(doc, tag), wide: true}
		for _, op := range tag.Operations {
			addOp(op, rp.path)
			rp.toc = append(rp.toc, components.Link{Label: op.Title(), Href: "#" + op.Anchor, Level: 2})
			rp.text = append(rp.text, op.Method+" "+op.Path, op.Summary)
			rp.tryIt = rp.tryIt || len(op.Samples) > 0
		}
		pages = append(pages, rp)
	}
	if len(doc.Webhooks) > 0 {
		rp := refPage{path: "reference/webhooks/", title: "Webhook events", desc: "The requests the API sends to your endpoints.", body: r.Webhooks(doc), wide: true}
		for i := range doc.Webhooks {
			op := &doc.Webhooks[i].Operation
			addOp(op, rp.path)
			rp.toc = append(rp.toc, components.Link{Label: op.Title(), Href: "#" + op.Anchor, Level: 2})
			rp.text = append(rp.text, doc.Webhooks[i].Name, op.Summary)
		}
		pages = append(pages, rp)
	}
	if len(doc.Models) > 0 {
		rp := refPage{path: "reference/models/", title: "Models", desc: "The schemas of request and response bodies.", body: r.Models(doc)}
		for _, m := range doc.Models {
			where[m.Anchor] = rp.path
			rp.toc = append(rp.toc, components.Link{Label: m.Name, Href: "#" + m.Anchor, Level: 2})
			rp.text = append(rp.text, m.Name)
		}
		pages = append(pages, rp)
	}

	var sidebar []components.Link
	for _, rp := range pages {
		l := rp.title
		if rp.path == "reference/" {
			l = "Overview"
		}
		sidebar = append(sidebar, components.Link{Label: l, Href: b.url(rp.path)})
	}
	for i, rp := range pages {
		p := b.newPage(rp.path, label, rp.title, rp.desc)
		p.layout.Body = rp.body
		p.layout.OwnTitle = true // refpages bodies start with their own <h1>
		p.layout.Wide = rp.wide
		if rp.tryIt {
			p.layout.Scripts = []string{b.tryItScript}
		}
		p.heads = rp.text
		p.text = rp.desc
		// The body brings its own <h1>, so the page's contents go in the
		// sidebar, under the current page, rather than above the title.
		var links []components.Link
		for _, l := range withCurrent(sidebar, b.url(rp.path)) {
			links = append(links, l)
			if l.Current {
				for _, t := range rp.toc {
					t.Level = 3
					links = append(links, t)
				}
			}
		}
		p.layout.Sidebar = []components.Group{{Title: label, Links: links}}
		if i == 0 {
			p.layout.Breadcrumbs = b.crumbs("", "")
		} else {
			p.layout.Breadcrumbs = b.crumbs(label, "reference/")
			p.layout.Prev = &components.Link{Label: sidebar[i-1].Label, Href: sidebar[i-1].Href}
		}
		if i+1 < len(pages) {
			p.layout.Next = &components.Link{Label: sidebar[i+1].Label, Href: sidebar[i+1].Href}
		}
	}
	return nil
}

// markdownComponent renders a description from the spec with the site's
// goldmark (safe mode, same code blocks and callouts as the guides).
func (b *builder) markdownComponent(src string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		res, err := b.md.Render("openapi.json", []byte(src), markdown.Options{})
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, res.HTML)
		return err
	})
}

func (b *builder) highlightComponent(lang, code string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		return b.hl.Write(w, code, lang)
	})
}

// plain is the first sentence of a Markdown description as plain text, for
// a page's meta description.
func (b *builder) plain(src string) string {
	res, err := b.md.Render("openapi.json", []byte(src), markdown.Options{})
	if err != nil {
		return ""
	}
	t := res.Text
	if i := strings.Index(t, ". "); i > 0 {
		t = t[:i+1]
	}
	if len(t) > 200 {
		t = t[:200]
	}
	return t
}
