// Package refpages renders the API reference (package apiref's view models)
// as templ components: page bodies only, no <html> and no layout, in
// semantic HTML that reads without JavaScript and obeys a strict CSP (no
// inline style or script, no on* attributes; CSS classes prefixed ref-).
//
// Markdown and code highlighting are the generator's: pass them in a
// Renderer, either by calling its methods or by putting it in the context
// with WithRenderer before rendering the package-level components.
package refpages

import (
	"context"
	_ "embed"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"github.com/accepted-dev/accepted/site/internal/apiref"
	"github.com/accepted-dev/accepted/site/internal/codesamples"
	"github.com/accepted-dev/accepted/site/internal/components"
)

// CSS styles the classes this package emits; the generator appends it to
// its stylesheet. It uses only currentColor mixes and the site's custom
// properties with fallbacks, so it follows light and dark themes.
//
//go:embed ref.css
var CSS string

// Renderer holds the hooks the generator supplies. The zero value works:
// descriptions become escaped paragraphs, code plain <pre><code>, links
// same-page fragments.
type Renderer struct {
	// Markdown renders a CommonMark description (the generator passes its
	// goldmark in safe mode).
	Markdown func(markdown string) templ.Component
	// Highlight renders a code block; lang is a chroma lexer name (bash,
	// javascript, python, go, json, text).
	Highlight func(lang, code string) templ.Component
	// Href turns an anchor made by apiref (an operation, response, model or
	// security scheme) into a link, for anchors that live on another page:
	// "/reference/jobs/#get-job". Default: "#" + anchor.
	Href func(anchor string) string
	// Downloads lists the files the "Download spec" menu of every page
	// offers (the OpenAPI documents, a ruleset). It is called while
	// rendering, so a generator may fill the list after building the
	// components. Nil or empty: no menu.
	Downloads func() []Download
}

// Download is a file to fetch: its name, URL and what it is ("OpenAPI
// 3.1, JSON").
type Download struct{ Label, Href, Note string }

func downloadsOf(ctx context.Context) []Download {
	if d := from(ctx).Downloads; d != nil {
		return d()
	}
	return nil
}

type ctxKey struct{}

// WithRenderer returns a context whose package-level components use r.
func WithRenderer(ctx context.Context, r Renderer) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

func from(ctx context.Context) Renderer {
	r, _ := ctx.Value(ctxKey{}).(Renderer)
	return r
}

func (r Renderer) bind(c templ.Component) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		return c.Render(WithRenderer(ctx, r), w)
	})
}

// Overview renders the API's front page with r's hooks.
func (r Renderer) Overview(doc *apiref.Doc) templ.Component { return r.bind(Overview(doc)) }

// Operations renders the operations of one tag (all tags when tag is nil) with r's hooks.
func (r Renderer) Operations(doc *apiref.Doc, tag *apiref.Tag) templ.Component {
	return r.bind(Operations(doc, tag))
}

// Operation renders one operation with r's hooks.
func (r Renderer) Operation(op *apiref.Operation) templ.Component { return r.bind(Operation(op)) }

// Webhooks renders the webhooks page with r's hooks.
func (r Renderer) Webhooks(doc *apiref.Doc) templ.Component { return r.bind(Webhooks(doc)) }

// Models renders the models page with r's hooks.
func (r Renderer) Models(doc *apiref.Doc) templ.Component { return r.bind(Models(doc)) }

// markdown renders a description through the Renderer in ctx.
func markdown(s string) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		if md := from(ctx).Markdown; md != nil {
			return md(s).Render(ctx, w)
		}
		return plainParagraphs(s, w)
	})
}

// plainParagraphs is the default Markdown: escaped text, one <p> per
// blank-line-separated paragraph.
func plainParagraphs(s string, w io.Writer) error {
	for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := fmt.Fprintf(w, "<p>%s</p>\n", html.EscapeString(p)); err != nil {
			return err
		}
	}
	return nil
}

// code renders a code block through the Renderer in ctx.
func code(lang, src string) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		if hl := from(ctx).Highlight; hl != nil {
			return hl(lang, src).Render(ctx, w)
		}
		_, err := fmt.Fprintf(w, "<pre class=\"ref-code\"><code class=\"language-%s\">%s</code></pre>",
			html.EscapeString(lang), html.EscapeString(src))
		return err
	})
}

func href(ctx context.Context, anchor string) templ.SafeURL {
	if h := from(ctx).Href; h != nil {
		return templ.SafeURL(h(anchor))
	}
	return templ.SafeURL("#" + anchor)
}

// heading writes <hN> with the children, N clamped to 2…6, so one
// component serves operations on a tag page (h2) and nested in callbacks.
func heading(level int, id, class string) templ.Component {
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		level = min(max(level, 2), 6)
		open := fmt.Sprintf("<h%d", level)
		if id != "" {
			open += fmt.Sprintf(" id=\"%s\"", html.EscapeString(id))
		}
		if class != "" {
			open += fmt.Sprintf(" class=\"%s\"", html.EscapeString(class))
		}
		if _, err := io.WriteString(w, open+">"); err != nil {
			return err
		}
		if err := templ.GetChildren(ctx).Render(ctx, w); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "</h%d>", level)
		return err
	})
}

// statusLine is "202 Accepted", "4XX Client error" or "default".
func statusLine(status string) string {
	if len(status) == 3 && strings.HasSuffix(status, "XX") {
		return status + " " + map[byte]string{'1': "Informational", '2': "Success", '3': "Redirection", '4': "Client error", '5': "Server error"}[status[0]]
	}
	var n int
	if _, err := fmt.Sscanf(status, "%d", &n); err == nil {
		if t := http.StatusText(n); t != "" {
			return status + " " + t
		}
		return status
	}
	if strings.EqualFold(status, "default") {
		return "Any other status"
	}
	return status
}

func methodClass(m string) string { return "ref-method ref-method-" + strings.ToLower(m) }

func statusClass(r apiref.Response) string { return "ref-response ref-status-" + r.StatusClass() }

// exampleLang is the lexer for an example of a media type.
func exampleLang(mediaType string) string {
	mt, _, _ := strings.Cut(mediaType, ";")
	if strings.HasSuffix(mt, "json") || mt == "*/*" {
		return "json"
	}
	if strings.HasSuffix(mt, "xml") {
		return "xml"
	}
	return "text"
}

func exampleCaption(e apiref.Example) string {
	s := "Example"
	if e.Name != "" {
		s += " " + e.Name
	}
	if e.Summary != "" {
		s += ": " + e.Summary
	}
	if e.Generated {
		s += " (generated from the schema)"
	}
	return s
}

func curlOf(op *apiref.Operation) string {
	for _, s := range op.Samples {
		if s.Lang == "curl" {
			return s.Code
		}
	}
	return ""
}

func tryItID(op *apiref.Operation) string {
	if op.ID != "" {
		return op.ID
	}
	return op.Anchor
}

func title(op *apiref.Operation) string { return op.Title() }

// modelOf is the model a node links to: itself, or its items'.
func modelOf(s *apiref.Schema) (name, anchor string) {
	switch {
	case s == nil:
	case s.Ref != "" && s.RefAnchor != "":
		return s.Ref, s.RefAnchor
	case s.Items != nil && s.Items.Ref != "" && s.Items.RefAnchor != "":
		return s.Items.Ref, s.Items.RefAnchor
	}
	return "", ""
}

func opsOf(tag *apiref.Tag, doc *apiref.Doc) []*apiref.Tag {
	if tag != nil {
		return []*apiref.Tag{tag}
	}
	out := make([]*apiref.Tag, len(doc.Tags))
	for i := range doc.Tags {
		out[i] = &doc.Tags[i]
	}
	return out
}

// maxOpenProps is how many properties a schema shows at once; a longer
// list folds behind a summary, so one 202 does not unroll a whole screen.
const maxOpenProps = 8

func itoa(n int) string { return strconv.Itoa(n) }

// hasAside reports whether an operation has a second column: samples,
// examples or a try-it panel.
func hasAside(op *apiref.Operation) bool {
	return len(op.Samples) > 0 || len(op.Follow) > 0 || len(examplesOf(op)) > 0
}

// asideExample is an example of a request or response body, for the
// second column: Tab is its short label ("202", "Body"), Caption says all.
type asideExample struct {
	Tab, Caption, MediaType string
	Example                 apiref.Example
}

// examplesOf lists the body's examples, then each response's, in order.
func examplesOf(op *apiref.Operation) []asideExample {
	var out []asideExample
	if op.Body != nil {
		n := 0
		for _, mt := range op.Body.Content {
			n += len(mt.Examples)
		}
		for _, mt := range op.Body.Content {
			for _, e := range mt.Examples {
				tab := "Body"
				if n > 1 && e.Name != "" {
					tab += ": " + e.Name
				}
				out = append(out, asideExample{Tab: tab, Caption: "Request body · " + exampleCaption(e), MediaType: mt.Type, Example: e})
			}
		}
	}
	for _, r := range op.Responses {
		n := 0
		for _, mt := range r.Content {
			n += len(mt.Examples)
		}
		for _, mt := range r.Content {
			for _, e := range mt.Examples {
				tab := r.Status
				if n > 1 && e.Name != "" {
					tab += ": " + e.Name
				}
				out = append(out, asideExample{Tab: tab, Caption: statusLine(r.Status) + " · " + exampleCaption(e), MediaType: mt.Type, Example: e})
			}
		}
	}
	return out
}

// sampleTabList is the tab list of sampleTabs: one tab a language.
func sampleTabList(prefix string, samples []codesamples.Sample) []components.Tab {
	out := make([]components.Tab, len(samples))
	for i, s := range samples {
		out[i] = components.Tab{Panel: prefix + "-" + s.Lang, Label: s.Label}
	}
	return out
}

// exampleTabs is the tab list of an operation's examples.
func exampleTabs(anchor string, ex []asideExample) []components.Tab {
	out := make([]components.Tab, len(ex))
	for i, e := range ex {
		out[i] = components.Tab{Panel: anchor + "-example-" + itoa(i), Label: e.Tab}
	}
	return out
}
