package markdown

import (
	"bytes"
	"fmt"
	stdhtml "html"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bep/goat"
	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
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

// TableWrap holds a table in a box that scrolls sideways when the table is
// wider than the page; Label names the box for assistive technology.
type TableWrap struct {
	ast.BaseBlock
	Label string
}

// TryItBlock is a try-it panel placeholder, rendered by Config.TryIt.
type TryItBlock struct {
	ast.BaseBlock
	HTML string
}

// Callout kinds and their labels.
var calloutLabels = map[string]string{
	"NOTE": "Note", "TIP": "Tip", "IMPORTANT": "Important", "WARNING": "Warning", "CAUTION": "Caution",
}

var (
	KindCodeBlock = ast.NewNodeKind("AcceptedCodeBlock")
	KindTabGroup  = ast.NewNodeKind("AcceptedTabGroup")
	KindDiagram   = ast.NewNodeKind("AcceptedDiagram")
	KindTryIt     = ast.NewNodeKind("AcceptedTryIt")
	KindTableWrap = ast.NewNodeKind("AcceptedTableWrap")
)

func (n *CodeBlock) Kind() ast.NodeKind         { return KindCodeBlock }
func (n *CodeBlock) Dump(src []byte, level int) { ast.DumpHelper(n, src, level, nil, nil) }
func (n *TabGroup) Kind() ast.NodeKind          { return KindTabGroup }
func (n *TabGroup) Dump(src []byte, level int)  { ast.DumpHelper(n, src, level, nil, nil) }
func (n *Diagram) Kind() ast.NodeKind           { return KindDiagram }
func (n *Diagram) Dump(src []byte, level int)   { ast.DumpHelper(n, src, level, nil, nil) }
func (n *TableWrap) Kind() ast.NodeKind         { return KindTableWrap }
func (n *TableWrap) Dump(src []byte, level int) { ast.DumpHelper(n, src, level, nil, nil) }
func (n *TryItBlock) Kind() ast.NodeKind        { return KindTryIt }
func (n *TryItBlock) Dump(src []byte, level int) {
	ast.DumpHelper(n, src, level, nil, nil)
}

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
	var tables []*east.Table
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
		case *east.Table:
			tables = append(tables, n)
		}
		return ast.WalkContinue, nil
	})
	for _, q := range quotes {
		t.callout(q, src)
	}
	for _, l := range links {
		t.link(l, src, st)
	}
	for _, tb := range tables {
		wrapTable(tb, src)
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
			SVG:   drawGoat(body.String(), stateWords(fi.attrs["states"]), fi.attrs["states"] == ""),
		}
		parent.ReplaceChild(parent, f, d)
		return nil
	}
	if fi.lang == "tryit" {
		op := fi.attrs["operation"]
		switch {
		case op == "":
			st.errorf(src, off, "tryit block needs operation=<operationId>")
			return nil
		case t.cfg.TryIt == nil:
			st.errorf(src, off, "tryit operation=%s: this site has no API reference to take the operation from", op)
			return nil
		}
		h, err := t.cfg.TryIt(op, fi.attrs["scenario"], strings.TrimSpace(body.String()))
		if err != nil {
			st.errorf(src, off, "tryit operation=%s: %v", op, err)
			return nil
		}
		st.tryits++
		parent.ReplaceChild(parent, f, &TryItBlock{HTML: h})
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

// wrapTable puts a table in a TableWrap named after its column headings
// ("Table: Status, What it means, Who moves it on").
func wrapTable(tb *east.Table, src []byte) {
	var cols []string
	if head, ok := tb.FirstChild().(*east.TableHeader); ok {
		for c := head.FirstChild(); c != nil; c = c.NextSibling() {
			if t := plainText(c, src); t != "" {
				cols = append(cols, t)
			}
		}
	}
	label := "Table"
	if len(cols) > 0 {
		label += ": " + strings.Join(cols, ", ")
	}
	parent := tb.Parent()
	wrap := &TableWrap{Label: label}
	parent.ReplaceChild(parent, tb, wrap)
	wrap.AppendChild(wrap, tb)
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
// can colour it. Words of the art that name a state become addressable
// (see markStates).
func drawGoat(art string, states map[string]bool, needTwo bool) string {
	svg := goat.BuildSVG(strings.NewReader(art))
	body := strings.ReplaceAll(svg.Body, " style='font-size:1em'", "")
	body = strings.ReplaceAll(body, "fill='#fff'", "class='open'")
	body = markStates(body, states, needTwo)
	return fmt.Sprintf("%d %d\n%s", svg.Width, svg.Height, body)
}

// JobStates are the words a diagram marks by default: a job's statuses.
var JobStates = []string{"queued", "processing", "succeeded", "failed", "canceled"}

func stateWords(attr string) map[string]bool {
	words := JobStates
	if attr != "" {
		words = strings.Fields(strings.ReplaceAll(attr, ",", " "))
	}
	m := map[string]bool{}
	for _, w := range words {
		m[w] = true
	}
	return m
}

// goatChar is one character goat drew: <text … x='16' y='20' …>q</text>.
var goatChar = regexp.MustCompile(`<text text-anchor='middle' x='(-?\d+)' y='(-?\d+)'([^>]*)>([^<]*)</text>`)

// markStates finds the words in states among goat's characters (goat draws
// each character as its own <text>, 8 units apart on a row) and gives each
// of their characters class='state' and data-state='word', and puts a
// rect with the same class and data-state behind the word, for CSS to
// light up. With needTwo (the default state words) a diagram that names
// fewer than two states is left alone: it is not a lifecycle, and a
// sequence diagram that mentions "succeeded" once should not light up.
func markStates(body string, states map[string]bool, needTwo bool) string {
	if len(states) == 0 {
		return body
	}
	type ch struct {
		x, y       int
		start, end int // byte span of the <text> element in body
		s          string
	}
	var chars []ch
	for _, m := range goatChar.FindAllStringSubmatchIndex(body, -1) {
		var c ch
		var errX, errY error
		c.x, errX = strconv.Atoi(body[m[2]:m[3]])
		c.y, errY = strconv.Atoi(body[m[4]:m[5]])
		if errX != nil || errY != nil {
			continue // digits too many for an int: not a place goat would draw
		}
		c.start, c.end, c.s = m[0], m[1], stdhtml.UnescapeString(body[m[8]:m[9]])
		chars = append(chars, c)
	}
	if len(chars) == 0 {
		return body
	}
	sorted := slices.Clone(chars)
	slices.SortFunc(sorted, func(a, b ch) int {
		if a.y != b.y {
			return a.y - b.y
		}
		return a.x - b.x
	})
	word := map[int]string{} // start offset of a marked <text> → its state
	var rects strings.Builder
	flush := func(run []ch) {
		var w strings.Builder
		for _, c := range run {
			w.WriteString(c.s)
		}
		if !states[w.String()] {
			return
		}
		for _, c := range run {
			word[c.start] = w.String()
		}
		x0 := run[0].x - 4 - 3
		fmt.Fprintf(&rects, "<rect class='state-box' data-state='%s' x='%d' y='%d' width='%d' height='20' rx='3'></rect>\n",
			w.String(), x0, run[0].y-15, len(run)*8+6)
	}
	var run []ch
	for _, c := range sorted {
		if len(run) > 0 && (c.y != run[len(run)-1].y || c.x != run[len(run)-1].x+8) {
			flush(run)
			run = run[:0]
		}
		run = append(run, c)
	}
	flush(run)
	distinct := map[string]bool{}
	for _, w := range word {
		distinct[w] = true
	}
	if len(distinct) == 0 || needTwo && len(distinct) < 2 {
		return body
	}
	var out strings.Builder
	last := 0
	for i, c := range chars {
		if i == 0 {
			out.WriteString(body[:c.start])
			out.WriteString(rects.String())
			last = c.start
		}
		st, ok := word[c.start]
		if !ok {
			continue
		}
		out.WriteString(body[last:c.start])
		out.WriteString(strings.Replace(body[c.start:c.end], "<text ", "<text class='state' data-state='"+st+"' ", 1))
		last = c.end
	}
	out.WriteString(body[last:])
	return out.String()
}
