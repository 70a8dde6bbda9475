package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Check runs every check over a built site and joins what they find.
func Check(s *Site, base string) error {
	var all []string
	all = append(all, CheckHTML(s)...)
	all = append(all, CheckCSP(s)...)
	all = append(all, CheckLinks(s, base)...)
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

var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// CheckHTML reports markup that only parses thanks to the HTML parser's
// error recovery: end tags that do not match, elements never closed,
// duplicate ids, and pages without exactly one <main>, one <h1> and a
// <title>.
func CheckHTML(s *Site) []string {
	var out []string
	for _, name := range s.Pages {
		for _, p := range checkPage(s.Files[name]) {
			out = append(out, name+": "+p)
		}
	}
	return out
}

func checkPage(data []byte) []string {
	var out []string
	z := html.NewTokenizer(bytes.NewReader(data))
	var stack []string
	ids := map[string]bool{}
	count := map[string]int{}
	title := ""
	inTitle := false
	sawDoctype := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				out = append(out, "tokenizer: "+z.Err().Error())
			}
			if len(stack) > 0 {
				out = append(out, "unclosed elements: "+strings.Join(stack, " > "))
			}
			if !sawDoctype {
				out = append(out, "no <!DOCTYPE html>")
			}
			for _, el := range []string{"main", "h1", "html", "head", "body"} {
				if count[el] != 1 {
					out = append(out, fmt.Sprintf("%d <%s> elements, want 1", count[el], el))
				}
			}
			if strings.TrimSpace(title) == "" {
				out = append(out, "empty <title>")
			}
			return out
		case html.DoctypeToken:
			sawDoctype = true
		case html.TextToken:
			if inTitle {
				title += string(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			tn, hasAttr := z.TagName()
			tag := string(tn)
			count[tag]++
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if string(k) == "id" {
					if ids[string(v)] {
						out = append(out, fmt.Sprintf("duplicate id %q", v))
					}
					ids[string(v)] = true
				}
			}
			if tt == html.SelfClosingTagToken || voidElements[tag] {
				continue
			}
			if tag == "title" {
				inTitle = true
			}
			stack = append(stack, tag)
		case html.EndTagToken:
			tn, _ := z.TagName()
			tag := string(tn)
			if tag == "title" {
				inTitle = false
			}
			if len(stack) == 0 || stack[len(stack)-1] != tag {
				out = append(out, fmt.Sprintf("</%s> closes <%s>", tag, strings.Join(stack, " > ")))
				// Recover by popping to the matching element, if any.
				if i := slices.Index(stack, tag); i >= 0 {
					stack = stack[:i]
				}
				continue
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// CheckCSP reports what Content-Security-Policy: default-src 'self' would
// block or what breaks the no-inline rule: style attributes, <style>
// elements, event-handler attributes, scripts without src or with inline
// code, javascript: URLs, and resources from another host.
func CheckCSP(s *Site) []string {
	var out []string
	for _, name := range s.Pages {
		doc, err := html.Parse(bytes.NewReader(s.Files[name]))
		if err != nil {
			out = append(out, name+": "+err.Error())
			continue
		}
		for n := range doc.Descendants() {
			if n.Type != html.ElementNode {
				continue
			}
			where := name + ": <" + n.Data + ">"
			if n.Data == "style" {
				out = append(out, where+" element (inline CSS)")
			}
			if n.Data == "script" {
				if attr(n, "src") == "" {
					out = append(out, where+" without src (inline script)")
				}
				if n.FirstChild != nil {
					out = append(out, where+" has inline content")
				}
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				switch {
				case k == "style":
					out = append(out, where+" style attribute")
				case strings.HasPrefix(k, "on"):
					out = append(out, where+" event-handler attribute "+k)
				case (k == "href" || k == "src" || k == "action" || k == "xlink:href") &&
					strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
					out = append(out, where+" javascript: URL")
				}
			}
			// Resources the browser fetches must come from our own origin.
			if src := resourceURL(n); src != "" {
				u, err := url.Parse(src)
				if err != nil || u.Scheme != "" || u.Host != "" {
					out = append(out, where+" loads "+src+" from another origin")
				}
			}
		}
	}
	return out
}

// resourceURL is the URL an element makes the browser load, if any.
func resourceURL(n *html.Node) string {
	switch n.Data {
	case "script", "img", "iframe", "source", "audio", "video", "embed", "track":
		return attr(n, "src")
	case "link":
		return attr(n, "href")
	case "object":
		return attr(n, "data")
	}
	return ""
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// CheckLinks reports internal links that lead nowhere: every href and src
// (and the search index <meta>) on every page must name a built file, and
// every #fragment an id in that file. base is the URL path the site is
// served under.
func CheckLinks(s *Site, base string) []string {
	ids := map[string]map[string]bool{}
	docs := map[string]*html.Node{}
	for _, name := range s.Pages {
		doc, err := html.Parse(bytes.NewReader(s.Files[name]))
		if err != nil {
			continue // reported by CheckCSP
		}
		docs[name] = doc
		set := map[string]bool{}
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode {
				if id := attr(n, "id"); id != "" {
					set[id] = true
				}
				if n.Data == "a" && attr(n, "name") != "" {
					set[attr(n, "name")] = true
				}
			}
		}
		ids[name] = set
	}
	origin, _ := url.Parse("http://site.invalid")
	var out []string
	for _, name := range s.Pages {
		doc := docs[name]
		if doc == nil {
			continue
		}
		pageURL := origin.ResolveReference(&url.URL{Path: base + strings.TrimSuffix(name, "index.html")})
		for n := range doc.Descendants() {
			if n.Type != html.ElementNode {
				continue
			}
			var refs []string
			for _, a := range n.Attr {
				if a.Key == "href" || a.Key == "src" || a.Key == "action" {
					refs = append(refs, a.Val)
				}
			}
			if n.Data == "meta" && attr(n, "name") == "accepted-search" {
				refs = append(refs, attr(n, "content"))
			}
			for _, ref := range refs {
				if msg := checkRef(s, ids, pageURL, origin, base, name, ref); msg != "" {
					out = append(out, fmt.Sprintf("%s: <%s> %q: %s", name, n.Data, ref, msg))
				}
			}
		}
	}
	return out
}

func checkRef(s *Site, ids map[string]map[string]bool, pageURL, origin *url.URL, base, page, ref string) string {
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
	set, ok := ids[file]
	if !ok {
		return "#" + abs.Fragment + " into a file that is not a page"
	}
	if !set[abs.Fragment] {
		return "no element with id " + abs.Fragment + " in " + file
	}
	return ""
}
