// Package markdown turns one page of Markdown into HTML for the site.
//
// The goldmark instance is built once by New and shared by every page (it is
// safe for concurrent use); per-page state travels in the parser.Context.
// On top of GitHub Flavored Markdown it adds:
//
//   - heading ids with a visible anchor link, and a table of contents (h2, h3);
//   - safe mode: raw HTML is dropped and javascript:/vbscript:/data: links are
//     reduced to their text;
//   - callouts: a block quote whose first line is [!NOTE], [!TIP],
//     [!IMPORTANT], [!WARNING] or [!CAUTION] becomes an <aside>;
//   - fenced code through the one highlight.Highlighter (CSS classes only);
//   - includes: ```go include=examples/go/poll/main.go#loop takes the lines
//     between the comments "region loop" and "endregion loop" of that file
//     (any comment syntax); without #name, the whole file. A missing file or
//     region is an error naming the page and line;
//   - tabs: consecutive fenced blocks with tab="Label" form one tab group. The
//     page shows every sample under its label; site.js turns the group into
//     tabs and remembers the reader's choice;
//   - diagrams: ```goat title="…" desc="…" is drawn to inline SVG at build
//     time, with <title> and <desc> for screen readers and colours from CSS.
//     The job states in it (queued, processing, succeeded, failed, canceled,
//     or the words given as states="a b c") get class="state" and
//     data-state, and a box drawn behind each, so try-it can light up the
//     state a job is in;
//   - try-it: ```tryit operation=createReport scenario=slow puts the live
//     try-it panel of that operation in the page (Config.TryIt renders it);
//     a non-empty block is the request body to start from;
//   - links: every link destination goes through Options.ResolveLink, so the
//     build can map guide.md links to URLs and reject broken ones.
package markdown

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	"github.com/accepted-dev/accepted/site/internal/highlight"
)

// Config is what the shared goldmark instance needs.
type Config struct {
	Highlighter *highlight.Highlighter
	// Examples holds the files include= may name. Include paths are written
	// from the repository root ("examples/go/poll/main.go"); IncludePrefix
	// ("examples/") is cut off before opening the file in Examples.
	Examples      fs.FS
	IncludePrefix string
	// ReservedIDs are element ids the page layout uses; headings never get them.
	ReservedIDs []string
	// TryIt renders the placeholder of a try-it panel for an operation id,
	// with the scenario to preselect and a body to start from (both may be
	// empty). nil makes every tryit block an error.
	TryIt func(operation, scenario, body string) (string, error)
}

// Options are per page.
type Options struct {
	// ResolveLink maps a link destination as written to the href to emit.
	// nil keeps destinations as written.
	ResolveLink func(dest string) (string, error)
}

// Heading is an entry of a page's table of contents.
type Heading struct {
	Level int
	ID    string
	Text  string
}

// Section is the prose under one h2 or h3, up to the next h2 or h3, as
// plain text: what the search index finds a heading by.
type Section struct {
	Heading
	Body string
}

// Result is a rendered page.
type Result struct {
	HTML     string
	Headings []Heading // h2 and h3, in order
	Text     string    // plain text of the prose, for the search index
	Intro    string    // plain text before the first h2 or h3
	Sections []Section // one per entry of Headings, in order
	TryIt    bool      // the page holds a try-it panel, so it needs the try-it script
}

// Markdown renders pages. Build it once with New.
type Markdown struct {
	md  goldmark.Markdown
	cfg Config
}

// New builds the goldmark instance.
func New(cfg Config) (*Markdown, error) {
	if cfg.Highlighter == nil {
		return nil, errors.New("markdown: a Highlighter is required")
	}
	if cfg.IncludePrefix == "" {
		cfg.IncludePrefix = "examples/"
	}
	md := goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithParserOptions(
			parser.WithAutoHeadingID(),
			parser.WithASTTransformers(util.Prioritized(&transformer{cfg: &cfg}, 100)),
		),
		goldmark.WithRendererOptions(
			renderer.WithNodeRenderers(util.Prioritized(&nodeRenderer{hl: cfg.Highlighter}, 100)),
		),
	)
	return &Markdown{md: md, cfg: cfg}, nil
}

// Render renders one page. file names the page in error messages; src is its
// Markdown (lines numbered as in the file).
func (m *Markdown) Render(file string, src []byte, opts Options) (*Result, error) {
	st := &docState{file: file, opts: opts}
	pc := parser.NewContext(parser.WithIDs(newIDs(m.cfg.ReservedIDs)))
	pc.Set(stateKey, st)
	doc := m.md.Parser().Parse(text.NewReader(src), parser.WithContext(pc))
	if len(st.errs) > 0 {
		return nil, errors.Join(st.errs...)
	}
	var buf bytes.Buffer
	if err := m.md.Renderer().Render(&buf, src, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	res := &Result{HTML: buf.String(), TryIt: st.tryits > 0}
	var txt, part strings.Builder
	cur := -1 // the section being read; -1 before the first h2 or h3
	endPart := func() {
		t := strings.Join(strings.Fields(part.String()), " ")
		if cur < 0 {
			res.Intro = t
		} else {
			res.Sections[cur].Body = t
		}
		part.Reset()
	}
	write := func(b []byte) {
		txt.Write(b)
		txt.WriteByte(' ')
		part.Write(b)
		part.WriteByte(' ')
	}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			id, _ := n.AttributeString("id")
			ids, _ := id.([]byte)
			t := plainText(n, src)
			if n.Level == 2 || n.Level == 3 {
				h := Heading{Level: n.Level, ID: string(ids), Text: t}
				res.Headings = append(res.Headings, h)
				endPart()
				res.Sections = append(res.Sections, Section{Heading: h})
				cur = len(res.Sections) - 1
				txt.WriteString(t + " ")
			} else {
				write([]byte(t))
			}
			return ast.WalkSkipChildren, nil
		case *CodeBlock, *Diagram, *TryItBlock, *ast.FencedCodeBlock, *ast.CodeBlock:
			return ast.WalkSkipChildren, nil
		case *ast.Text:
			write(n.Value(src))
		case *ast.String:
			write(n.Value)
		}
		return ast.WalkContinue, nil
	})
	endPart()
	res.Text = strings.Join(strings.Fields(txt.String()), " ")
	return res, nil
}

func plainText(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			switch c := c.(type) {
			case *ast.Text:
				b.Write(c.Value(src))
				if c.SoftLineBreak() {
					b.WriteByte(' ')
				}
			case *ast.String:
				b.Write(c.Value)
			}
		}
		return ast.WalkContinue, nil
	})
	return strings.TrimSpace(b.String())
}

var stateKey = parser.NewContextKey()

// docState is the per-page state the transformer fills in.
type docState struct {
	file     string
	opts     Options
	errs     []error
	tabs     int
	diagrams int
	tryits   int
}

func (s *docState) errorf(src []byte, offset int, format string, args ...any) {
	line := 1 + bytes.Count(src[:min(offset, len(src))], []byte("\n"))
	s.errs = append(s.errs, fmt.Errorf("%s:%d: "+format, append([]any{s.file, line}, args...)...))
}

// ids generates heading ids: lowercase ASCII letters, digits and '-', unique
// within the page and never one of the layout's reserved ids. Generated ids
// never contain '_', so ids the package makes itself (tab_1_2) cannot clash.
type ids struct{ used map[string]bool }

func newIDs(reserved []string) *ids {
	m := map[string]bool{}
	for _, r := range reserved {
		m[r] = true
	}
	return &ids{used: m}
}

func (s *ids) Generate(value []byte, _ ast.NodeKind) []byte {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(string(value)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	base := b.String()
	if base == "" {
		base = "section"
	}
	id := base
	for i := 1; s.used[id]; i++ {
		id = fmt.Sprintf("%s-%d", base, i)
	}
	s.used[id] = true
	return []byte(id)
}

func (s *ids) Put(value []byte) { s.used[string(value)] = true }

// Fragment renders a short text from a data file (a description in
// errors.json, say) with the same safe rules as pages. A single paragraph
// comes back without its <p>, so it can sit inside other markup.
func (m *Markdown) Fragment(name, s string) (string, error) {
	res, err := m.Render(name, []byte(s), Options{})
	if err != nil {
		return "", err
	}
	h := strings.TrimSpace(res.HTML)
	if strings.HasPrefix(h, "<p>") && strings.HasSuffix(h, "</p>") && strings.Count(h, "<p>") == 1 {
		h = h[3 : len(h)-4]
	}
	return h, nil
}
