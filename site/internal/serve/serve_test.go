package serve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	h := Handler(fstest.MapFS{
		"index.html":             {Data: []byte("home")},
		"guides/poll/index.html": {Data: []byte("poll")},
		"404.html":               {Data: []byte("not here")},
		"assets/site.abc.css":    {Data: []byte("body{}")},
	})
	for _, tc := range []struct {
		path, body, cache string
		code              int
	}{
		{"/", "home", "no-cache", 200},
		{"/guides/poll/", "poll", "no-cache", 200},
		{"/assets/site.abc.css", "body{}", "immutable", 200},
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
