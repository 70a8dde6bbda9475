package build

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/a-h/templ"

	"github.com/accepted-dev/accepted/site/internal/components"
	"github.com/accepted-dev/accepted/site/internal/content"
	"github.com/accepted-dev/accepted/site/internal/errorspage"
)

func sectionLabel(name string) string {
	for _, s := range sections {
		if s.Path == name+"/" {
			return s.Label
		}
	}
	if name == "" {
		return ""
	}
	return strings.ToUpper(name[:1]) + strings.ReplaceAll(name[1:], "-", " ")
}

func (b *builder) newPage(path, section, title, description string) *page {
	p := &page{path: path, layout: components.Page{
		Site: b.site, Title: title, Description: description, Section: section,
	}}
	b.pages = append(b.pages, p)
	return p
}

func (b *builder) crumbs(section, sectionPath string) []components.Link {
	out := []components.Link{{Label: "Home", Href: b.url("")}}
	if section != "" {
		out = append(out, components.Link{Label: section, Href: b.url(sectionPath)})
	}
	return out
}

// contentPages adds every Markdown page, plus an index page for each
// section (Guides, FAQ, …) that has none of its own.
func (b *builder) contentPages() error {
	pages, err := content.Load(b.cfg.Content)
	if err != nil {
		return err
	}
	b.byFile = map[string]*content.Page{}
	hasPath := map[string]bool{}
	for _, cp := range pages {
		b.byFile[cp.File] = cp
		hasPath[cp.Path] = true
	}
	if !hasPath[""] {
		return errors.New("content: no index.md (the home page)")
	}
	bySection := map[string][]*content.Page{}
	for _, s := range content.Sections(pages) {
		bySection[s.Name] = s.Pages
	}
	// Guides and FAQ always exist in the navigation, so they always get an index.
	for _, name := range []string{"guides", "faq"} {
		if _, ok := bySection[name]; !ok {
			bySection[name] = nil
		}
	}
	for name, list := range bySection {
		label := sectionLabel(name)
		var links []components.Link
		var sidebar []components.Link
		for _, cp := range list {
			if cp.Path == name+"/" {
				continue
			}
			links = append(links, components.Link{Label: cp.Title, Href: b.url(cp.Path), Note: cp.Description})
			sidebar = append(sidebar, components.Link{Label: cp.Title, Href: b.url(cp.Path)})
		}
		if !hasPath[name+"/"] {
			p := b.newPage(name+"/", label, label, sectionIntro(name))
			p.layout.Breadcrumbs = b.crumbs("", "")
			p.layout.Body = components.List(links, "Nothing here yet.")
			p.text = sectionIntro(name)
		}
		for i, cp := range list {
			p := b.newPage(cp.Path, label, cp.Title, cp.Description)
			p.md = cp
			if cp.Path == name+"/" {
				p.layout.Breadcrumbs = b.crumbs("", "")
				continue
			}
			p.layout.Breadcrumbs = b.crumbs(label, name+"/")
			// The section's pages share one sidebar; renderPage marks this
			// page's link in a copy made only while the page renders.
			p.layout.Sidebar = []components.Group{{Title: label, Links: sidebar}}
			p.current = b.url(cp.Path)
			if i > 0 && list[i-1].Path != name+"/" {
				p.layout.Prev = &components.Link{Label: list[i-1].Title, Href: b.url(list[i-1].Path)}
			}
			if i+1 < len(list) {
				p.layout.Next = &components.Link{Label: list[i+1].Title, Href: b.url(list[i+1].Path)}
			}
		}
	}
	for _, cp := range pages {
		if cp.Section == "" {
			p := b.newPage(cp.Path, "", cp.Title, cp.Description)
			p.md = cp
			if !cp.IsHome() {
				p.layout.Breadcrumbs = b.crumbs("", "")
			}
		}
	}
	return nil
}

func sectionIntro(name string) string {
	switch name {
	case "guides":
		return "Step-by-step guides to asynchronous requests: accept with 202, poll, follow the result, handle failure."
	case "faq":
		return "Short answers to the questions people ask about 202 Accepted and long-running jobs."
	}
	return ""
}

func withCurrent(links []components.Link, href string) []components.Link {
	out := make([]components.Link, len(links))
	copy(out, links)
	for i := range out {
		out[i].Current = out[i].Href == href
	}
	return out
}

// linkResolver maps link destinations in a Markdown page: "poll.md#x" (a
// path to another page's source, relative to this one) becomes that page's
// URL; "/errors/" gets the base URL in front; anything else stays.
func (b *builder) linkResolver(cp *content.Page) func(string) (string, error) {
	return func(dest string) (string, error) {
		u, err := url.Parse(dest)
		if err != nil {
			return "", err
		}
		if u.Scheme != "" || u.Host != "" || dest == "" || strings.HasPrefix(dest, "#") {
			return dest, nil
		}
		frag := ""
		if u.Fragment != "" {
			frag = "#" + u.EscapedFragment()
		}
		if strings.HasSuffix(u.Path, ".md") {
			target := u.Path
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(cp.File), target)
			}
			target = strings.TrimPrefix(path.Clean(target), "/")
			tp, ok := b.byFile[target]
			if !ok {
				return "", fmt.Errorf("no page %s in content", target)
			}
			return b.url(tp.Path) + frag, nil
		}
		if strings.HasPrefix(dest, "/") {
			return b.url(strings.TrimPrefix(dest, "/")), nil
		}
		return dest, nil
	}
}

// errorsPage renders /errors/ from generated/errors.json. Without the file
// the page says so, and the build logs a warning.
func (b *builder) errorsPage() error {
	const title = "Error catalog"
	desc := "Every problem the API can return, what it means, and what a client should do."
	p := b.newPage("errors/", "Errors", title, desc)
	p.layout.Breadcrumbs = b.crumbs("", "")
	data, err := readOptional(b.cfg.Generated, "errors.json")
	if err != nil {
		return err
	}
	if data == nil {
		b.log.Warn("no errors.json in generated/: the error page is a placeholder")
		p.layout.Body = placeholder("The error catalog has not been generated yet (generated/errors.json is missing).")
		return nil
	}
	cat, err := errorspage.Load(data, b.hl, b.md.Fragment)
	if err != nil {
		return err
	}
	for i := range cat.Problems {
		pr := &cat.Problems[i]
		if pr.ReproduceHTML, err = b.tryIts.reproduce(pr.Code); err != nil {
			return fmt.Errorf("errors page: %s: %w", pr.Code, err)
		}
		if pr.ReproduceHTML != "" && !slices.Contains(p.layout.Scripts, b.tryItScript) {
			p.layout.Scripts = append(p.layout.Scripts, b.tryItScript)
		}
	}
	p.text = "Every error the sandbox returns is an RFC 9457 problem (application/problem+json). Problems returned in the response, and problems reported later in the job's status."
	p.layout.Body = errorspage.Page(cat)
	var imm, def []components.Link
	for _, pr := range cat.Problems {
		p.sections = append(p.sections, section{title: pr.Title, anchor: pr.Code, aka: []string{pr.Code}, text: pr.Description + " " + pr.Action})
		l := components.Link{Label: pr.Title, Href: "#" + pr.Code}
		if pr.When == "deferred" {
			def = append(def, l)
		} else {
			imm = append(imm, l)
		}
	}
	if len(imm) > 0 {
		p.layout.Sidebar = append(p.layout.Sidebar, components.Group{Title: "In the response", Links: imm})
	}
	if len(def) > 0 {
		p.layout.Sidebar = append(p.layout.Sidebar, components.Group{Title: "In the job's status", Links: def})
	}
	return nil
}

func readOptional(fsys fs.FS, name string) ([]byte, error) {
	if fsys == nil {
		return nil, nil
	}
	data, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

func placeholder(msg string) templ.Component {
	return components.List(nil, msg)
}

// specFiles are the OpenAPI documents in generated/ the site publishes for
// download, in the order the footer lists them. A running sandbox serves the
// same names at its root (/openapi.json, …); the site's copies make the links
// work where the site is served alone.
var specFiles = []struct{ name, note string }{
	{"openapi.json", "OpenAPI 3.1, JSON"},
	{"openapi.yaml", "OpenAPI 3.1, YAML"},
	{"openapi-3.0.json", "OpenAPI 3.0, JSON"},
}

// downloads publishes the spec files and lists them, with the Spectral
// ruleset, in the footer of every page.
func (b *builder) downloads() error {
	for _, f := range specFiles {
		data, err := readOptional(b.cfg.Generated, f.name)
		if err != nil {
			return err
		}
		if data == nil {
			continue
		}
		if _, ok := b.files[f.name]; !ok {
			b.files[f.name] = data
		}
		b.site.Downloads = append(b.site.Downloads, components.Link{Label: f.name, Href: b.url(f.name), Note: f.note})
	}
	if _, ok := b.files[rulesetFile]; ok {
		b.site.Downloads = append(b.site.Downloads, components.Link{Label: path.Base(rulesetFile), Href: b.url(rulesetFile), Note: "Spectral ruleset"})
	}
	return nil
}

// rulesetFile is the Spectral ruleset that rulesetFiles publishes.
const rulesetFile = "rulesets/async-api.yaml"

// lifecycleStates are the states the try-it panels' strip shows, in order.
var lifecycleStates = []string{"queued", "processing", "succeeded", "failed", "canceled"}

// linkLifecycle gives every try-it panel that follows a job, on a page
// without the lifecycle diagram, a strip of the job's states (which
// tryit.js lights up as the job moves) and a link to the guide that draws
// the whole diagram. The diagram itself is drawn once, where it teaches.
func (b *builder) linkLifecycle() error {
	guide := ""
	for _, p := range b.pages {
		if p.lifecycle {
			guide = b.url(p.path)
			break
		}
	}
	var strip strings.Builder
	strip.WriteString("<figure class=\"lifecycle lifecycle-strip\">\n<ol aria-label=\"Job states\">")
	for _, st := range lifecycleStates {
		fmt.Fprintf(&strip, "<li data-state=\"%s\">%s</li>", st, st)
	}
	fmt.Fprintf(&strip, "</ol>\n<figcaption>The job's state lights up as it moves. <a href=\"%s\">The job lifecycle</a> draws every way between them.</figcaption>\n</figure>", guide)
	fig := []byte(strip.String())
	// renderPage held back the pages with a panel and without the diagram.
	set := b.check.newSet()
	for _, p := range b.pages {
		page := p.held
		if page == nil {
			continue
		}
		p.held = nil
		if guide != "" {
			page = asyncPanel.ReplaceAllFunc(page, func(open []byte) []byte {
				return append(append(append([]byte{}, open...), '\n'), fig...)
			})
		}
		if err := b.emitPage(p.fileName(), page, set); err != nil {
			return err
		}
	}
	return nil
}

var (
	lifecycleFigure = regexp.MustCompile(`<figure class="diagram lifecycle">`)
	asyncPanel      = regexp.MustCompile(`<div class="try-it"[^>]* data-async[^>]*>`)
)
