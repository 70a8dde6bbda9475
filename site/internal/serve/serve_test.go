package serve

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestHandler(t *testing.T) {
	h := Handler(fstest.MapFS{
		"index.html":                 {Data: []byte("home")},
		"guides/poll/index.html":     {Data: []byte("poll")},
		"404.html":                   {Data: []byte("not here")},
		"assets/site.0a1b2c3d4e.css": {Data: []byte("body{}")},
	})
	for _, tc := range []struct {
		path, body, cache string
		code              int
	}{
		{"/", "home", "no-cache", 200},
		{"/guides/poll/", "poll", "no-cache", 200},
		{"/assets/site.0a1b2c3d4e.css", "body{}", "immutable", 200},
		{"/nope/", "not here", "", 404},
		{"/guides/", "not here", "", 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s: %d %q", tc.path, rec.Code, rec.Body.String())
		}
		if rec.Header().Get("Content-Security-Policy") != CSP {
			t.Errorf("%s: no CSP header", tc.path)
		}
		if !strings.Contains(rec.Header().Get("Cache-Control"), tc.cache) {
			t.Errorf("%s: Cache-Control %q", tc.path, rec.Header().Get("Cache-Control"))
		}
	}
}

func TestHandlerConnectSrc(t *testing.T) {
	h := Handler(fstest.MapFS{"index.html": {Data: []byte("home")}}, "http://127.0.0.1:9090")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got, want := rec.Header().Get("Content-Security-Policy"), CSP+"; connect-src 'self' http://127.0.0.1:9090"; got != want {
		t.Errorf("CSP %q, want %q", got, want)
	}
}

// TestHandlerMethods: the site answers GET and HEAD; any other method gets
// 405 with Allow, and nothing is read or written.
func TestHandlerMethods(t *testing.T) {
	h := Handler(fstest.MapFS{"index.html": {Data: []byte("home")}, "404.html": {Data: []byte("not here")}})
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s /: %d", m, rec.Code)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"} {
		for _, p := range []string{"/", "/index.html", "/nope"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, p, strings.NewReader("x")))
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(rec.Body.String(), "GET and HEAD") {
				t.Errorf("%s %s: %d, Allow %q, %q; want 405 with Allow: GET, HEAD", m, p, rec.Code, rec.Header().Get("Allow"), rec.Body.String())
			}
			if rec.Header().Get("Content-Security-Policy") == "" {
				t.Errorf("%s %s: no CSP on the 405", m, p)
			}
		}
	}
}

// TestHandlerNoDirectoryListing: a directory without an index.html is not a
// page: it answers the 404 page, with or without the trailing slash,
// never http.FileServer's listing of its files.
func TestHandlerNoDirectoryListing(t *testing.T) {
	h := Handler(fstest.MapFS{
		"index.html":          {Data: []byte("home")},
		"404.html":            {Data: []byte("not here")},
		"assets/site.abc.css": {Data: []byte("body{}")},
		"assets/app.def.js":   {Data: []byte("x")},
		"guides/a/index.html": {Data: []byte("a")},
	})
	for _, p := range []string{"/assets/", "/assets", "/guides/", "/guides"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound || rec.Body.String() != "not here" {
			t.Errorf("GET %s: %d %q, want the 404 page", p, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "site.abc.css") || strings.Contains(rec.Body.String(), "<pre>") {
			t.Errorf("GET %s listed the directory: %q", p, rec.Body.String())
		}
	}
}

// TestHandlerChunkedRefused sends raw requests over a socket: one with both
// Content-Length and Transfer-Encoding (which net/http would read by the
// chunked coding alone, keeping the connection) gets 400 and the
// connection closed (RFC 9112 §6.1); the request pipelined behind it is
// never answered.
func TestHandlerChunkedRefused(t *testing.T) {
	srv := httptest.NewServer(Handler(fstest.MapFS{"index.html": {Data: []byte("home")}}))
	t.Cleanup(srv.Close)
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !res.Close || !strings.Contains(string(body), "Transfer-Encoding") {
			t.Errorf("%q: %d, Connection %q, %q; want 400 with Connection: close", raw, res.StatusCode, res.Header.Get("Connection"), body)
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Errorf("%q: after the 400 the server sent %q (%v), want the connection closed", raw, rest, err)
		}
		c.Close()
	}
}

// TestHandlerCompressed: pages and assets go out precompressed, with Vary
// and the caching rules of internal/staticfiles, and keep the security
// headers, the 404 page included.
func TestHandlerCompressed(t *testing.T) {
	big := strings.Repeat("<p>Poll the job until it is done.</p>\n", 100)
	h := Handler(fstest.MapFS{
		"index.html":                 {Data: []byte(big)},
		"404.html":                   {Data: []byte(big)},
		"assets/site.0a1b2c3d4e.css": {Data: []byte(strings.Repeat("body{margin:0}\n", 100))},
	})
	for _, tc := range []struct {
		path, cache string
		code        int
	}{
		{"/", "no-cache", 200},
		{"/assets/site.0a1b2c3d4e.css", "public, max-age=31536000, immutable", 200},
		{"/nope", "no-cache", 404},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		hdr := rec.Header()
		if rec.Code != tc.code || hdr.Get("Content-Encoding") != "br" || hdr.Get("Vary") != "Accept-Encoding" || hdr.Get("Cache-Control") != tc.cache {
			t.Errorf("%s: %d, Content-Encoding %q, Vary %q, Cache-Control %q", tc.path, rec.Code, hdr.Get("Content-Encoding"), hdr.Get("Vary"), hdr.Get("Cache-Control"))
		}
		if hdr.Get("Content-Security-Policy") != CSP || hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: security headers %v", tc.path, hdr)
		}
	}
}
