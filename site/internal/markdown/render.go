package markdown

import (
	"fmt"
	"html"
	"strings"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/renderer"
	ghtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/util"

	"github.com/accepted-dev/accepted/site/internal/highlight"
)

type nodeRenderer struct{ hl *highlight.Highlighter }

func (r *nodeRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindHeading, r.heading)
	reg.Register(ast.KindBlockquote, r.blockquote)
	reg.Register(KindCodeBlock, r.code)
	reg.Register(KindTabGroup, r.tabs)
	reg.Register(KindDiagram, r.diagram)
	reg.Register(KindTryIt, r.tryit)
}

func (r *nodeRenderer) tryit(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		w.WriteString(node.(*TryItBlock).HTML)
		w.WriteByte('\n')
	}
	return ast.WalkSkipChildren, nil
}

func (r *nodeRenderer) heading(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.Heading)
	if entering {
		fmt.Fprintf(w, "<h%d", n.Level)
		ghtml.RenderAttributes(w, node, ghtml.HeadingAttributeFilter)
		w.WriteByte('>')
		return ast.WalkContinue, nil
	}
	if id, ok := n.AttributeString("id"); ok {
		fmt.Fprintf(w, ` <a class="anchor" href="#%s"><span aria-hidden="true">#</span><span class="visually-hidden">Link to this section</span></a>`, html.EscapeString(string(id.([]byte))))
	}
	fmt.Fprintf(w, "</h%d>\n", n.Level)
	return ast.WalkContinue, nil
}

func (r *nodeRenderer) blockquote(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	kind, ok := node.AttributeString("callout")
	if !ok {
		if entering {
			w.WriteString("<blockquote>\n")
		} else {
			w.WriteString("</blockquote>\n")
		}
		return ast.WalkContinue, nil
	}
	k := kind.(string)
	label := calloutLabels[strings.ToUpper(k)]
	if entering {
		fmt.Fprintf(w, "<aside class=\"callout callout-%s\" aria-label=\"%s\">\n<p class=\"callout-title\" aria-hidden=\"true\">%s</p>\n", k, label, label)
	} else {
		w.WriteString("</aside>\n")
	}
	return ast.WalkContinue, nil
}

func (r *nodeRenderer) code(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*CodeBlock)
	if n.Tab != "" {
		fmt.Fprintf(w, "<div class=\"tab-panel\" id=\"%s\" data-tab=\"%s\">\n<p class=\"tab-label\">%s", n.Panel, html.EscapeString(n.Tab), html.EscapeString(n.Tab))
		if n.File != "" {
			fmt.Fprintf(w, " <span class=\"code-file\">%s</span>", html.EscapeString(n.File))
		}
		w.WriteString("</p>\n")
	} else {
		w.WriteString("<div class=\"code\">\n")
		if n.File != "" {
			fmt.Fprintf(w, "<p class=\"code-file\">%s</p>\n", html.EscapeString(n.File))
		}
	}
	if err := r.hl.Write(w, n.Code, n.Lang); err != nil {
		return ast.WalkStop, err
	}
	w.WriteString("\n</div>\n")
	return ast.WalkSkipChildren, nil
}

func (r *nodeRenderer) tabs(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		fmt.Fprintf(w, "<div class=\"tabs\" id=\"%s\" data-tabs>\n", node.(*TabGroup).ID)
	} else {
		w.WriteString("</div>\n")
	}
	return ast.WalkContinue, nil
}

func (r *nodeRenderer) diagram(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*Diagram)
	size, body, _ := strings.Cut(n.SVG, "\n")
	var width, height int
	if _, err := fmt.Sscanf(size, "%d %d", &width, &height); err != nil {
		return ast.WalkStop, fmt.Errorf("diagram %s: size line %q: %w", n.ID, size, err)
	}
	labels := n.ID + "_title"
	if n.Desc != "" {
		labels += " " + n.ID + "_desc"
	}
	class := "diagram"
	if strings.Contains(body, "data-state=") {
		class += " lifecycle"
	}
	fmt.Fprintf(w, "<figure class=\"%s\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"%s\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" font-family=\"ui-monospace,Menlo,Consolas,monospace\">\n<title id=\"%s_title\">%s</title>\n",
		class, labels, width, height, width, height, n.ID, html.EscapeString(n.Title))
	if n.Desc != "" {
		fmt.Fprintf(w, "<desc id=\"%s_desc\">%s</desc>\n", n.ID, html.EscapeString(n.Desc))
	}
	w.WriteString(body)
	fmt.Fprintf(w, "</svg>\n<figcaption>%s</figcaption>\n</figure>\n", html.EscapeString(n.Title))
	return ast.WalkSkipChildren, nil
}
