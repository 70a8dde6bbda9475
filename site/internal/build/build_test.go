package build

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/net/html"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/* from the current output")

// testConfig is the test site under testdata/site.
func testConfig(t testing.TB) Config {
	t.Helper()
	root := os.DirFS("testdata/site")
	sub := func(dir string) fs.FS {
		f, err := fs.Sub(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	return Config{Content: sub("content"), Generated: sub("generated"), Examples: sub("examples"), SandboxURL: "http://127.0.0.1:8080"}
}

func mustBuild(t testing.TB, cfg Config) *Site {
	t.Helper()
	s, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildTestSite(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	for _, want := range []string{
		"index.html", "guides/index.html", "guides/poll/index.html", "guides/webhooks/index.html",
		"faq/index.html", "faq/why-202/index.html", "errors/index.html", "reference/index.html",
		"404.html", "sitemap.xml", "robots.txt",
	} {
		if _, ok := s.Files[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	var hashed int
	for name := range s.Files {
		if strings.HasPrefix(name, "assets/") {
			hashed++
			if !regexp.MustCompile(`^assets/[a-z-]+\.[0-9a-f]{10}\.(css|js|svg|json)$`).MatchString(name) {
				t.Errorf("asset %s has no content hash in its name", name)
			}
		}
	}
	if hashed != 7 {
		t.Errorf("%d assets, want 7", hashed)
	}
	sm := string(s.Files["sitemap.xml"])
	if !strings.Contains(sm, "<loc>http://localhost:8080/guides/poll/</loc>") || strings.Contains(sm, "404") {
		t.Errorf("sitemap:\n%s", sm)
	}
}

// TestChecksPassOnTestSite runs the link checker, the HTML checker and the
// CSP checker over the whole built test site (Build runs them too; this
// names them).
func TestChecksPassOnTestSite(t *testing.T) {
	for _, base := range []string{"/", "/docs/"} {
		cfg := testConfig(t)
		cfg.BaseURL = base
		s := mustBuild(t, cfg)
		if p := CheckLinks(s, base); len(p) > 0 {
			t.Errorf("base %s: links: %v", base, p)
		}
		if p := CheckHTML(s); len(p) > 0 {
			t.Errorf("base %s: html: %v", base, p)
		}
		if p := CheckCSP(s); len(p) > 0 {
			t.Errorf("base %s: csp: %v", base, p)
		}
		for _, name := range s.Pages {
			if _, err := html.Parse(bytes.NewReader(s.Files[name])); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

func TestCSPRulesOnEveryPage(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>`)
	for _, name := range s.Pages {
		page := string(s.Files[name])
		if strings.Contains(page, "style=") || strings.Contains(page, "<style") {
			t.Errorf("%s: inline style", name)
		}
		for _, tag := range inlineScript.FindAllString(page, -1) {
			if !strings.Contains(tag, " src=") {
				t.Errorf("%s: inline script %s", name, tag)
			}
		}
		if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
			t.Errorf("%s: event-handler attribute", name)
		}
		if strings.Contains(page, `src="http`) || strings.Contains(page, `src="//`) {
			t.Errorf("%s: loads from another host", name)
		}
		if !strings.Contains(page, `<meta name="accepted-sandbox" content="http://127.0.0.1:8080">`) {
			t.Errorf("%s: no sandbox meta", name)
		}
	}
}

func TestCheckersCatchProblems(t *testing.T) {
	page := func(body string) []byte {
		return []byte(`<!DOCTYPE html><html lang="en"><head><title>x</title></head><body><main><h1 id="t">x</h1>` + body + `</main></body></html>`)
	}
	s := &Site{Files: map[string][]byte{
		"index.html":   page(`<a href="/a/#nope">a</a><a href="/missing/">m</a><a href="#t">ok</a><a href="https://example.com/">ext</a>`),
		"a/index.html": page(`<p style="color:red" onclick="x()">x</p><script>alert(1)</script><script src="https://cdn.example/x.js"></script><a href="javascript:alert(1)">j</a>`),
		"b/index.html": []byte(`<!DOCTYPE html><html><head><title></title></head><body><main><h1 id="d">x</h1><h1 id="d">y</h1><div></span></main></body></html>`),
	}, Pages: []string{"a/index.html", "b/index.html", "index.html"}}
	links := strings.Join(CheckLinks(s, "/"), "\n")
	for _, want := range []string{"no element with id nope in a/index.html", "no such file missing/index.html"} {
		if !strings.Contains(links, want) {
			t.Errorf("link checker missed %q:\n%s", want, links)
		}
	}
	if strings.Contains(links, "example.com") || strings.Contains(links, `"#t"`) {
		t.Errorf("link checker flagged a good link:\n%s", links)
	}
	csp := strings.Join(CheckCSP(s), "\n")
	for _, want := range []string{"style attribute", "event-handler attribute onclick", "without src", "from another origin", "javascript: URL"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP checker missed %q:\n%s", want, csp)
		}
	}
	h := strings.Join(CheckHTML(s), "\n")
	for _, want := range []string{`duplicate id "d"`, "</span> closes", "2 <h1> elements", "empty <title>"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML checker missed %q:\n%s", want, h)
		}
	}
}

// overlay returns the test site with some content files replaced or added.
func overlay(t *testing.T, files map[string]string) Config {
	t.Helper()
	cfg := testConfig(t)
	m := fstest.MapFS{}
	if err := fs.WalkDir(cfg.Content, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(cfg.Content, p)
		m[p] = &fstest.MapFile{Data: data}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: []byte(data)}
	}
	cfg.Content = m
	return cfg
}

func TestBuildFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"missing include file": {map[string]string{"guides/x.md": "---\ntitle: X\n---\n\nText.\n\n```go include=examples/go/nope.go#loop\n```\n"},
			`guides/x.md:7: include "examples/go/nope.go#loop": file examples/go/nope.go does not exist`},
		"missing region": {map[string]string{"guides/x.md": "---\ntitle: X\n---\n```go include=examples/go/poll/main.go#nope\n```\n"},
			`guides/x.md:4: include "examples/go/poll/main.go#nope": region "nope" not found`},
		"broken md link": {map[string]string{"guides/x.md": "---\ntitle: X\n---\n\n[x](nope.md)\n"},
			`guides/x.md:5: link "nope.md": no page guides/nope.md in content`},
		"broken anchor": {map[string]string{"guides/x.md": "---\ntitle: X\n---\n\n[x](poll.md#no-such-heading)\n"},
			`guides/x/index.html: <a> "/guides/poll/#no-such-heading": no element with id no-such-heading`},
		"broken absolute link": {map[string]string{"guides/x.md": "---\ntitle: X\n---\n\n[x](/nowhere/)\n"},
			`no such file nowhere/index.html`},
		"bad front matter": {map[string]string{"guides/x.md": "---\ntitle: X\nsectoin: y\n---\n"},
			`guides/x.md: front matter`},
	} {
		cfg := overlay(t, tc.files)
		_, err := Build(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v\nwant it to contain %s", name, err, tc.want)
		}
		// Written page by page, the site fails the same way.
		cfg.Out = filepath.Join(t.TempDir(), "site")
		if _, err2 := Build(context.Background(), cfg); fmt.Sprint(err2) != fmt.Sprint(err) {
			t.Errorf("%s: with Out: got %v\nwant %v", name, err2, err)
		}
	}
}

// TestBuildToDirectory: with Config.Out, each page is written as it
// renders; the files are those an in-memory build holds, byte for byte.
func TestBuildToDirectory(t *testing.T) {
	for _, base := range []string{"/", "/docs/"} {
		cfg := testConfig(t)
		cfg.BaseURL = base
		want := mustBuild(t, cfg)
		parent := t.TempDir()
		cfg.Out = filepath.Join(parent, "site")
		for range 2 { // the second build replaces the first
			got := mustBuild(t, cfg)
			if got.Files != nil || strings.Join(got.Pages, " ") != strings.Join(want.Pages, " ") {
				t.Errorf("base %s: pages %v, want %v and no Files", base, got.Pages, want.Pages)
			}
			files := map[string][]byte{}
			if err := filepath.WalkDir(cfg.Out, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(cfg.Out, p)
				data, err := os.ReadFile(p)
				files[filepath.ToSlash(rel)] = data
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if _, ok := files[markerFile]; !ok {
				t.Errorf("base %s: no %s", base, markerFile)
			}
			delete(files, markerFile)
			if len(files) != len(want.Files) {
				t.Errorf("base %s: %d files written, want %d", base, len(files), len(want.Files))
			}
			for name, data := range want.Files {
				if !bytes.Equal(files[name], data) {
					t.Errorf("base %s: %s differs from the in-memory build", base, name)
				}
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 1 {
				t.Errorf("base %s: %d entries beside the site, want it alone", base, len(entries))
			}
		}
	}
}

// TestFailedBuildKeepsDirectory: a build that fails leaves Config.Out as
// it was, and a directory the tool did not build is refused before any work.
func TestFailedBuildKeepsDirectory(t *testing.T) {
	parent := t.TempDir()
	cfg := testConfig(t)
	cfg.Out = filepath.Join(parent, "site")
	mustBuild(t, cfg)
	before, err := os.ReadFile(filepath.Join(cfg.Out, "guides", "poll", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	bad := overlay(t, map[string]string{"guides/x.md": "---\ntitle: X\n---\n\n[x](/nowhere/)\n"})
	bad.Out = cfg.Out
	if _, err := Build(context.Background(), bad); err == nil {
		t.Fatal("a broken link did not fail the build")
	}
	after, err := os.ReadFile(filepath.Join(cfg.Out, "guides", "poll", "index.html"))
	if err != nil || !bytes.Equal(after, before) {
		t.Errorf("the failed build changed the site: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "guides", "x", "index.html")); err == nil {
		t.Error("the failed build's page is in the site")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("%d entries beside the site after a failed build, want it alone", len(entries))
	}

	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Out = foreign
	if _, err := Build(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("a directory the tool did not build: got %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(foreign, "precious.txt")); err != nil || string(data) != "x" {
		t.Error("the foreign directory was touched")
	}
}

// TestRulesetsPublished: Config.Rulesets is copied byte for byte under
// rulesets/, so a ruleset's functions sit beside it as Spectral expects,
// and a page's link to a download is checked like any other link.
func TestRulesetsPublished(t *testing.T) {
	rulesets := fstest.MapFS{
		"async-api.yaml":             {Data: []byte("functions: [statusMonitor]\nrules: {}\n")},
		"functions/statusMonitor.js": {Data: []byte("export default () => [];\n")},
		"functions/lib/oas.js":       {Data: []byte("export const x = 1;\n")},
	}
	cfg := overlay(t, map[string]string{"guides/lint.md": "---\ntitle: Lint\n---\n\nGet [the ruleset](/rulesets/async-api.yaml).\n"})
	cfg.Rulesets = rulesets
	for _, base := range []string{"/", "/docs/"} {
		cfg.BaseURL = base
		s := mustBuild(t, cfg)
		for name, f := range rulesets {
			if got := s.Files["rulesets/"+name]; !bytes.Equal(got, f.Data) {
				t.Errorf("base %s: rulesets/%s = %q, want %q", base, name, got, f.Data)
			}
		}
		if page := string(s.Files["guides/lint/index.html"]); !strings.Contains(page, `href="`+base+`rulesets/async-api.yaml"`) {
			t.Errorf("base %s: no link to the ruleset in the page", base)
		}
	}

	cfg.BaseURL = "/"
	cfg.Rulesets = nil
	if _, err := Build(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no such file rulesets/async-api.yaml") {
		t.Errorf("a link to a ruleset that is not published: got %v", err)
	}
	cfg.Rulesets = os.DirFS(filepath.Join(t.TempDir(), "missing"))
	if _, err := Build(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no such file rulesets/async-api.yaml") {
		t.Errorf("a rulesets folder that does not exist: got %v, want only the broken link reported", err)
	}
}

func TestSafeModeInBuiltPage(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	page := string(s.Files["guides/poll/index.html"])
	if strings.Contains(page, "alert(") && strings.Contains(page, "<script>") || strings.Contains(page, `href="javascript:`) {
		t.Errorf("raw HTML or javascript: link survived")
	}
	if !strings.Contains(page, "A bad link") {
		t.Error("the text of the dropped link is gone")
	}
}

func TestErrorAnchorsMatchProblemTypes(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	page := string(s.Files["errors/index.html"])
	for _, code := range []string{"validation_failed", "job_stalled"} {
		if !strings.Contains(page, `<section class="problem" id="`+code+`"`) {
			t.Errorf("no entry with id %s", code)
		}
	}
	if !strings.Contains(page, `<code>errors</code>`) {
		t.Error("Markdown in descriptions not rendered")
	}
	if !strings.Contains(page, "stall") {
		t.Error("scenario missing")
	}
}

var assetHash = regexp.MustCompile(`\.[0-9a-f]{10}\.`)

func TestGolden(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	for golden, page := range map[string]string{
		"guide.html":     "guides/poll/index.html",
		"reference.html": "reference/reports/index.html",
		"errors.html":    "errors/index.html",
	} {
		// Asset hashes change with any CSS or JS edit; the golden files are
		// about the page's markup.
		got := assetHash.ReplaceAll(s.Files[page], []byte(".HASH."))
		path := filepath.Join("testdata", "golden", golden)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./site/internal/build -run TestGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; if the change is intended, run go test ./site/internal/build -run TestGolden -update and review the diff", page, path)
		}
	}
}

func TestWriteRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Site{Files: map[string][]byte{"index.html": []byte("x")}}
	if err := s.Write(dir); err == nil {
		t.Fatal("Write emptied a directory it did not create")
	}
	out := filepath.Join(t.TempDir(), "site")
	if err := s.Write(out); err != nil {
		t.Fatal(err)
	}
	s2 := &Site{Files: map[string][]byte{"other.html": []byte("y")}}
	if err := s2.Write(out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "index.html")); err == nil {
		t.Error("stale file kept after rebuild")
	}
}

// pageWeights returns, per page, the gzip -9 size of the page plus every
// stylesheet and script it references (the search index is fetched only on
// use and is reported separately).
func pageWeights(t testing.TB, s *Site) (map[string]int, int) {
	t.Helper()
	gz := func(b []byte) int {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Len()
	}
	asset := regexp.MustCompile(`(?:src|href)="/(assets/[^"]+\.(?:css|js))"`)
	out := map[string]int{}
	for _, name := range s.Pages {
		total := gz(s.Files[name])
		for _, m := range asset.FindAllStringSubmatch(string(s.Files[name]), -1) {
			total += gz(s.Files[m[1]])
		}
		out[name] = total
	}
	index := 0
	for name, data := range s.Files {
		if strings.HasPrefix(name, "assets/search-index.") {
			index = gz(data)
		}
	}
	return out, index
}

func reportWeights(t testing.TB, s *Site) (string, int) {
	weights, index := pageWeights(t, s)
	heaviest, max := "", 0
	for name, w := range weights {
		if w > max {
			heaviest, max = name, w
		}
	}
	t.Logf("heaviest page %s: %d bytes gzipped with its CSS and JS (search index, fetched on first use: %d bytes gzipped)", heaviest, max, index)
	return heaviest, max
}

func TestPageWeight(t *testing.T) {
	s := mustBuild(t, testConfig(t))
	_, max := reportWeights(t, s)
	const budget = 60_000
	if max > budget {
		t.Errorf("heaviest page is %d bytes gzipped, over the %d budget", max, budget)
	}
}

// TestRealSiteWeight builds the repository's own site (content/, generated/,
// examples/) and reports the heaviest page; go test -v -run RealSiteWeight.
func TestRealSiteWeight(t *testing.T) {
	cfg, ok := realConfig(t)
	if !ok {
		t.Skip("no content/index.md at the module root")
	}
	reportWeights(t, mustBuild(t, cfg))
}

func realConfig(t testing.TB) (Config, bool) {
	root := filepath.Join("..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "content", "index.md")); err != nil {
		return Config{}, false
	}
	return Config{
		Content:   os.DirFS(filepath.Join(root, "content")),
		Generated: os.DirFS(filepath.Join(root, "generated")),
		Examples:  os.DirFS(filepath.Join(root, "examples")),
		Rulesets:  os.DirFS(filepath.Join(root, "rulesets")),
	}, true
}

func BenchmarkBuildRealSite(b *testing.B) {
	cfg, ok := realConfig(b)
	if !ok {
		b.Skip("no content/index.md at the module root")
	}
	for b.Loop() {
		mustBuild(b, cfg)
	}
}

func BenchmarkBuild1000Pages(b *testing.B) {
	cfg := testConfig(b)
	m := fstest.MapFS{"index.md": {Data: []byte("---\ntitle: Home\n---\nHello.\n")}}
	body, err := fs.ReadFile(cfg.Content, "guides/poll.md")
	if err != nil {
		b.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(body), "\n---\n")
	rest = strings.ReplaceAll(rest, "webhooks.md#verify", "p0001.md")
	for i := range 1000 {
		m[fmt.Sprintf("guides/p%04d.md", i)] = &fstest.MapFile{Data: fmt.Appendf(nil, "---\ntitle: Page %d\ndescription: Generated page %d.\norder: %d\n---\n%s", i, i, i, rest)}
	}
	cfg.Content = m
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			s := mustBuild(b, cfg)
			if len(s.Pages) < 1000 {
				b.Fatalf("%d pages", len(s.Pages))
			}
		}
	})
	// What go run ./site build does: each page written as it renders.
	b.Run("out", func(b *testing.B) {
		cfg := cfg
		cfg.Out = filepath.Join(b.TempDir(), "site")
		for b.Loop() {
			s := mustBuild(b, cfg)
			if len(s.Pages) < 1000 {
				b.Fatalf("%d pages", len(s.Pages))
			}
		}
	})
}
