package markdown

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/bep/goat"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
)

// CodeBlock is a fenced block after includes are resolved.
type CodeBlock struct {
	ast.BaseBlock
	Lang  string
	Code  string
	File  string // the included file, shown above the code
	Tab   string // tab label, when part of a TabGroup
	Panel string // element id, when part of a TabGroup
}

// TabGroup holds consecutive CodeBlocks that carry a tab label.
type TabGroup struct {
	ast.BaseBlock
	ID string
}

// Diagram is a goat block drawn to SVG.
type Diagram struct {
	ast.BaseBlock
	ID, Title, Desc, SVG string
}

// Callout kinds and their labels.
var calloutLabels = map[string]string{
	"NOTE": "Note", "TIP": "Tip", "IMPORTANT": "Important", "WARNING": "Warning", "CAUTION": "Caution",
}

var (
	KindCodeBlock = ast.NewNodeKind("AcceptedCodeBlock")
	KindTabGroup  = ast.NewNodeKind("AcceptedTabGroup")
	KindDiagram   = ast.NewNodeKind("AcceptedDiagram")
)

func (n *CodeBlock) Kind() ast.NodeKind         { return KindCodeBlock }
func (n *CodeBlock) Dump(src []byte, level int) { ast.DumpHelper(n, src, level, nil, nil) }
func (n *TabGroup) Kind() ast.NodeKind          { return KindTabGroup }
func (n *TabGroup) Dump(src []byte, level int)  { ast.DumpHelper(n, src, level, nil, nil) }
func (n *Diagram) Kind() ast.NodeKind           { return KindDiagram }
func (n *Diagram) Dump(src []byte, level int)   { ast.DumpHelper(n, src, level, nil, nil) }

type transformer struct{ cfg *Config }

func (t *transformer) Transform(doc *ast.Document, reader text.Reader, pc parser.Context) {
	st, _ := pc.Get(stateKey).(*docState)
	if st == nil {
		st = &docState{file: "page"}
	}
	src := reader.Source()
	var fences []*ast.FencedCodeBlock
	var quotes []*ast.Blockquote
	var links []ast.Node
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.FencedCodeBlock:
			fences = append(fences, n)
		case *ast.Blockquote:
			quotes = append(quotes, n)
		case *ast.Link, *ast.AutoLink, *ast.Image:
			links = append(links, n)
		}
		return ast.WalkContinue, nil
	})
	for _, q := range quotes {
		t.callout(q, src)
	}
	for _, l := range links {
		t.link(l, src, st)
	}
	var blocks []*CodeBlock
	for _, f := range fences {
		if cb := t.fence(f, src, st); cb != nil {
			blocks = append(blocks, cb)
		}
	}
	for _, cb := range blocks {
		if cb.Tab == "" {
			continue
		}
		prev, _ := cb.PreviousSibling().(*TabGroup)
		parent := cb.Parent()
		if prev == nil {
			st.tabs++
			prev = &TabGroup{ID: fmt.Sprintf("tabs_%d", st.tabs)}
			parent.InsertBefore(parent, cb, prev)
		}
		parent.RemoveChild(parent, cb)
		prev.AppendChild(prev, cb)
		cb.Panel = fmt.Sprintf("%s_%d", prev.ID, prev.ChildCount())
	}
}

func offsetOf(n ast.Node) int {
	for ; n != nil; n = n.Parent() {
		if f, ok := n.(*ast.FencedCodeBlock); ok && f.Info != nil {
			return f.Info.Segment.Start
		}
		if n.Type() == ast.TypeBlock && n.Lines().Len() > 0 {
			return n.Lines().At(0).Start
		}
	}
	return 0
}

func (t *transformer) fence(f *ast.FencedCodeBlock, src []byte, st *docState) *CodeBlock {
	off := offsetOf(f)
	info := ""
	if f.Info != nil {
		info = string(f.Info.Segment.Value(src))
	}
	fi, err := parseFence(info)
	if err != nil {
		st.errorf(src, off, "%v", err)
		return nil
	}
	var body strings.Builder
	for i := 0; i < f.Lines().Len(); i++ {
		seg := f.Lines().At(i)
		body.Write(seg.Value(src))
	}
	parent := f.Parent()
	if fi.lang == "goat" {
		if fi.attrs["title"] == "" {
			st.errorf(src, off, `goat diagram needs title="…" (read by screen readers)`)
			return nil
		}
		st.diagrams++
		d := &Diagram{
			ID:    fmt.Sprintf("fig_%d", st.diagrams),
			Title: fi.attrs["title"],
			Desc:  fi.attrs["desc"],
			SVG:   drawGoat(body.String()),
		}
		parent.ReplaceChild(parent, f, d)
		return nil
	}
	cb := &CodeBlock{Lang: fi.lang, Code: body.String(), Tab: fi.attrs["tab"]}
	if inc := fi.attrs["include"]; inc != "" {
		if strings.TrimSpace(cb.Code) != "" {
			st.errorf(src, off, "include=%s: the fenced block must be empty", inc)
			return nil
		}
		code, file, err := readInclude(t.cfg.Examples, t.cfg.IncludePrefix, inc)
		if err != nil {
			st.errorf(src, off, "%v", err)
			return nil
		}
		cb.Code, cb.File = code, file
		if cb.Lang == "" {
			cb.Lang = langForFile(file)
		}
	}
	if title := fi.attrs["title"]; title != "" {
		cb.File = title
	}
	parent.ReplaceChild(parent, f, cb)
	return cb
}

var calloutRE = regexp.MustCompile(`^\[!([A-Za-z]+)\]\s*$`)

// callout turns "> [!NOTE]\n> text" into a callout: the marker is removed
// and the kind stored as the "callout" attribute, read by the renderer.
func (t *transformer) callout(q *ast.Blockquote, src []byte) {
	p, ok := q.FirstChild().(*ast.Paragraph)
	if !ok || p.Lines().Len() == 0 {
		return
	}
	first := p.Lines().At(0)
	m := calloutRE.FindSubmatch(bytes.TrimSpace(first.Value(src)))
	if m == nil {
		return
	}
	kind := strings.ToUpper(string(m[1]))
	if _, ok := calloutLabels[kind]; !ok {
		return
	}
	// Remove the inline nodes of the first line, up to its line break.
	for c := p.FirstChild(); c != nil; {
		next := c.NextSibling()
		end := false
		if tx, ok := c.(*ast.Text); ok {
			end = tx.SoftLineBreak() || tx.HardLineBreak()
		}
		p.RemoveChild(p, c)
		c = next
		if end {
			break
		}
	}
	if p.ChildCount() == 0 {
		q.RemoveChild(q, p)
	}
	q.SetAttributeString("callout", strings.ToLower(kind))
}

func (t *transformer) link(n ast.Node, src []byte, st *docState) {
	var dest []byte
	switch l := n.(type) {
	case *ast.Link:
		dest = l.Destination
	case *ast.Image:
		dest = l.Destination
	case *ast.AutoLink:
		dest = l.URL(src)
		if l.AutoLinkType == ast.AutoLinkEmail {
			return
		}
	}
	parent := n.Parent()
	if html.IsDangerousURL(dest) {
		// Keep the words, drop the link.
		for c := n.FirstChild(); c != nil; {
			next := c.NextSibling()
			parent.InsertBefore(parent, n, c)
			c = next
		}
		if a, ok := n.(*ast.AutoLink); ok {
			parent.InsertBefore(parent, n, ast.NewString(a.Label(src)))
		}
		parent.RemoveChild(parent, n)
		return
	}
	if st.opts.ResolveLink == nil {
		return
	}
	got, err := st.opts.ResolveLink(string(dest))
	if err != nil {
		st.errorf(src, offsetOf(n), "link %q: %v", dest, err)
		return
	}
	switch l := n.(type) {
	case *ast.Link:
		l.Destination = []byte(got)
	case *ast.Image:
		l.Destination = []byte(got)
	}
}

// drawGoat draws ASCII art with goat and makes the SVG CSP-safe: goat's
// style attributes go, and its white fill becomes a class so the dark theme
// can colour it.
func drawGoat(art string) string {
	svg := goat.BuildSVG(strings.NewReader(art))
	body := strings.ReplaceAll(svg.Body, " style='font-size:1em'", "")
	body = strings.ReplaceAll(body, "fill='#fff'", "class='open'")
	return fmt.Sprintf("%d %d\n%s", svg.Width, svg.Height, body)
}
