package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/html"
)

// Check runs every check over a built site and joins what they find.
func Check(s *Site, base string) error {
	html, csp, links := checkSite(s, base)
	return checkError(append(append(html, csp...), links...))
}

// checkError joins what the checks found into one error, or nil.
func checkError(all []string) error {
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
	html, _, _ := checkSite(s, "/")
	return html
}

// CheckCSP reports what Content-Security-Policy: default-src 'self' would
// block or what breaks the no-inline rule: style attributes, <style>
// elements, event-handler attributes, scripts without src or with inline
// code, javascript: URLs, and resources from another host.
func CheckCSP(s *Site) []string {
	_, csp, _ := checkSite(s, "/")
	return csp
}

// CheckLinks reports internal links that lead nowhere: every href and src
// (and the search index <meta>) on every page must name a built file, and
// every #fragment an id in that file. base is the URL path the site is
// served under.
func CheckLinks(s *Site, base string) []string {
	_, _, links := checkSite(s, base)
	return links
}

// checkSite runs the checks over a site held in memory.
func checkSite(s *Site, base string) (html, csp, links []string) {
	c := newChecker(base)
	var wg sync.WaitGroup
	work := make(chan string)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			set := c.newSet()
			for name := range work {
				c.add(name, s.Files[name], set)
			}
		})
	}
	for _, name := range s.Pages {
		work <- name
	}
	close(work)
	wg.Wait()
	exists := func(name string) bool { _, ok := s.Files[name]; return ok }
	read := func(name string) ([]byte, error) { return s.Files[name], nil }
	return c.finish(exists, read)
}

// checker checks pages one at a time, as they are built, and keeps only
// what the link check needs once every file exists: each page's ids and
// the links whose target depends on the page they are on, plus one copy
// of each link that starts with "/" (those resolve the same from every
// page: a sidebar that lists 1,000 pages on each of them is 1,000 links
// to check, not a million to hold). The pages themselves need not stay in
// memory; if a link is broken, finish reads them again to say where.
type checker struct {
	base  string
	mu    sync.Mutex
	pages map[string]*pageScan
	// sets hold the links that start with "/": one set for each goroutine
	// that scans pages, looked up without a lock for every link.
	sets    []linkSet
	renamed map[string]string
}

// linkSet is a set of links that start with "/".
type linkSet map[string]bool

// newSet returns a set of links for one goroutine to pass to add.
func (c *checker) newSet() linkSet {
	set := linkSet{}
	c.mu.Lock()
	c.sets = append(c.sets, set)
	c.mu.Unlock()
	return set
}

// add adds u to the set if it starts with "/", and reports whether it did
// (never, for a nil set).
func (set linkSet) add(u []byte) bool {
	if set == nil || !rooted(u) {
		return false
	}
	if !set[string(u)] {
		set[string(u)] = true
	}
	return true
}

func newChecker(base string) *checker {
	return &checker{base: base, pages: map[string]*pageScan{}, renamed: map[string]string{}}
}

// pageScan is what one pass of the tokenizer learns about a page.
type pageScan struct {
	name      string
	ids       map[string]bool
	refs      []ref
	html, csp []string
}

type ref struct{ tag, url string }

// rooted reports whether a link starts with "/" (and not "//"): it then
// resolves the same from every page.
func rooted[S string | []byte](u S) bool {
	return len(u) > 0 && u[0] == '/' && (len(u) == 1 || u[1] != '/')
}

// add scans the page name. It may be called from several goroutines, each
// with its own set from newSet.
func (c *checker) add(name string, data []byte, set linkSet) {
	sc := scanPage(name, data, set)
	c.mu.Lock()
	c.pages[name] = sc
	c.mu.Unlock()
}

// rename tells the checker that the links to old on the pages it scanned
// were since changed to new (the search index's href, known only once
// every page is built).
func (c *checker) rename(old, new string) {
	c.renamed[old] = new
}

// finish checks the links once every file is built: exists says whether
// the site has a file, read returns a page again (only if a link is
// broken, to report each place it is on).
func (c *checker) finish(exists func(string) bool, read func(string) ([]byte, error)) (html, csp, links []string) {
	names := slices.Sorted(maps.Keys(c.pages))
	for _, name := range names {
		sc := c.pages[name]
		html = append(html, sc.html...)
		csp = append(csp, sc.csp...)
	}
	origin, _ := url.Parse("http://site.invalid")
	root := origin.ResolveReference(&url.URL{Path: c.base})
	cache := map[string]string{}
	broken := false
	all := map[string]bool{}
	for _, set := range c.sets {
		for u := range set {
			if n, ok := c.renamed[u]; ok {
				u = n
			}
			all[u] = true
		}
	}
	for u := range all {
		msg := checkRef(exists, c.pages, root, origin, c.base, u)
		cache[u] = msg
		broken = broken || msg != ""
	}
	for _, name := range names {
		pageURL := origin.ResolveReference(&url.URL{Path: c.base + strings.TrimSuffix(name, "index.html")})
		for _, r := range c.pages[name].refs {
			broken = broken || checkRef(exists, c.pages, pageURL, origin, c.base, r.url) != ""
		}
	}
	if !broken {
		return html, csp, nil
	}
	// Scan the pages again, for every place a broken link is on.
	for _, name := range names {
		data, err := read(name)
		if err != nil {
			links = append(links, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		pageURL := origin.ResolveReference(&url.URL{Path: c.base + strings.TrimSuffix(name, "index.html")})
		for _, r := range scanPage(name, data, nil).refs {
			msg, ok := cache[r.url]
			if !ok {
				msg = checkRef(exists, c.pages, pageURL, origin, c.base, r.url)
			}
			if msg != "" {
				links = append(links, fmt.Sprintf("%s: <%s> %q: %s", name, r.tag, r.url, msg))
			}
		}
	}
	return html, csp, links
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

// scanPage tokenizes a page. The links that start with "/" go into rooted
// rather than the scan's refs, unless rooted is nil.
func scanPage(name string, data []byte, rooted linkSet) *pageScan {
	sc := &pageScan{name: name, ids: map[string]bool{}}
	htmlErr := func(format string, args ...any) { sc.html = append(sc.html, name+": "+fmt.Sprintf(format, args...)) }
	cspErr := func(format string, args ...any) { sc.csp = append(sc.csp, name+": "+fmt.Sprintf(format, args...)) }
	z := html.NewTokenizer(bytes.NewReader(data))
	// Tag and attribute names repeat: each is made a string once.
	names := map[string]string{}
	intern := func(b []byte) string {
		s, ok := names[string(b)]
		if !ok {
			s = string(b)
			names[s] = s
		}
		return s
	}
	attrs := map[string]string{}
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
			tag := intern(tn)
			if tag == "title" && slices.Contains(stack, "svg") {
				tag = "svg:title" // an SVG's accessible name, not the page's
			}
			count[tag]++
			// Only the attributes read below are kept, and a value is made a
			// string only when it is kept: a page is thousands of tags.
			// (The tokenizer gives keys in lower case.)
			clear(attrs)
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "id":
					val := string(v)
					if sc.ids[val] {
						htmlErr("duplicate id %q", val)
					}
					sc.ids[val] = true
				case "style":
					cspErr("<%s> style attribute", tag)
				case "name", "content", "src", "href", "data":
					attrs[intern(k)] = string(v)
				default:
					if bytes.HasPrefix(k, []byte("on")) {
						cspErr("<%s> event-handler attribute %s", tag, k)
					}
				}
				if key := string(k); key == "href" || key == "src" || key == "action" || key == "xlink:href" {
					if t := bytes.TrimSpace(v); len(t) >= len("javascript:") && bytes.EqualFold(t[:len("javascript:")], []byte("javascript:")) {
						cspErr("<%s> javascript: URL", tag)
					} else if key != "xlink:href" && !rooted.add(v) {
						sc.refs = append(sc.refs, ref{tag, string(v)})
					}
				}
			}
			if tag == "a" && attrs["name"] != "" {
				sc.ids[attrs["name"]] = true
			}
			if tag == "meta" && attrs["name"] == "accepted-search" && !rooted.add([]byte(attrs["content"])) {
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
			tag := intern(tn)
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

func checkRef(exists func(string) bool, scans map[string]*pageScan, pageURL, origin *url.URL, base, ref string) string {
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
	if !exists(file) {
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
