// Package highlight is the site's one wrapper around chroma: every code block
// on every page goes through Highlighter.Write, so the markup is always
// class-based (no inline styles, which a strict CSP would block) and one
// stylesheet from CSS covers both the light and the dark theme.
package highlight

import (
	"bufio"
	"bytes"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
)

// Default themes: the Modus pair is designed for WCAG AAA contrast.
const (
	DefaultLight = "modus-operandi"
	DefaultDark  = "modus-vivendi"
)

// Highlighter turns source code into HTML. It is safe for concurrent use.
type Highlighter struct {
	formatter *chromahtml.Formatter
	light     *chroma.Style
	dark      *chroma.Style
}

// New returns a Highlighter using the named chroma styles for the light and
// dark themes.
func New(light, dark string) (*Highlighter, error) {
	ls, ok := styles.Registry[light]
	if !ok {
		return nil, fmt.Errorf("highlight: unknown light style %q", light)
	}
	ds, ok := styles.Registry[dark]
	if !ok {
		return nil, fmt.Errorf("highlight: unknown dark style %q", dark)
	}
	f := chromahtml.New(
		chromahtml.WithClasses(true),
		chromahtml.TabWidth(8), // any other width makes chroma add a style attribute
		chromahtml.PreventSurroundingPre(true),
		chromahtml.WithCSSComments(false),
	)
	return &Highlighter{formatter: f, light: ls, dark: ds}, nil
}

// Write writes code as a highlighted <pre> block. lang is a chroma lexer name
// or alias; unknown or empty languages are written as plain, escaped text.
// The <pre> is focusable so keyboard users can scroll wide samples.
func (h *Highlighter) Write(w io.Writer, code, lang string) error {
	lexer := lexers.Get(lang)
	cls := "chroma"
	if lang != "" {
		cls += " language-" + sanitizeClass(lang)
	}
	if _, err := fmt.Fprintf(w, `<pre class="%s" tabindex="0"><code>`, cls); err != nil {
		return err
	}
	if lexer == nil {
		if _, err := io.WriteString(w, html.EscapeString(code)); err != nil {
			return err
		}
	} else {
		it, err := chroma.Coalesce(lexer).Tokenise(nil, code)
		if err != nil {
			return fmt.Errorf("highlight %s: %w", lang, err)
		}
		if err := h.formatter.Format(w, h.light, it); err != nil {
			return fmt.Errorf("highlight %s: %w", lang, err)
		}
	}
	_, err := io.WriteString(w, "</code></pre>")
	return err
}

// HTML is Write into a string.
func (h *Highlighter) HTML(code, lang string) (string, error) {
	var b strings.Builder
	err := h.Write(&b, code, lang)
	return b.String(), err
}

// CSS returns the stylesheet for both themes. The light theme applies by
// default; the dark one applies under [data-theme=dark] (the toggle) and under
// prefers-color-scheme: dark unless the reader chose [data-theme=light].
func (h *Highlighter) CSS() (string, error) {
	var light, dark bytes.Buffer
	if err := h.formatter.WriteCSS(&light, h.light); err != nil {
		return "", fmt.Errorf("light css: %w", err)
	}
	if err := h.formatter.WriteCSS(&dark, h.dark); err != nil {
		return "", fmt.Errorf("dark css: %w", err)
	}
	var out strings.Builder
	out.WriteString("/* code: light theme " + h.light.Name + ", dark theme " + h.dark.Name + " */\n")
	writeRules(&out, light.String(), "")
	writeRules(&out, dark.String(), "[data-theme=dark] ")
	out.WriteString("@media (prefers-color-scheme: dark) {\n")
	writeRules(&out, dark.String(), ":root:not([data-theme=light]) ")
	out.WriteString("}\n")
	return out.String(), nil
}

// writeRules copies chroma's one-rule-per-line CSS, prefixing each selector.
// Rules for classes we never emit (background wrapper, line numbers) are dropped.
func writeRules(out *strings.Builder, css, prefix string) {
	sc := bufio.NewScanner(strings.NewReader(css))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		sel, rest, ok := strings.Cut(line, " {")
		if !ok || unused[sel] {
			continue
		}
		out.WriteString(prefix + sel + " {" + rest + "\n")
	}
}

var unused = map[string]bool{
	".bg": true, ".chroma .lnlinks": true, ".chroma .lntd": true, ".chroma .lntable": true,
	".chroma .hl": true, ".chroma .lnt": true, ".chroma .ln": true, ".chroma .line": true,
}

func sanitizeClass(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
