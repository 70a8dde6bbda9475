// Package build turns the site's inputs into a complete static site: Markdown
// pages from content/, the API reference and error catalog from generated/,
// code from examples/, and the Spectral ruleset from rulesets/ as downloads.
// Inputs are fs.FS values and the output is an in-memory set of files (Site),
// written to disk by Site.Write, so tests and benchmarks need no disk at all.
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

	Logger *slog.Logger
}

// Site is a built site: file paths (slash-separated, relative to the output
// root) and their contents.
type Site struct {
	Files map[string][]byte
	// Pages lists the paths of the HTML pages, sorted.
	Pages []string
}

// markerFile marks a directory as one we wrote, so Write may empty it.
const markerFile = ".accepted-site"

// Write writes the site into dir. If dir already holds a site we built
// (it has our marker file), its old contents are removed first so stale
// hashed assets do not pile up; any other non-empty directory is refused.
func (s *Site) Write(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("write site: %w", err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("write site: %s is not empty and was not built by this tool; refusing to overwrite it", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("write site: %w", err)
		}
	}
	files := map[string][]byte{markerFile: []byte("built by go run ./site build; this directory is replaced on every build\n")}
	for name, data := range s.Files {
		files[name] = data
	}
	for name, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("write site: %w", err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return fmt.Errorf("write site: %w", err)
		}
	}
	return nil
}

// page is one HTML page before layout.
type page struct {
	path   string // below the base URL: "" or "guides/poll/"
	layout components.Page
	text   string   // for the search index
	heads  []string // for the search index
	// md is set for Markdown pages, rendered in parallel later.
	md *content.Page
}

type builder struct {
	cfg   Config
	log   *slog.Logger
	md    *markdown.Markdown
	hl    *highlight.Highlighter
	site  *components.Site
	files map[string][]byte
	// filesMu guards files while pages render in parallel.
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
	b := &builder{cfg: cfg, log: cfg.Logger, hl: hl, files: map[string][]byte{}}
	md, err := markdown.New(markdown.Config{Highlighter: hl, Examples: cfg.Examples, ReservedIDs: components.ReservedIDs, TryIt: b.tryIts.html})
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b.md = md
	if err := b.assets(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	steps := []func() error{b.contentPages, b.referencePages, b.errorsPage, b.rulesetFiles}
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
	b.embedLifecycle()
	if err := b.extras(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	site := &Site{Files: b.files}
	for name := range b.files {
		if strings.HasSuffix(name, ".html") {
			site.Pages = append(site.Pages, name)
		}
	}
	sort.Strings(site.Pages)
	if err := Check(site, cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b.log.Info("site built", "pages", len(site.Pages), "files", len(site.Files))
	return site, nil
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
	b.site = &components.Site{Name: b.cfg.Name, BaseURL: b.cfg.BaseURL, SandboxURL: b.cfg.SandboxURL, SearchIndex: searchIndexPlaceholder}
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
			for p := range work {
				if err := b.renderPage(ctx, p, &buf); err != nil {
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
	for _, p := range b.pages {
		if p.layout.Body == nil {
			return fmt.Errorf("page /%s has no body", p.path)
		}
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

func (b *builder) renderPage(ctx context.Context, p *page, buf *bytes.Buffer) error {
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
		for _, h := range res.Headings {
			p.heads = append(p.heads, h.Text)
			if h.Level == 2 || h.Level == 3 {
				p.layout.TOC = append(p.layout.TOC, components.Link{Label: h.Text, Href: "#" + h.ID, Level: h.Level})
			}
		}
	}
	buf.Reset()
	if err := components.Layout(p.layout).Render(ctx, buf); err != nil {
		return fmt.Errorf("render /%s: %w", p.path, err)
	}
	name := p.fileName()
	data := bytes.Clone(buf.Bytes())
	// Each worker writes distinct keys, but the map itself needs a lock.
	b.filesMu.Lock()
	b.files[name] = data
	b.filesMu.Unlock()
	return nil
}
