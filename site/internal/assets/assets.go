// Package assets embeds the hand-written stylesheet, scripts and icon of the
// site. The build copies them under content-hashed names; nothing here is
// loaded from another host.
package assets

import "embed"

// FS holds site.css, theme.js, site.js, search.js and favicon.svg.
//
//go:embed site.css theme.js site.js search.js favicon.svg
var FS embed.FS
