// Package assets embeds the hand-written stylesheet, scripts and icon of the
// site. The build copies them under content-hashed names; nothing here is
// loaded from another host.
package assets

import "embed"

// FS holds site.css, theme.js, site.js, search.js, favicon.svg, and the
// try-it console: tryit.js (loaded only by pages with a try-it panel) and
// tryit.css (appended to the stylesheet).
//
//go:embed site.css theme.js site.js search.js favicon.svg tryit.js tryit.css
var FS embed.FS
