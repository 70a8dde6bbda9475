package markdown

import (
	"fmt"
	"html"
	"strings"

	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/renderer"
	ghtml "github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/util"

	"github.com/accepted-dev/accepted/site/internal/components"
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
	reg.Register(KindTableWrap, r.tableWrap)
	reg.Register(east.KindTaskCheckBox, r.taskCheckBox)
}

// taskCheckBox draws a checklist's box. It is a picture of a box, not a
// control: the reader cannot tick it, so it is hidden from assistive
// technology (which would otherwise meet a checkbox without a label) and
// the item's text says it all.
func (r *nodeRenderer) taskCheckBox(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	if node.(*east.TaskCheckBox).IsChecked {
		w.WriteString(`<input type="checkbox" class="task" checked disabled aria-hidden="true" tabindex="-1"> `)
	} else {
		w.WriteString(`<input type="checkbox" class="task" disabled aria-hidden="true" tabindex="-1"> `)
	}
	return ast.WalkContinue, nil
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
		// The label heads the sample when tabs are off (no JavaScript, print);
		// under html.js CSS hides it where a tab list names the panel.
		fmt.Fprintf(w, "<div class=\"tab-panel\" id=\"%s\" data-tab=\"%s\">\n<p class=\"tab-label\">%s</p>\n", n.Panel, html.EscapeString(n.Tab), html.EscapeString(n.Tab))
	}
	label := n.File
	if label == "" {
		label = LangLabel(n.Lang)
	}
	w.WriteString("<div class=\"code\">\n")
	w.WriteString(components.CodeHeadHTML(label))
	if err := r.hl.Write(w, n.Code, n.Lang); err != nil {
		return ast.WalkStop, err
	}
	w.WriteString("\n</div>\n")
	if n.Tab != "" {
		w.WriteString("</div>\n")
	}
	return ast.WalkSkipChildren, nil
}

// LangLabel is the name a code block's head shows for a language when no
// file is named: "sh" is Shell, "json" JSON; an unknown name shows as given,
// and plain text shows nothing.
func LangLabel(lang string) string {
	switch strings.ToLower(lang) {
	case "", "text", "plain", "txt", "none":
		return ""
	case "sh", "bash", "shell", "zsh", "console", "shell-session":
		return "Shell"
	case "go", "golang":
		return "Go"
	case "js", "javascript", "mjs":
		return "JavaScript"
	case "ts", "typescript":
		return "TypeScript"
	case "py", "python":
		return "Python"
	case "json", "jsonc":
		return "JSON"
	case "yaml", "yml":
		return "YAML"
	case "http":
		return "HTTP"
	case "html":
		return "HTML"
	case "sql":
		return "SQL"
	case "toml":
		return "TOML"
	}
	return lang
}

func (r *nodeRenderer) tabs(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		g := node.(*TabGroup)
		fmt.Fprintf(w, "<div class=\"tabs\" id=\"%s\" data-tabs=\"lang\">\n", g.ID)
		var tabs []components.Tab
		for c := g.FirstChild(); c != nil; c = c.NextSibling() {
			if cb, ok := c.(*CodeBlock); ok {
				tabs = append(tabs, components.Tab{Panel: cb.Panel, Label: cb.Tab})
			}
		}
		w.WriteString(components.TabListHTML("", tabs))
	} else {
		w.WriteString("</div>\n")
	}
	return ast.WalkContinue, nil
}

func (r *nodeRenderer) tableWrap(w util.BufWriter, _ []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		// A wide table scrolls inside its own box, which must then be
		// reachable by keyboard (axe: scrollable-region-focusable) and say
		// what it holds when it takes focus.
		fmt.Fprintf(w, "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-label=\"%s\">\n", html.EscapeString(node.(*TableWrap).Label))
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
	w.WriteString(DiagramHTML(n.ID, n.Title, n.Desc, width, height, body))
	return ast.WalkSkipChildren, nil
}

// DiagramHTML is the markup of a drawn diagram: the SVG at its natural size
// (ASCII art shrunk to a phone's width is unreadable) inside a box that
// scrolls sideways when the screen is narrower, focusable so a keyboard can
// scroll it, and named after the figure. body is the SVG's content; id
// prefixes the ids of its <title> and <desc>.
func DiagramHTML(id, title, desc string, width, height int, body string) string {
	var w strings.Builder
	labels := id + "_title"
	if desc != "" {
		labels += " " + id + "_desc"
	}
	class := "diagram"
	if strings.Contains(body, "data-state=") {
		class += " lifecycle"
	}
	t := html.EscapeString(title)
	fmt.Fprintf(&w, "<figure class=\"%s\">\n<div class=\"diagram-scroll\" tabindex=\"0\" role=\"region\" aria-label=\"%s (diagram)\">\n", class, t)
	fmt.Fprintf(&w, "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"%s\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" font-family=\"ui-monospace,Menlo,Consolas,monospace\">\n<title id=\"%s_title\">%s</title>\n",
		labels, width, height, width, height, id, t)
	if desc != "" {
		fmt.Fprintf(&w, "<desc id=\"%s_desc\">%s</desc>\n", id, html.EscapeString(desc))
	}
	w.WriteString(body)
	fmt.Fprintf(&w, "</svg>\n</div>\n<figcaption>%s</figcaption>\n</figure>\n", t)
	return w.String()
}
