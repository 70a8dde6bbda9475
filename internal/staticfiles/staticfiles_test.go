package staticfiles

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/andybalholm/brotli"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		accept  []string // nil: no Accept-Encoding field at all
		br, gz  bool     // which variants exist
		want    string
		comment string
	}{
		{nil, true, true, "", "no field: identity, which every client reads"},
		{[]string{""}, true, true, "", "an empty field accepts identity only"},
		{[]string{"gzip"}, true, true, "gzip", ""},
		{[]string{"gzip, deflate, br, zstd"}, true, true, "br", "a browser's field: the smallest"},
		{[]string{"gzip, deflate, br"}, false, true, "gzip", "brotli not made for this file"},
		{[]string{"br"}, false, true, "", "only brotli wanted, only gzip made"},
		{[]string{"gzip", "br"}, true, true, "br", "the field given twice"},
		{[]string{"br;q=0.5, gzip"}, true, true, "gzip", "a higher q wins over size"},
		{[]string{"br;q=0.5, gzip;q=0.8, identity;q=0.9"}, true, true, "", "identity named with the highest q"},
		{[]string{"gzip;q=0.5"}, true, true, "gzip", "a named coding beats implicit identity"},
		{[]string{"br;q=0, gzip"}, true, true, "gzip", "q=0 refuses brotli"},
		{[]string{"br;q=0.0, gzip;q=0.000"}, true, true, "", "q=0 in every spelling refuses both"},
		{[]string{"gzip;q=0, br;q=0, identity;q=0"}, true, true, "", "everything refused: identity anyway, no 406"},
		{[]string{"*"}, true, true, "br", "* accepts every coding"},
		{[]string{"*;q=0"}, true, true, "", "* refuses every coding: identity anyway"},
		{[]string{"gzip, *;q=0"}, true, true, "gzip", "a named coding beats *"},
		{[]string{"br;q=0, *"}, true, true, "gzip", "* does not override a named q=0"},
		{[]string{"deflate, compress"}, true, true, "", "codings we do not have"},
		{[]string{"x-gzip"}, true, true, "gzip", "x-gzip is gzip (RFC 9110 §8.4.1.3)"},
		{[]string{"GZIP;Q=0.7, Br;q=0.6"}, true, true, "gzip", "names and q are case-insensitive"},
		{[]string{" br ; q=0.9 ,gzip;q=1"}, true, true, "gzip", "spaces around parameters"},
		{[]string{"br;q=1.5, gzip"}, true, true, "gzip", "a malformed q accepts nothing"},
		{[]string{"br;q=abc"}, true, true, "", "a malformed q accepts nothing"},
		{[]string{"br;level=5;q=0.9, gzip;q=0.1"}, true, true, "br", "other parameters are ignored"},
		{[]string{"gzip;q=0.9, br;q=0.9"}, true, true, "br", "a tie goes to the smaller"},
		{[]string{"gzip"}, false, false, "", "nothing made"},
	} {
		if got := Negotiate(tc.accept, tc.br, tc.gz); got != tc.want {
			t.Errorf("Negotiate(%q, br=%v, gz=%v) = %q, want %q (%s)", tc.accept, tc.br, tc.gz, got, tc.want, tc.comment)
		}
	}
}

// page is a compressible HTML page well above MinSize.
var page = []byte("<!doctype html><title>Poll</title>" + strings.Repeat("<p>Poll the job until it is done, honouring Retry-After.</p>\n", 60))

func newSite() fstest.MapFS {
	return fstest.MapFS{
		"index.html":                 {Data: page, ModTime: time.Unix(1e9, 0)},
		"guides/poll/index.html":     {Data: page},
		"404.html":                   {Data: []byte("<!doctype html><title>Not found</title>" + strings.Repeat("<p>No page here.</p>", 80))},
		"assets/site.0123456789.css": {Data: bytes.Repeat([]byte("body{margin:0;color:#111}\n"), 100)},
		"assets/site.abc.css":        {Data: bytes.Repeat([]byte("p{}\n"), 400)},
		"assets/tiny.0123456789.js":  {Data: []byte("void 0")},
		"assets/logo.png":            {Data: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 600)},
		"openapi.yaml":               {Data: bytes.Repeat([]byte("openapi: 3.1.0\n"), 200)},
		"robots.txt":                 {Data: []byte("User-agent: *\n")},
		".accepted-site":             {Data: []byte("marker")},
	}
}

func do(t testing.TB, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// decode undoes the Content-Encoding of an answer.
func decode(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	var rd io.Reader = bytes.NewReader(rec.Body.Bytes())
	switch ce := rec.Header().Get("Content-Encoding"); ce {
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	case "br":
		rd = brotli.NewReader(rd)
	case "":
	default:
		t.Fatalf("Content-Encoding %q", ce)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("decoding %s: %v", rec.Header().Get("Content-Encoding"), err)
	}
	return b
}

func TestServe(t *testing.T) {
	site := newSite()
	h := New(site, Options{})
	for _, tc := range []struct {
		method, path, accept string
		code                 int
		encoding, cache      string
		vary                 bool
		body                 string // file whose bytes the decoded body must be
	}{
		{"GET", "/", "gzip, deflate, br", 200, "br", Revalidate, true, "index.html"},
		{"GET", "/", "gzip", 200, "gzip", Revalidate, true, "index.html"},
		{"GET", "/", "", 200, "", Revalidate, true, "index.html"},
		{"GET", "/", "br;q=0, gzip;q=0", 200, "", Revalidate, true, "index.html"},
		{"GET", "/guides/poll/", "br", 200, "br", Revalidate, true, "guides/poll/index.html"},
		{"HEAD", "/guides/poll/", "br", 200, "br", Revalidate, true, ""},
		{"HEAD", "/guides/poll/", "", 200, "", Revalidate, true, ""},
		{"GET", "/assets/site.0123456789.css", "gzip", 200, "gzip", Immutable, true, "assets/site.0123456789.css"},
		{"GET", "/assets/site.abc.css", "br", 200, "br", Revalidate, true, "assets/site.abc.css"},
		{"GET", "/assets/tiny.0123456789.js", "br", 200, "", Immutable, true, "assets/tiny.0123456789.js"},
		{"GET", "/assets/logo.png", "gzip, br", 200, "", Revalidate, false, "assets/logo.png"},
		{"GET", "/openapi.yaml", "gzip", 200, "gzip", Revalidate, true, "openapi.yaml"},
		{"GET", "/robots.txt", "br", 200, "", Revalidate, true, "robots.txt"},
		{"GET", "/nope", "br", 404, "br", Revalidate, true, "404.html"},
		{"GET", "/nope", "", 404, "", Revalidate, true, "404.html"},
		{"HEAD", "/nope", "gzip", 404, "gzip", Revalidate, true, ""},
		{"GET", "/.accepted-site", "", 404, "", Revalidate, true, "404.html"},
		{"GET", "/assets/", "", 404, "", Revalidate, true, "404.html"},
		{"GET", "/assets", "", 404, "", Revalidate, true, "404.html"},
		{"GET", "/guides/", "gzip", 404, "gzip", Revalidate, true, "404.html"},
	} {
		name := tc.method + " " + tc.path + " (" + tc.accept + ")"
		hdr := []string{}
		if tc.accept != "" {
			hdr = []string{"Accept-Encoding", tc.accept}
		}
		rec := do(t, h, tc.method, tc.path, hdr...)
		res := rec.Result()
		if res.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", name, res.StatusCode, tc.code)
		}
		if got := res.Header.Get("Content-Encoding"); got != tc.encoding {
			t.Errorf("%s: Content-Encoding %q, want %q", name, got, tc.encoding)
		}
		if got := res.Header.Get("Cache-Control"); got != tc.cache {
			t.Errorf("%s: Cache-Control %q, want %q", name, got, tc.cache)
		}
		if got := res.Header.Get("Vary") == "Accept-Encoding"; got != tc.vary {
			t.Errorf("%s: Vary %q, want Accept-Encoding: %v", name, res.Header.Get("Vary"), tc.vary)
		}
		if tc.method == "HEAD" {
			if rec.Body.Len() != 0 {
				t.Errorf("%s: HEAD sent a body of %d bytes", name, rec.Body.Len())
			}
			// The Content-Length is the one a GET would send.
			get := do(t, h, "GET", tc.path, hdr...)
			if cl := res.Header.Get("Content-Length"); cl == "" || cl != strconv.Itoa(get.Body.Len()) {
				t.Errorf("%s: Content-Length %q, the GET sends %d bytes", name, cl, get.Body.Len())
			}
			continue
		}
		if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
			t.Errorf("%s: Content-Length %q for %d bytes", name, cl, rec.Body.Len())
		}
		if got := decode(t, rec); !bytes.Equal(got, site[tc.body].Data) {
			t.Errorf("%s: body is not %s (%d bytes decoded, want %d)", name, tc.body, len(got), len(site[tc.body].Data))
		}
		if tc.encoding != "" && rec.Body.Len() >= len(site[tc.body].Data) {
			t.Errorf("%s: %s body of %d bytes is no smaller than the file's %d", name, tc.encoding, rec.Body.Len(), len(site[tc.body].Data))
		}
		if ct := res.Header.Get("Content-Type"); ct == "" || (strings.HasSuffix(tc.body, ".html") && ct != "text/html; charset=utf-8") {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
}

// TestMethodNotAllowed: only GET and HEAD, on any path.
func TestMethodNotAllowed(t *testing.T) {
	h := New(newSite(), Options{MethodNotAllowed: "405: pages only; the API is under /v1/."})
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "TRACE"} {
		for _, p := range []string{"/", "/assets/site.0123456789.css", "/nope", "/assets/"} {
			rec := do(t, h, m, p, "Accept-Encoding", "br")
			if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(rec.Body.String(), "/v1/") {
				t.Errorf("%s %s: %d, Allow %q, %q; want 405 with Allow: GET, HEAD", m, p, rec.Code, rec.Header().Get("Allow"), rec.Body.String())
			}
			if rec.Header().Get("Content-Encoding") != "" {
				t.Errorf("%s %s: Content-Encoding %q on a 405", m, p, rec.Header().Get("Content-Encoding"))
			}
		}
	}
	if rec := do(t, New(newSite(), Options{}), "POST", "/"); !strings.Contains(rec.Body.String(), "GET and HEAD") {
		t.Errorf("default 405 text %q", rec.Body.String())
	}
}

// TestConditional: each variant has its own ETag; If-None-Match with a
// variant's ETag answers 304 for that variant only.
func TestConditional(t *testing.T) {
	h := New(newSite(), Options{})
	etags := map[string]string{}
	for _, enc := range []string{"br", "gzip", "identity"} {
		rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", enc)
		etag := rec.Header().Get("ETag")
		if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
			t.Fatalf("%s: ETag %q is not a strong ETag", enc, etag)
		}
		for other, e := range etags {
			if e == etag {
				t.Errorf("%s and %s share the ETag %s", enc, other, etag)
			}
		}
		etags[enc] = etag
	}
	for _, enc := range []string{"br", "gzip", "identity"} {
		for _, sent := range []string{"br", "gzip", "identity"} {
			for _, method := range []string{"GET", "HEAD"} {
				rec := do(t, h, method, "/guides/poll/", "Accept-Encoding", enc, "If-None-Match", etags[sent])
				want := 200
				if sent == enc {
					want = 304
				}
				if rec.Code != want {
					t.Errorf("%s %s with If-None-Match of %s: %d, want %d", method, enc, sent, rec.Code, want)
				}
				if rec.Code == 304 {
					if rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "" {
						t.Errorf("%s %s: 304 with a body or Content-Length %q", method, enc, rec.Header().Get("Content-Length"))
					}
					if rec.Header().Get("ETag") != etags[enc] || rec.Header().Get("Vary") != "Accept-Encoding" || rec.Header().Get("Cache-Control") != Revalidate {
						t.Errorf("%s %s: 304 headers %v", method, enc, rec.Header())
					}
				}
			}
		}
	}
	// A list and W/ (weak comparison, RFC 9110 §13.1.2) both match.
	if rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", "br", "If-None-Match", `"x", W/`+etags["br"]); rec.Code != 304 {
		t.Errorf("If-None-Match list with W/: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", "br", "If-None-Match", "*"); rec.Code != 304 {
		t.Errorf("If-None-Match *: %d", rec.Code)
	}
	// If-Match with another variant's ETag fails, with no body.
	if rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", "br", "If-Match", etags["gzip"]); rec.Code != 412 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "" {
		t.Errorf("If-Match of another variant: %d, %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

// TestRange: a Range request is answered from the uncompressed file, whatever
// Accept-Encoding says, so byte offsets mean what the client thinks.
func TestRange(t *testing.T) {
	site := newSite()
	h := New(site, Options{})
	rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", "gzip, br", "Range", "bytes=10-19")
	if rec.Code != 206 || rec.Header().Get("Content-Encoding") != "" || rec.Body.String() != string(page[10:20]) {
		t.Errorf("Range: %d, Content-Encoding %q, %q", rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.String())
	}
	if cr := rec.Header().Get("Content-Range"); cr != "bytes 10-19/"+strconv.Itoa(len(page)) {
		t.Errorf("Content-Range %q", cr)
	}
	if rec.Header().Get("Vary") != "Accept-Encoding" || rec.Header().Get("Content-Length") != "10" {
		t.Errorf("Range headers: %v", rec.Header())
	}
	full := do(t, h, "GET", "/guides/poll/")
	// If-Range with the identity ETag gets the range; with a stale one, the whole file.
	if rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", "br", "Range", "bytes=0-3", "If-Range", full.Header().Get("ETag")); rec.Code != 206 {
		t.Errorf("If-Range current: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/guides/poll/", "Accept-Encoding", "br", "Range", "bytes=0-3", "If-Range", `"old"`); rec.Code != 200 || rec.Body.Len() != len(page) {
		t.Errorf("If-Range stale: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestRedirects: the canonical URLs of http.FileServer.
func TestRedirects(t *testing.T) {
	h := New(newSite(), Options{})
	for _, tc := range []struct{ path, location string }{
		{"/guides/poll", "poll/"},
		{"/guides/poll?x=1", "poll/?x=1"},
		{"/guides/poll/index.html", "./"},
		{"/index.html", "./"},
		{"/robots.txt/", "../robots.txt"},
	} {
		rec := do(t, h, "GET", tc.path)
		if rec.Code != 301 || rec.Header().Get("Location") != tc.location {
			t.Errorf("%s: %d Location %q, want 301 to %q", tc.path, rec.Code, rec.Header().Get("Location"), tc.location)
		}
	}
}

// TestChangedFile: a file rebuilt under a running server is read and
// compressed again, with a new ETag.
func TestChangedFile(t *testing.T) {
	site := newSite()
	h := New(site, Options{})
	before := do(t, h, "GET", "/", "Accept-Encoding", "br")
	site["index.html"] = &fstest.MapFile{Data: append(bytes.Clone(page), "<p>new</p>"...), ModTime: time.Unix(2e9, 0)}
	after := do(t, h, "GET", "/", "Accept-Encoding", "br")
	if before.Header().Get("ETag") == after.Header().Get("ETag") {
		t.Errorf("ETag %s unchanged after a rebuild", after.Header().Get("ETag"))
	}
	if got := decode(t, after); !bytes.Equal(got, site["index.html"].Data) {
		t.Errorf("after a rebuild the old page was sent")
	}
}

func TestNoNotFoundPage(t *testing.T) {
	h := New(fstest.MapFS{"index.html": {Data: []byte("home")}}, Options{})
	rec := do(t, h, "GET", "/nope", "Accept-Encoding", "br")
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "404") || rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("no 404.html: %d %q", rec.Code, rec.Body.String())
	}
}

// BenchmarkRealSite reports what the built site costs a server: the time to
// compress it at start and the memory its variants hold. It runs when
// generated/site exists (make site): go test ./internal/staticfiles -run '^$' -bench RealSite -benchtime 1x
func BenchmarkRealSite(b *testing.B) {
	dir := "../../generated/site"
	if _, err := os.Stat(dir + "/index.html"); err != nil {
		b.Skip("no built site in generated/site (run make site)")
	}
	var h *Handler
	for b.Loop() {
		h = New(os.DirFS(dir), Options{})
	}
	s := h.Stats()
	b.ReportMetric(float64(s.Files), "files")
	b.ReportMetric(float64(s.Original)/1024, "KiB-original")
	b.ReportMetric(float64(s.Gzip)/1024, "KiB-gzip")
	b.ReportMetric(float64(s.Brotli)/1024, "KiB-brotli")
	b.ReportMetric(float64(s.Held)/1024, "KiB-held")
	rec := do(b, h, "GET", "/reference/sandbox/", "Accept-Encoding", "gzip, deflate, br, zstd")
	if rec.Code == 200 && rec.Header().Get("Content-Encoding") != "br" {
		b.Errorf("reference/sandbox/: Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
}
