// Package components holds the templ components of the site's frame: the
// layout (header with section navigation, search box and theme toggle,
// sidebar, breadcrumbs, table of contents, previous/next, footer), the 404
// page and section index pages. Bodies come from elsewhere (Markdown, the
// API reference, the error catalog) as templ.Components.
//
// Everything here must work under Content-Security-Policy: default-src
// 'self': no inline script or style, no event-handler attributes. Scripts
// are external files; the search box and theme toggle are hidden until
// site.js shows them, so a reader without JavaScript sees no dead controls.
package components

import "github.com/a-h/templ"

// ReservedIDs are element ids the layout uses; page bodies must not reuse them.
var ReservedIDs = []string{"main", "site-search", "search-status", "search-results", "theme-toggle", "toc-title", "sidebar-title", "top"}

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
type Page struct {
	Site        *Site
	Title       string
	Description string
	Section     string // label of the current top-level section, for aria-current
	Breadcrumbs []Link // ancestors, not including the page itself
	Sidebar     []Group
	TOC         []Link
	Prev, Next  *Link
	// Scripts are extra deferred scripts for this page only (the try-it
	// console of the reference pages, for example).
	Scripts []string
	// OwnTitle is set when Body renders its own <h1>.
	OwnTitle bool
	Body     templ.Component
}

// FullTitle is the text of <title>.
func (p Page) FullTitle() string {
	if p.Title == "" || p.Title == p.Site.Name {
		return p.Site.Name
	}
	return p.Title + " · " + p.Site.Name
}
