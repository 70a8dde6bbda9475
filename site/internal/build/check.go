package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/html"
)

// Check runs every check over a built site and joins what they find.
func Check(s *Site, base string) error {
	scans := scanAll(s)
	var all []string
	for _, sc := range scans {
		all = append(all, sc.html...)
		all = append(all, sc.csp...)
	}
	all = append(all, checkLinks(s, scans, base)...)
	if len(all) == 0 {
		return nil
	}
	slices.Sort(all)
	const max = 50
	if len(all) > max {
		all = append(all[:max], fmt.Sprintf("… and %d more", len(all)-max))
	}
	return errors.New("checks failed:\n  " + strings.Join(all, "\n  "))
}

// CheckHTML reports markup that only parses thanks to the HTML parser's
// error recovery: end tags that do not match, elements never closed,
// duplicate ids, and pages without exactly one <main>, one <h1> and a
// <title>.
func CheckHTML(s *Site) []string {
	var out []string
	for _, sc := range scanAll(s) {
		out = append(out, sc.html...)
	}
	return out
}

// CheckCSP reports what Content-Security-Policy: default-src 'self' would
// block or what breaks the no-inline rule: style attributes, <style>
// elements, event-handler attributes, scripts without src or with inline
// code, javascript: URLs, and resources from another host.
func CheckCSP(s *Site) []string {
	var out []string
	for _, sc := range scanAll(s) {
		out = append(out, sc.csp...)
	}
	return out
}

// CheckLinks reports internal links that lead nowhere: every href and src
// (and the search index <meta>) on every page must name a built file, and
// every #fragment an id in that file. base is the URL path the site is
// served under.
func CheckLinks(s *Site, base string) []string {
	return checkLinks(s, scanAll(s), base)
}

// pageScan is what one pass of the tokenizer learns about a page.
type pageScan struct {
	name      string
	ids       map[string]bool
	refs      []ref
	html, csp []string
}

type ref struct{ tag, url string }

func scanAll(s *Site) map[string]*pageScan {
	out := make(map[string]*pageScan, len(s.Pages))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for name := range work {
				sc := scanPage(name, s.Files[name])
				mu.Lock()
				out[name] = sc
				mu.Unlock()
			}
		})
	}
	for _, name := range s.Pages {
		work <- name
	}
	close(work)
	wg.Wait()
	return out
}

var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// resourceAttr names the attribute through which an element makes the
// browser load something.
var resourceAttr = map[string]string{
	"script": "src", "img": "src", "iframe": "src", "source": "src", "audio": "src",
	"video": "src", "embed": "src", "track": "src", "link": "href", "object": "data",
}

func scanPage(name string, data []byte) *pageScan {
	sc := &pageScan{name: name, ids: map[string]bool{}}
	htmlErr := func(format string, args ...any) { sc.html = append(sc.html, name+": "+fmt.Sprintf(format, args...)) }
	cspErr := func(format string, args ...any) { sc.csp = append(sc.csp, name+": "+fmt.Sprintf(format, args...)) }
	z := html.NewTokenizer(bytes.NewReader(data))
	var stack []string
	count := map[string]int{}
	var title strings.Builder
	sawDoctype := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				htmlErr("tokenizer: %v", z.Err())
			}
			if len(stack) > 0 {
				htmlErr("unclosed elements: %s", strings.Join(stack, " > "))
			}
			if !sawDoctype {
				htmlErr("no <!DOCTYPE html>")
			}
			for _, el := range []string{"main", "h1", "html", "head", "body", "title"} {
				if count[el] != 1 {
					htmlErr("%d <%s> elements, want 1", count[el], el)
				}
			}
			if strings.TrimSpace(title.String()) == "" {
				htmlErr("empty <title>")
			}
			return sc
		case html.DoctypeToken:
			sawDoctype = true
		case html.TextToken:
			if len(stack) > 0 {
				switch stack[len(stack)-1] {
				case "title":
					title.Write(z.Text())
				case "script":
					if len(bytes.TrimSpace(z.Text())) > 0 {
						cspErr("<script> has inline content")
					}
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			tn, hasAttr := z.TagName()
			tag := string(tn)
			if tag == "title" && slices.Contains(stack, "svg") {
				tag = "svg:title" // an SVG's accessible name, not the page's
			}
			count[tag]++
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				key := strings.ToLower(string(k))
				val := string(v)
				attrs[key] = val
				switch {
				case key == "id":
					if sc.ids[val] {
						htmlErr("duplicate id %q", val)
					}
					sc.ids[val] = true
				case key == "style":
					cspErr("<%s> style attribute", tag)
				case strings.HasPrefix(key, "on"):
					cspErr("<%s> event-handler attribute %s", tag, key)
				}
				if key == "href" || key == "src" || key == "action" || key == "xlink:href" {
					if strings.HasPrefix(strings.ToLower(strings.TrimSpace(val)), "javascript:") {
						cspErr("<%s> javascript: URL", tag)
					} else if key != "xlink:href" {
						sc.refs = append(sc.refs, ref{tag, val})
					}
				}
			}
			if tag == "a" && attrs["name"] != "" {
				sc.ids[attrs["name"]] = true
			}
			if tag == "meta" && attrs["name"] == "accepted-search" {
				sc.refs = append(sc.refs, ref{tag, attrs["content"]})
			}
			if tag == "style" {
				cspErr("<style> element (inline CSS)")
			}
			if tag == "script" && attrs["src"] == "" {
				cspErr("<script> without src (inline script)")
			}
			if a, ok := resourceAttr[tag]; ok && attrs[a] != "" {
				u, err := url.Parse(attrs[a])
				if err != nil || u.Scheme != "" || u.Host != "" {
					cspErr("<%s> loads %s from another origin", tag, attrs[a])
				}
			}
			if tt == html.SelfClosingTagToken || voidElements[tag] {
				continue
			}
			stack = append(stack, tag)
		case html.EndTagToken:
			tn, _ := z.TagName()
			tag := string(tn)
			if tag == "title" && slices.Contains(stack, "svg") {
				tag = "svg:title"
			}
			if len(stack) == 0 || stack[len(stack)-1] != tag {
				htmlErr("</%s> closes <%s>", tag, strings.Join(stack, " > "))
				if i := slices.Index(stack, tag); i >= 0 {
					stack = stack[:i]
				}
				continue
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func checkLinks(s *Site, scans map[string]*pageScan, base string) []string {
	origin, _ := url.Parse("http://site.invalid")
	// Links that start with "/" resolve the same from every page (the
	// sidebar and header repeat them on every page): check each once.
	cache := map[string]string{}
	var out []string
	for _, name := range s.Pages {
		sc := scans[name]
		pageURL := origin.ResolveReference(&url.URL{Path: base + strings.TrimSuffix(name, "index.html")})
		for _, r := range sc.refs {
			msg, ok := "", false
			rooted := strings.HasPrefix(r.url, "/") && !strings.HasPrefix(r.url, "//")
			if rooted {
				msg, ok = cache[r.url]
			}
			if !ok {
				msg = checkRef(s, scans, pageURL, origin, base, r.url)
				if rooted {
					cache[r.url] = msg
				}
			}
			if msg != "" {
				out = append(out, fmt.Sprintf("%s: <%s> %q: %s", name, r.tag, r.url, msg))
			}
		}
	}
	return out
}

func checkRef(s *Site, scans map[string]*pageScan, pageURL, origin *url.URL, base, ref string) string {
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return err.Error()
	}
	if u.Scheme == "mailto" || u.Scheme == "tel" {
		return ""
	}
	abs := pageURL.ResolveReference(u)
	if abs.Host != origin.Host || abs.Scheme != origin.Scheme {
		return "" // another site: not ours to check at build time
	}
	if !strings.HasPrefix(abs.Path, base) {
		return "outside the site's base URL " + base
	}
	file := strings.TrimPrefix(abs.Path, base)
	if file == "" || strings.HasSuffix(file, "/") {
		file += "index.html"
	}
	if _, ok := s.Files[file]; !ok {
		return "no such file " + file
	}
	if abs.Fragment == "" {
		return ""
	}
	target, ok := scans[file]
	if !ok {
		return "#" + abs.Fragment + " into a file that is not a page"
	}
	if !target.ids[abs.Fragment] {
		return "no element with id " + abs.Fragment + " in " + file
	}
	return ""
}
