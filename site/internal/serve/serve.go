// Package serve serves a built site for previews, with the headers a real
// host should send: the strict Content-Security-Policy the pages are built
// for, and, from internal/staticfiles, precompressed gzip and brotli,
// immutable caching for hashed assets, ETags, and 404.html for unknown paths.
package serve

import (
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/accepted-dev/accepted/internal/staticfiles"
)

// CSP is the policy every page is built to satisfy.
const CSP = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the site in fsys. connect lists other origins the pages
// may fetch from (a sandbox on another origin, for try-it): they are added
// to the CSP as connect-src 'self' <origin>…. It answers GET and HEAD only,
// and a directory without an index.html with the 404 page, never a listing.
// The site's text files are compressed when Handler is called.
func Handler(fsys fs.FS, connect ...string) http.Handler {
	files := staticfiles.New(fsys, staticfiles.Options{
		MethodNotAllowed: "405 Method Not Allowed: the site answers GET and HEAD only.",
	})
	csp := CSP
	if len(connect) > 0 {
		csp += "; connect-src 'self' " + strings.Join(connect, " ")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if len(r.TransferEncoding) > 0 {
			// net/http reads a request with both Content-Length and
			// Transfer-Encoding: chunked by the chunked coding, hides the
			// Content-Length, and keeps the connection; RFC 9112 §6.1 wants
			// the connection closed, and a GET or HEAD has no body to
			// chunk. So every chunked request is refused, whatever its
			// method, which covers the ambiguous ones without reading the
			// wire.
			h.Set("Connection", "close")
			plain(w, http.StatusBadRequest, "400 Bad Request: the site reads no request body; send the request without Transfer-Encoding (RFC 9112 §6.1).")
			return
		}
		files.ServeHTTP(w, r)
	})
}

// plain answers a short text page.
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
