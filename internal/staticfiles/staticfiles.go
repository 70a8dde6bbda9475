// Package staticfiles serves a built static site from an fs.FS the way a
// production host would, so that what a visitor's browser receives from
// `site serve` or `sandbox serve` is what it would receive in production:
//
//   - GET and HEAD only (405 with Allow: GET, HEAD otherwise), no directory
//     listings (a directory without index.html is not a page), no dot files,
//     and the site's own 404 page for anything else;
//   - text files (HTML, CSS, JS, JSON, YAML, SVG, XML, plain text) above
//     MinSize compressed once, with gzip (best) and brotli (BrotliLevel),
//     and the variant chosen by Accept-Encoding and its q-values, with
//     Vary: Accept-Encoding and a Content-Length and strong ETag of its own;
//     Range requests are answered from the uncompressed form;
//   - Cache-Control: immutable for a year on names that carry a content hash
//     (site.0123abcdef.css, as site/internal/build names its assets), and
//     no-cache, which means revalidate with the ETag, on everything else.
//
// The variants are made when the Handler is created and kept in memory; a
// file that changes on disk afterwards (a rebuild under a running server)
// is noticed by its size and modification time and compressed again on its
// next request.
package staticfiles

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
)

// MinSize is the size below which a file is served as it is: a compressed
// copy would save less than the header lines that announce it cost, and a
// packet or so is sent either way.
const MinSize = 1024

// BrotliLevel is the brotli quality used. The best, 11, makes pages 2-9 %
// smaller than 9 but takes about 16 times as long in pure Go (the 315 KB
// reference/sandbox page: 10.8 KB in 630 ms against 11.8 KB in 38 ms), which
// would hold up the start of a server by seconds for a few hundred bytes a
// page. gzip uses its best level: it costs little more than the default.
const BrotliLevel = 9

// Cache-Control values.
const (
	// Immutable is sent for names that carry a content hash: a new version
	// gets a new name, so a browser may keep this one for a year without
	// asking again.
	Immutable = "public, max-age=31536000, immutable"
	// Revalidate is sent for everything else: a browser may keep a copy but
	// asks (If-None-Match) before each use, and gets a 304 when unchanged.
	Revalidate = "no-cache"
)

// hashedName matches a file name with a content hash before its extension,
// as site/internal/build writes assets: name.0123456789.ext (at least 8 hex
// digits, so "site.abc.css" or "app.cafe.js" are not taken for one).
var hashedName = regexp.MustCompile(`\.[0-9a-f]{8,64}\.[A-Za-z0-9]+$`)

// compressible lists the types worth compressing, by extension, with the
// Content-Type sent for them. It is a table rather than mime.TypeByExtension
// so the answer does not depend on the machine's /etc/mime.types.
var compressible = map[string]string{
	".html": "text/html; charset=utf-8",
	".htm":  "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".json": "application/json",
	".map":  "application/json",
	".yaml": "application/yaml",
	".yml":  "application/yaml",
	".svg":  "image/svg+xml",
	".xml":  "application/xml",
	".txt":  "text/plain; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
}

// Options adjust a Handler.
type Options struct {
	// NotFound names the page answered, with status 404, for a path that is
	// no file; "" means "404.html". Without it, a one-line text is sent.
	NotFound string
	// MethodNotAllowed is the text of the 405 answer; "" means one that
	// says the site answers GET and HEAD only.
	MethodNotAllowed string
}

// Handler serves the files of an fs.FS. Create it with New.
type Handler struct {
	fsys fs.FS
	opts Options

	mu    sync.Mutex
	files map[string]*entry
	// compressors holds *compressor values for reuse.
	compressors sync.Pool
}

// entry is what is known of one file: enough to answer conditional
// requests and to send a compressed variant without reading the file.
type entry struct {
	size    int64
	modTime time.Time
	ctype   string // Content-Type; "" lets http.ServeContent decide
	etag    string // strong ETag of the uncompressed bytes, quoted
	vary    bool   // a compressible type: its answers vary by Accept-Encoding
	gz, br  []byte // compressed variants; nil when not made (small, or no gain)
}

// New returns a Handler over fsys and compresses its text files at once,
// spread over the available CPUs. A file that cannot be read now is
// tried again when it is requested.
func New(fsys fs.FS, opts Options) *Handler {
	if opts.NotFound == "" {
		opts.NotFound = "404.html"
	}
	if opts.MethodNotAllowed == "" {
		opts.MethodNotAllowed = "405 Method Not Allowed: the site answers GET and HEAD only."
	}
	h := &Handler{fsys: fsys, opts: opts, files: map[string]*entry{}}
	h.compressors.New = func() any {
		gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestCompression)
		return &compressor{gz: gz, br: brotli.NewWriterLevel(io.Discard, BrotliLevel)}
	}
	h.precompress()
	return h
}

// precompress reads every file once, in parallel, so the first visitor of
// a page waits for no compressor.
func (h *Handler) precompress() {
	var names []string
	_ = fs.WalkDir(h.fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable directories are reported when requested
		}
		if d.Type().IsRegular() && !hidden(name) {
			names = append(names, name)
		}
		return nil
	})
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(names), 1)) {
		wg.Go(func() {
			for name := range work {
				_, _ = h.lookup(name)
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
}

// Stats reports how many files the Handler knows, how many have compressed
// variants, and the bytes those variants hold in memory.
type Stats struct {
	Files, Compressed int
	Held              int64 // bytes of gzip and brotli variants kept
	Original          int64 // uncompressed size of the files that have variants
	Gzip, Brotli      int64 // their sizes in each coding
}

// Stats returns what the Handler holds.
func (h *Handler) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s Stats
	for _, e := range h.files {
		s.Files++
		if e.gz == nil && e.br == nil {
			continue
		}
		s.Compressed++
		s.Original += e.size
		s.Gzip += int64(len(e.gz))
		s.Brotli += int64(len(e.br))
	}
	s.Held = s.Gzip + s.Brotli
	return s
}

// lookup returns the entry for the regular file name, making it when the
// file is new or has changed since it was last read.
func (h *Handler) lookup(name string) (*entry, error) {
	info, err := fs.Stat(h.fsys, name)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	h.mu.Lock()
	e := h.files[name]
	h.mu.Unlock()
	if e != nil && e.size == info.Size() && e.modTime.Equal(info.ModTime()) {
		return e, nil
	}
	data, err := fs.ReadFile(h.fsys, name)
	if err != nil {
		return nil, err
	}
	e = h.newEntry(name, data, info.ModTime())
	h.mu.Lock()
	h.files[name] = e
	h.mu.Unlock()
	return e, nil
}

func (h *Handler) newEntry(name string, data []byte, modTime time.Time) *entry {
	sum := sha256.Sum256(data)
	e := &entry{
		size:    int64(len(data)),
		modTime: modTime,
		etag:    `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
	}
	ext := strings.ToLower(path.Ext(name))
	if ct, ok := compressible[ext]; ok {
		e.ctype, e.vary = ct, true
	} else if ct := mime.TypeByExtension(ext); ct != "" {
		e.ctype = ct
	}
	if !e.vary || len(data) < MinSize {
		return e
	}
	c := h.compressors.Get().(*compressor)
	defer h.compressors.Put(c)
	c.buf.Reset()
	c.gz.Reset(&c.buf)
	_, _ = c.gz.Write(data)
	_ = c.gz.Close()
	if c.buf.Len() < len(data) {
		e.gz = bytes.Clone(c.buf.Bytes())
	}
	c.buf.Reset()
	c.br.Reset(&c.buf)
	_, _ = c.br.Write(data)
	_ = c.br.Close()
	if c.buf.Len() < len(data) && (e.gz == nil || c.buf.Len() < len(e.gz)) {
		e.br = bytes.Clone(c.buf.Bytes())
	}
	return e
}

// compressor is a gzip and a brotli writer with their output buffer,
// reused: a new brotli writer allocates its hash tables each time, some
// megabytes, which for a whole site would be gigabytes of garbage.
type compressor struct {
	buf bytes.Buffer
	gz  *gzip.Writer
	br  *brotli.Writer
}

// hidden reports whether a path has a segment starting with a dot (the
// build's .accepted-site marker, editor files), except .well-known.
func hidden(name string) bool {
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." && seg != ".well-known" {
			return true
		}
	}
	return false
}

// ServeHTTP answers a request for a file.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, h.opts.MethodNotAllowed+"\n")
		return
	}
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	name := strings.TrimPrefix(path.Clean(upath), "/")
	if name == "" {
		name = "."
	}
	if !fs.ValidPath(name) || hidden(name) {
		h.notFound(w, r)
		return
	}
	// The same canonical URLs as http.FileServer: /dir/index.html is
	// /dir/, a directory ends in a slash and a file does not.
	if strings.HasSuffix(upath, "/index.html") {
		localRedirect(w, r, "./")
		return
	}
	info, err := fs.Stat(h.fsys, name)
	if err != nil {
		h.notFound(w, r)
		return
	}
	if info.IsDir() {
		if _, err := fs.Stat(h.fsys, path.Join(name, "index.html")); err != nil {
			// A directory without an index.html is no page, and is
			// never listed.
			h.notFound(w, r)
			return
		}
		if !strings.HasSuffix(upath, "/") {
			localRedirect(w, r, path.Base(upath)+"/")
			return
		}
		name = path.Join(name, "index.html")
	} else if strings.HasSuffix(upath, "/") {
		localRedirect(w, r, "../"+path.Base(upath))
		return
	}
	e, err := h.lookup(name)
	if err != nil {
		h.notFound(w, r)
		return
	}
	hdr := w.Header()
	if hashedName.MatchString(name) {
		hdr.Set("Cache-Control", Immutable)
	} else {
		hdr.Set("Cache-Control", Revalidate)
	}
	if e.ctype != "" {
		hdr.Set("Content-Type", e.ctype)
	}
	if e.vary {
		hdr.Add("Vary", "Accept-Encoding")
	}
	coding, body := "", []byte(nil)
	if r.Header.Get("Range") == "" {
		coding, body = e.choose(r.Header.Values("Accept-Encoding"))
	}
	if coding != "" {
		// ServeContent checks If-None-Match and If-Match against this
		// ETag, and answers 304 or 412 without a body; a full answer
		// gets its Content-Length from lengthWriter, as ServeContent
		// sets none when a Content-Encoding is set.
		hdr.Set("Content-Encoding", coding)
		hdr.Set("ETag", variantETag(e.etag, coding))
		http.ServeContent(lengthWriter{w, len(body)}, r, name, e.modTime, bytes.NewReader(body))
		return
	}
	hdr.Set("ETag", e.etag)
	f, err := h.fsys.Open(name)
	if err != nil {
		h.notFound(w, r)
		return
	}
	defer f.Close()
	content, ok := f.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
			return
		}
		content = bytes.NewReader(data)
	}
	http.ServeContent(w, r, name, e.modTime, content)
}

// variantETag is the ETag of a compressed variant: the file's own with the
// coding appended, so each variant validates only itself.
func variantETag(etag, coding string) string {
	return strings.TrimSuffix(etag, `"`) + "-" + coding + `"`
}

// choose returns the coding to send and its bytes, or "" for the file as it
// is, for the Accept-Encoding field values of a request.
func (e *entry) choose(accept []string) (string, []byte) {
	if e.gz == nil && e.br == nil {
		return "", nil
	}
	switch Negotiate(accept, e.br != nil, e.gz != nil) {
	case "br":
		return "br", e.br
	case "gzip":
		return "gzip", e.gz
	}
	return "", nil
}

// Negotiate picks the content coding for a response from the
// Accept-Encoding field values of a request (RFC 9110 §12.5.3), among
// brotli and gzip when available and identity: the one with the highest
// q-value above 0, and on a tie the smallest (br, then gzip, then
// identity). It returns "br", "gzip" or "" for identity. A coding the
// client does not list is refused unless "*" accepts it; identity is
// acceptable unless refused by name or by "*;q=0", and when every choice
// is refused identity is sent anyway, as the RFC allows, rather than a 406.
func Negotiate(accept []string, br, gz bool) string {
	if len(accept) == 0 {
		return "" // no preference stated: the form every client can read
	}
	q := map[string]float64{}
	for _, v := range accept {
		for item := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding == "" {
				continue
			}
			if coding == "x-gzip" {
				coding = "gzip"
			}
			weight := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0 // a malformed weight accepts nothing
					}
					weight = f
				}
			}
			if old, seen := q[coding]; !seen || weight > old {
				q[coding] = weight
			}
		}
	}
	weight := func(coding string) float64 {
		if w, ok := q[coding]; ok {
			return w
		}
		if w, ok := q["*"]; ok {
			return w
		}
		if coding == "identity" {
			// Acceptable by default, but below any coding the client
			// names: "gzip;q=0.5" alone still means it wants gzip.
			return 0.0001
		}
		return 0
	}
	best, bestW := "", 0.0
	for _, c := range []struct {
		name string
		have bool
	}{{"br", br}, {"gzip", gz}, {"identity", true}} {
		if w := weight(c.name); c.have && w > bestW {
			best, bestW = c.name, w
		}
	}
	if best == "identity" {
		return ""
	}
	return best
}

// lengthWriter sets the Content-Length of a full answer, which
// http.ServeContent leaves out when Content-Encoding is set.
type lengthWriter struct {
	http.ResponseWriter
	n int
}

func (w lengthWriter) WriteHeader(code int) {
	if code == http.StatusOK {
		w.Header().Set("Content-Length", strconv.Itoa(w.n))
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w lengthWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// notFound answers the 404 page, compressed like any page.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Del("ETag")
	hdr.Del("Content-Encoding")
	hdr.Set("Cache-Control", Revalidate)
	e, err := h.lookup(h.opts.NotFound)
	if err != nil {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "404 page not found\n")
		return
	}
	coding, body := e.choose(r.Header.Values("Accept-Encoding"))
	if coding == "" {
		body, err = fs.ReadFile(h.fsys, h.opts.NotFound)
		if err != nil {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
	} else {
		hdr.Set("Content-Encoding", coding)
	}
	hdr.Set("Content-Type", cmp.Or(e.ctype, "text/html; charset=utf-8"))
	if e.vary {
		hdr.Add("Vary", "Accept-Encoding")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusNotFound)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// localRedirect answers a redirect to a path relative to the request's, as
// http.FileServer does, keeping the query.
func localRedirect(w http.ResponseWriter, r *http.Request, target string) {
	if q := r.URL.RawQuery; q != "" {
		target += "?" + q
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusMovedPermanently)
}
