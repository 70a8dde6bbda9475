// Package components holds the templ components of the site's frame: the
// layout (sticky header with section navigation, search box and theme
// toggle; sidebar that doubles as the phone menu; breadcrumbs; the page's
// table of contents; previous/next; footer with the downloads), the 404 page,
// section index pages, and the markup every code block shares.
//
// Everything here must work under Content-Security-Policy: default-src
// 'self': no inline script or style, no event-handler attributes. Scripts
// are external files. Controls that need JavaScript (search box, theme
// toggle, copy buttons, menu button) are in the HTML from the start, so
// nothing moves when the scripts arrive: theme.js, which runs in <head>
// before the first paint, marks <html class="js">, and until then CSS keeps
// those controls invisible (visibility, which keeps their room) rather than
// absent. A reader without JavaScript sees no dead controls, and everything
// they need works with links: the menu button is a link to the menu (shown
// by :target), the table of contents is a list of links.
package components

import (
	"fmt"
	"html"
	"strings"

	"github.com/a-h/templ"
)

// ReservedIDs are element ids the layout uses; page bodies must not reuse them.
var ReservedIDs = []string{"main", "site-search", "search-status", "search-results", "theme-toggle", "toc-title", "sidebar-title", "top", "site-menu", "menu-button", "live"}

// Site is what every page shares.
type Site struct {
	Name        string
	BaseURL     string // ends with "/"
	SandboxURL  string // written to <meta name="accepted-sandbox">; "" means same origin
	CSS         string // href of the stylesheet
	ThemeScript string // href of the small blocking script that applies the saved theme
	Scripts     []string
	SearchIndex string // href of the search index JSON
	Favicon     string
	Nav         []Link
	// Downloads are the footer's files to fetch: the OpenAPI documents and
	// the Spectral ruleset. Note says what each is ("OpenAPI 3.1, JSON").
	Downloads []Link
}

// Link is a navigation entry.
type Link struct {
	Label   string
	Href    string
	Current bool
	Level   int    // for the table of contents: 2 or 3
	Note    string // a short description shown in lists
}

// Group is a titled list of links in the sidebar.
type Group struct {
	Title string
	Links []Link
}

// Page is one page to lay out.
//
// The frame has up to three columns: the sidebar (Sidebar), the article,
// and on wide screens (75rem and up) an "On this page" column built from TOC,
// which narrower screens show as a collapsible list at the top of the
// article instead. TOC needs two entries or more to show.
type Page struct {
	Site        *Site
	Title       string
	Description string
	Section     string // label of the current top-level section, for aria-current
	Breadcrumbs []Link // ancestors, not including the page itself
	Sidebar     []Group
	TOC         []Link
	Prev, Next  *Link
	// Actions are call-to-action links shown as buttons under the lead (the
	// home page's "Start here"); the first is the primary one.
	Actions []Link
	// Scripts are extra deferred scripts for this page only (the try-it
	// console of the reference pages, for example).
	Scripts []string
	// OwnTitle is set when Body renders its own <h1>.
	OwnTitle bool
	// Wide is for content that needs the whole width, such as the API
	// reference's prose-and-samples columns: no "On this page" column and no
	// TOC list above the article (put the page's contents in the Sidebar),
	// and the article is not held to a reading width. The main area then
	// spans everything right of the sidebar; the body lays out its own
	// columns inside (the class "wide" is on .page and on <main>).
	Wide bool
	Body templ.Component
}

// FullTitle is the text of <title>.
func (p Page) FullTitle() string {
	if p.Title == "" || p.Title == p.Site.Name {
		return p.Site.Name
	}
	return p.Title + " · " + p.Site.Name
}

// hasTOC reports whether the page gets an "On this page" list.
func (p Page) hasTOC() bool { return !p.Wide && len(p.TOC) > 1 }

// pageClass is the class list of the frame around the main area.
func (p Page) pageClass() string {
	c := "page"
	if len(p.Sidebar) > 0 {
		c += " has-sidebar"
	}
	if p.hasTOC() {
		c += " has-toc"
	}
	if p.Wide {
		c += " wide"
	}
	return c
}

// CopyButtonHTML is the copy button of a code block. site.js copies the text
// of the first <pre> inside the button's closest ".code" or
// "[data-copy-scope]" ancestor (prompts such as "$ " in console blocks are
// left out) and announces "Copied" in the page's live region. The button is
// in the HTML from the start and invisible until JavaScript runs, so it never
// shifts the layout; it is a real <button>, so the keyboard reaches it.
//
// To give other code the same button (the API reference's samples), put
// CopyButton (or this markup) inside an element with data-copy-scope that
// holds the <pre>; or use CodeHead above the <pre> inside <div class="code">.
const CopyButtonHTML = `<button type="button" class="copy" data-copy><svg aria-hidden="true" viewBox="0 0 16 16" width="16" height="16"><path d="M5.5 1.5h7a1 1 0 0 1 1 1v8M3 4.5h6.5a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1z" fill="none" stroke="currentColor" stroke-width="1.4"></path></svg><span class="copy-text">Copy</span></button>`

// CodeHeadHTML is the bar above a code block: what the code is (a file name
// or a language, may be empty) and the copy button. It goes first inside
// <div class="code">, before the <pre>.
func CodeHeadHTML(label string) string {
	return `<div class="code-head"><span class="code-label">` + html.EscapeString(label) + `</span>` + CopyButtonHTML + "</div>\n"
}

// CopyButton is CopyButtonHTML as a component.
func CopyButton() templ.Component { return templ.Raw(CopyButtonHTML) }

// CodeHead is CodeHeadHTML as a component.
func CodeHead(label string) templ.Component { return templ.Raw(CodeHeadHTML(label)) }

// Tab is one panel of a tab group: the id of its element and its label.
type Tab struct{ Panel, Label string }

// TabListHTML is the tab list of a group of panels (<div class="tabs"
// data-tabs> holding this list and then <div class="tab-panel" id=… data-tab=…>
// elements). It is in the HTML from the start so that nothing moves when
// site.js wires it up: CSS shows it only under html.js (theme.js sets that
// class before the first paint) and, until site.js takes over, shows the
// first panel of each group only, or the reader's saved choice (theme.js).
// Without JavaScript the list is hidden and every panel shows under its own
// label. A group of fewer than two panels gets no list.
func TabListHTML(label string, tabs []Tab) string {
	if len(tabs) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`<div class="tab-list" role="tablist"`)
	if label != "" {
		b.WriteString(` aria-label="` + html.EscapeString(label) + `"`)
	}
	b.WriteString(">")
	for i, t := range tabs {
		sel, idx := "false", "-1"
		if i == 0 {
			sel, idx = "true", "0"
		}
		p, l := html.EscapeString(t.Panel), html.EscapeString(t.Label)
		fmt.Fprintf(&b, `<button type="button" role="tab" id="%s_tab" aria-controls="%s" aria-selected="%s" tabindex="%s" data-tab="%s">%s</button>`, p, p, sel, idx, l, l)
	}
	b.WriteString("</div>\n")
	return b.String()
}

// TabList is TabListHTML as a component.
func TabList(label string, tabs []Tab) templ.Component { return templ.Raw(TabListHTML(label, tabs)) }
