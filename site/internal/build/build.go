// Package build turns the site's inputs into a complete static site: Markdown
// pages from content/, the API reference and error catalog from generated/,
// code from examples/, and the Spectral ruleset from rulesets/ as downloads.
// Inputs are fs.FS values and the output is an in-memory set of files (Site),
// written to disk by Site.Write, so tests and benchmarks need no disk at all;
// or, with Config.Out, a directory each page is written into as soon as it is
// rendered, so that a large site is never held in memory whole.
//
// Every build ends with checks over its own output: each internal link and
// #anchor resolves, the HTML is well formed, and no page breaks
// Content-Security-Policy: default-src 'self'. A failed check fails the build.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/a-h/templ"

	"github.com/accepted-dev/accepted/site/internal/assets"
	"github.com/accepted-dev/accepted/site/internal/components"
	"github.com/accepted-dev/accepted/site/internal/content"
	"github.com/accepted-dev/accepted/site/internal/highlight"
	"github.com/accepted-dev/accepted/site/internal/markdown"
	"github.com/accepted-dev/accepted/site/internal/refpages"
)

// Config says where the inputs are and how the site is addressed.
type Config struct {
	Content   fs.FS // Markdown pages with front matter
	Generated fs.FS // openapi.json and errors.json
	Examples  fs.FS // files that include= may name, as "examples/<path>"
	Rulesets  fs.FS // copied verbatim under rulesets/ (the Spectral ruleset and its functions); nil means none
	Assets    fs.FS // stylesheet, scripts and icon; nil means the embedded ones

	BaseURL    string // URL path the site is served under; "" means "/"
	SiteURL    string // scheme and host for sitemap.xml, e.g. "http://localhost:8080"
	SandboxURL string // where try-it sends requests; "" means the site's own origin
	Name       string // site name; "" means "Accepted"

	// Out, if set, is the directory the site is written into, as Site.Write
	// would (refusing a non-empty directory it did not build), but page by
	// page as they render rather than after the build: memory then does not
	// grow with the pages' HTML. The site is built in a new directory
	// beside Out that replaces it once every check has passed, so a failed
	// build leaves Out as it was. The returned Site lists the pages but
	// holds no Files.
	Out string

	Logger *slog.Logger
}

// Site is a built site: file paths (slash-separated, relative to the output
// root) and their contents.
type Site struct {
	Files map[string][]byte // nil when the site was built into Config.Out
	// Pages lists the paths of the HTML pages, sorted.
	Pages []string
}

// markerFile marks a directory as one we wrote, so Write may empty it.
const markerFile = ".accepted-site"

// Write writes the site into dir. If dir already holds a site we built
// (it has our marker file), its old contents are removed first so stale
// hashed assets do not pile up; any other non-empty directory is refused.
func (s *Site) Write(dir string) error {
	if err := clearOutput(dir); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	if err := writeFiles(dir, s.Files); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	return nil
}

// clearOutput removes dir if it holds a site we built and refuses it if it
// holds anything else.
func clearOutput(dir string) error {
	full, err := checkOutput(dir)
	if err != nil || !full {
		return err
	}
	return os.RemoveAll(dir)
}

// checkOutput reports whether dir holds anything, and refuses it if that
// is not a site we built.
func checkOutput(dir string) (full bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	case len(entries) == 0:
		return false, nil
	}
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		return false, fmt.Errorf("%s is not empty and was not built by this tool; refusing to overwrite it", dir)
	}
	return true, nil
}

// writeFiles writes files, and the marker that says we built it, into dir.
func writeFiles(dir string, files map[string][]byte) error {
	if err := writeFile(dir, markerFile, []byte("built by go run ./site build; this directory is replaced on every build\n")); err != nil {
		return err
	}
	for name, data := range files {
		if err := writeFile(dir, name, data); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, name string, data []byte) error {
	full := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, data, 0o644)
}

// page is one HTML page before layout.
type page struct {
	path   string // below the base URL: "" or "guides/poll/"
	layout components.Page
	text   string   // for the search index
	heads  []string // for the search index: other names of the page (an operation's method and path)
	// sections are the page's headings with their anchors and the text
	// under them, each its own search result. Markdown pages fill them in
	// when rendered; a page without any gets them from the fragment links
	// of its table of contents or sidebar (see indexSections).
	sections []section
	// md is set for Markdown pages, rendered in parallel later.
	md *content.Page
	// current is the href of the page's own link in its sidebar, marked
	// when the page renders: until then the pages of a section share one
	// sidebar rather than each holding a copy of it (1,000 pages would
	// hold a million links).
	current string
	// lifecycle is set when the rendered page draws the job lifecycle;
	// held is the rendered page, kept back until linkLifecycle knows which
	// guide that is, when it has a try-it panel that should link there.
	lifecycle bool
	held      []byte
}

// section is a heading of a page for the search index.
type section struct {
	title, anchor, text string
	aka                 []string // other names it is searched by (an error's code)
}

type builder struct {
	cfg  Config
	log  *slog.Logger
	md   *markdown.Markdown
	hl   *highlight.Highlighter
	site *components.Site
	// files are the files that are not rendered pages, and in memory
	// (Config.Out unset) the pages too.
	files map[string][]byte
	// dir is where pages are written as they render: a new directory
	// beside Config.Out; "" keeps them in files.
	dir string
	// written has the name of every page rendered, with the offsets in it
	// of the search index's hash, filled in once the index is built.
	written map[string][]int
	check   *checker
	// filesMu guards files and written while pages render in parallel.
	filesMu sync.Mutex
	pages   []*page
	byFile  map[string]*content.Page
	tryIts  tryItOps
	// tryItScript is the href of the try-it script, added to the pages
	// that hold a try-it panel.
	tryItScript string
}

// Section labels and their URL paths, in navigation order.
var sections = []struct{ Label, Path string }{
	{"Guides", "guides/"},
	{"API reference", "reference/"},
	{"Errors", "errors/"},
	{"FAQ", "faq/"},
}

// Build builds the site. It returns an error for bad input (front matter,
// a missing include, a broken link, HTML that would break the CSP).
func Build(ctx context.Context, cfg Config) (*Site, error) {
	if cfg.Content == nil {
		return nil, errors.New("build: Config.Content is required")
	}
	if cfg.Assets == nil {
		cfg.Assets = assets.FS
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "/"
	}
	if !strings.HasPrefix(cfg.BaseURL, "/") {
		return nil, fmt.Errorf("build: base URL %q must start with /", cfg.BaseURL)
	}
	if !strings.HasSuffix(cfg.BaseURL, "/") {
		cfg.BaseURL += "/"
	}
	if cfg.SiteURL == "" {
		cfg.SiteURL = "http://localhost:8080"
	}
	cfg.SiteURL = strings.TrimSuffix(cfg.SiteURL, "/")
	if cfg.Name == "" {
		cfg.Name = "Accepted"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hl, err := highlight.New(highlight.DefaultLight, highlight.DefaultDark)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b := &builder{cfg: cfg, log: cfg.Logger, hl: hl, files: map[string][]byte{}, written: map[string][]int{}, check: newChecker(cfg.BaseURL)}
	md, err := markdown.New(markdown.Config{Highlighter: hl, Examples: cfg.Examples, ReservedIDs: components.ReservedIDs, TryIt: b.tryIts.html})
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b.md = md
	if cfg.Out != "" {
		if b.dir, err = newOutput(cfg.Out); err != nil {
			return nil, fmt.Errorf("write site: %w", err)
		}
	}
	site, err := b.build(ctx)
	if b.dir != "" {
		if err == nil {
			err = b.moveOutput()
		}
		if err != nil {
			_ = os.RemoveAll(b.dir)
		}
	}
	if err != nil {
		return nil, err
	}
	b.log.Info("site built", "pages", len(site.Pages), "files", len(b.files)+len(b.written))
	return site, nil
}

func (b *builder) build(ctx context.Context) (*Site, error) {
	if err := b.assets(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	steps := []func() error{b.contentPages, b.referencePages, b.errorsPage, b.rulesetFiles, b.downloads}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if err := b.render(ctx); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := b.linkLifecycle(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := b.extras(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	// An HTML file that is not a rendered page (one under rulesets/) is
	// checked like the pages.
	set := b.check.newSet()
	for name, data := range b.files {
		if _, ok := b.written[name]; !ok && strings.HasSuffix(name, ".html") {
			b.check.add(name, data, set)
			b.written[name] = nil
		}
	}
	site := &Site{}
	if b.dir == "" {
		site.Files = b.files
	}
	for name := range b.written {
		site.Pages = append(site.Pages, name)
	}
	sort.Strings(site.Pages)
	// The pages' view models and search texts are done with.
	b.pages, b.byFile = nil, nil
	exists := func(name string) bool {
		_, page := b.written[name]
		_, file := b.files[name]
		return page || file
	}
	read := func(name string) ([]byte, error) {
		if b.dir == "" {
			return b.files[name], nil
		}
		return os.ReadFile(filepath.Join(b.dir, filepath.FromSlash(name)))
	}
	html, csp, links := b.check.finish(exists, read)
	if err := checkError(append(append(html, csp...), links...)); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return site, nil
}

// newOutput makes the directory the site is built in, beside out, once it
// is clear that out may be replaced.
func newOutput(out string) (string, error) {
	out = filepath.Clean(out)
	if _, err := checkOutput(out); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".building-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// moveOutput writes the files that are not pages beside the pages, then
// puts the built site in Config.Out's place.
func (b *builder) moveOutput() error {
	if err := writeFiles(b.dir, b.files); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	out := filepath.Clean(b.cfg.Out)
	if err := clearOutput(out); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	if err := os.Rename(b.dir, out); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	return nil
}

func (b *builder) url(p string) string { return b.cfg.BaseURL + p }

// assets copies the stylesheet (with the code theme appended), scripts and
// icon under names that carry a hash of their content.
func (b *builder) assets() error {
	read := func(name string) ([]byte, error) {
		data, err := fs.ReadFile(b.cfg.Assets, name)
		if err != nil {
			return nil, fmt.Errorf("assets: %w", err)
		}
		return data, nil
	}
	put := b.put
	css, err := read("site.css")
	if err != nil {
		return err
	}
	code, err := b.hl.CSS()
	if err != nil {
		return err
	}
	css = append(append(css, '\n'), refpages.CSS...)
	tryCSS, err := read("tryit.css")
	if err != nil {
		return err
	}
	css = append(append(css, '\n'), tryCSS...)
	css = append(append(css, '\n'), code...)
	b.site = &components.Site{Name: b.cfg.Name, BaseURL: b.cfg.BaseURL, SandboxURL: b.cfg.SandboxURL, SearchIndex: b.url(searchIndexMarker)}
	b.site.CSS = put("site.css", css)
	for _, name := range []string{"theme.js", "site.js", "search.js", "tryit.js", "favicon.svg"} {
		data, err := read(name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, ".js") {
			if data, err = minifyJS(name, data); err != nil {
				return err
			}
		}
		href := put(name, data)
		switch name {
		case "theme.js":
			b.site.ThemeScript = href
		case "tryit.js":
			b.tryItScript = href
		case "favicon.svg":
			b.site.Favicon = href
		default:
			b.site.Scripts = append(b.site.Scripts, href)
		}
	}
	for _, s := range sections {
		b.site.Nav = append(b.site.Nav, components.Link{Label: s.Label, Href: b.url(s.Path)})
	}
	return nil
}

// put stores an asset under assets/ with a hash of its content in its name
// and returns its href.
func (b *builder) put(name string, data []byte) string {
	sum := sha256.Sum256(data)
	ext := path.Ext(name)
	hashed := "assets/" + strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:])[:10] + ext
	b.files[hashed] = data
	return b.url(hashed)
}

// render lays out every page, rendering Markdown in parallel.
func (b *builder) render(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		work = make(chan *page)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var buf bytes.Buffer
			set := b.check.newSet()
			for p := range work {
				if err := b.renderPage(ctx, p, &buf, set); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, p := range b.pages {
		work <- p
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return errors.Join(errs...)
	}
	return nil
}

// fileName is the page's file in the site.
func (p *page) fileName() string {
	if strings.HasSuffix(p.path, ".html") {
		return p.path
	}
	return p.path + "index.html"
}

func (b *builder) renderPage(ctx context.Context, p *page, buf *bytes.Buffer, set linkSet) error {
	if p.md != nil {
		res, err := b.md.Render(p.md.File, p.md.Source, markdown.Options{ResolveLink: b.linkResolver(p.md)})
		if err != nil {
			return err
		}
		p.layout.Body = templ.Raw(res.HTML)
		if res.TryIt {
			p.layout.Scripts = append(p.layout.Scripts, b.tryItScript)
		}
		p.text = res.Text
		if len(res.Sections) > 0 {
			// The headings are results of their own, found by their text;
			// the page itself is found by its title, description and intro.
			p.text = res.Intro
		}
		for _, sec := range res.Sections {
			p.sections = append(p.sections, section{title: sec.Text, anchor: sec.ID, text: sec.Body})
		}
		for _, h := range res.Headings {
			// The home page is short and centred; it has no contents list.
			if (h.Level == 2 || h.Level == 3) && !p.md.IsHome() {
				p.layout.TOC = append(p.layout.TOC, components.Link{Label: h.Text, Href: "#" + h.ID, Level: h.Level})
			}
		}
		resolve := b.linkResolver(p.md)
		for _, a := range p.md.Actions {
			href, err := resolve(a.Href)
			if err != nil {
				return fmt.Errorf("%s: front matter: action %q: %w", p.md.File, a.Label, err)
			}
			p.layout.Actions = append(p.layout.Actions, components.Link{Label: a.Label, Href: href})
		}
	}
	if p.layout.Body == nil {
		return fmt.Errorf("page /%s has no body", p.path)
	}
	layout := p.layout
	if p.current != "" {
		layout.Sidebar = slices.Clone(layout.Sidebar)
		for i := range layout.Sidebar {
			layout.Sidebar[i].Links = withCurrent(layout.Sidebar[i].Links, p.current)
		}
	}
	buf.Reset()
	if err := components.Layout(layout).Render(ctx, buf); err != nil {
		return fmt.Errorf("render /%s: %w", p.path, err)
	}
	// The page is built from here on: its body (the Markdown's HTML, a
	// reference page's view model) is garbage, not held to the end.
	p.layout.Body = nil
	data := buf.Bytes()
	figure := lifecycleFigure.Match(data)
	p.lifecycle = p.md != nil && figure
	if !figure && asyncPanel.Match(data) {
		p.held = bytes.Clone(data) // for linkLifecycle
		return nil
	}
	return b.emitPage(p.fileName(), data, set)
}

// emitPage checks a built page and writes it out (or keeps a copy of it in
// memory). It is called from several goroutines at once, each with its own
// set from b.check.newSet.
func (b *builder) emitPage(name string, data []byte, set linkSet) error {
	b.check.add(name, data, set)
	holes := indexHashHoles(data)
	if b.dir == "" {
		data = bytes.Clone(data)
	} else if err := writeFile(b.dir, name, data); err != nil {
		return fmt.Errorf("write site: %w", err)
	}
	b.filesMu.Lock()
	defer b.filesMu.Unlock()
	b.written[name] = holes
	if b.dir == "" {
		b.files[name] = data
	}
	return nil
}
