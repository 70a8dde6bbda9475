// Package serve serves a built site for previews, with the headers a real
// host should send: the strict Content-Security-Policy the pages are built
// for, long caching for hashed assets, and 404.html for unknown paths.
package serve

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// CSP is the policy every page is built to satisfy.
const CSP = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the site in fsys. connect lists other origins the pages
// may fetch from (a sandbox on another origin, for try-it): they are added
// to the CSP as connect-src 'self' <origin>….
func Handler(fsys fs.FS, connect ...string) http.Handler {
	files := http.FileServerFS(fsys)
	csp := CSP
	if len(connect) > 0 {
		csp += "; connect-src 'self' " + strings.Join(connect, " ")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		info, err := fs.Stat(fsys, name)
		if err == nil && info.IsDir() {
			_, err = fs.Stat(fsys, path.Join(name, "index.html"))
		}
		if errors.Is(err, fs.ErrNotExist) {
			notFound(w, fsys)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}

func notFound(w http.ResponseWriter, fsys fs.FS) {
	data, err := fs.ReadFile(fsys, "404.html")
	if err != nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	http.ServeContent(noHeaderWriter{w}, &http.Request{Method: http.MethodGet}, "404.html", time.Time{}, bytes.NewReader(data))
}

// noHeaderWriter lets ServeContent copy the body after we already wrote the
// 404 status.
type noHeaderWriter struct{ http.ResponseWriter }

func (w noHeaderWriter) WriteHeader(int) {}
