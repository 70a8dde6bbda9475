// Package contentcheck holds the checks that tie the guides in content/ to
// the contract in generated/: every operation and webhook of the spec is
// linked from a guide, every error-catalog entry is shown (with its sandbox
// scenario when it has one), the lifecycle flowchart draws every state of the
// spec's Job status enum, and every page has a title and a description.
//
// The build itself already fails on a missing include or a broken link; these
// checks catch the guides falling behind the sandbox, which no link checker
// can see. They read a built site (build.Site) plus the inputs it was built
// from, and return what is missing as plain sentences, so a test can both
// assert that the real site passes and that a broken copy fails.
package contentcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/net/html"

	"github.com/accepted-dev/accepted/site/internal/apiref"
	"github.com/accepted-dev/accepted/site/internal/build"
	"github.com/accepted-dev/accepted/site/internal/content"
)

// LifecyclePage is the built page that must hold the lifecycle flowchart,
// and LifecycleTitle the flowchart's title (its goat title="…").
const (
	LifecyclePage  = "guides/lifecycle/index.html"
	LifecycleTitle = "Job lifecycle"
)

// Inputs are what a site was built from.
type Inputs struct {
	Content   fs.FS
	Generated fs.FS
}

// Run runs every check and returns the problems found, sorted.
func Run(s *build.Site, in Inputs) ([]string, error) {
	spec, err := fs.ReadFile(in.Generated, "openapi.json")
	if err != nil {
		return nil, err
	}
	catalog, err := fs.ReadFile(in.Generated, "errors.json")
	if err != nil {
		return nil, err
	}
	pages, err := content.Load(in.Content)
	if err != nil {
		return nil, err
	}
	var out []string
	ops, err := OperationsLinked(s, spec)
	if err != nil {
		return nil, err
	}
	out = append(out, ops...)
	cat, err := CatalogCovered(s, pages, catalog)
	if err != nil {
		return nil, err
	}
	out = append(out, cat...)
	states, err := LifecycleStates(s, spec)
	if err != nil {
		return nil, err
	}
	out = append(out, states...)
	out = append(out, FrontMatter(pages)...)
	sort.Strings(out)
	return out, nil
}

// guidePages are the built pages written from content/ (guides and FAQ).
func guidePages(s *build.Site) []string {
	var out []string
	for _, p := range s.Pages {
		if strings.HasPrefix(p, "guides/") || strings.HasPrefix(p, "faq/") {
			out = append(out, p)
		}
	}
	return out
}

// scan reads a page's link targets (as "/path/#fragment", resolved against
// the page, base "/") and its element ids.
func scan(page string, data []byte) (links []string, ids map[string]bool) {
	ids = map[string]bool{}
	base := &url.URL{Path: "/" + strings.TrimSuffix(page, "index.html")}
	z := html.NewTokenizer(bytes.NewReader(data))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return links, ids
		case html.StartTagToken, html.SelfClosingTagToken:
			tn, more := z.TagName()
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				switch string(k) {
				case "id":
					ids[string(v)] = true
				case "href":
					if string(tn) != "a" {
						continue
					}
					u, err := url.Parse(string(v))
					if err != nil || u.Scheme != "" || u.Host != "" {
						continue
					}
					r := base.ResolveReference(u)
					links = append(links, r.Path+"#"+r.Fragment)
				}
			}
		}
	}
}

// OperationsLinked reports every operation and webhook of the spec that no
// guide or FAQ page links to (at its anchor on the reference page that holds
// it).
func OperationsLinked(s *build.Site, spec []byte) ([]string, error) {
	doc, err := apiref.Load(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	// Where each anchor lives in the built reference.
	where := map[string]string{}
	for _, p := range s.Pages {
		if !strings.HasPrefix(p, "reference/") {
			continue
		}
		_, ids := scan(p, s.Files[p])
		for id := range ids {
			where[id] = "/" + strings.TrimSuffix(p, "index.html")
		}
	}
	linked := map[string]bool{}
	for _, p := range guidePages(s) {
		links, _ := scan(p, s.Files[p])
		for _, l := range links {
			linked[l] = true
		}
	}
	var out []string
	check := func(what string, op *apiref.Operation) {
		page, ok := where[op.Anchor]
		if !ok {
			out = append(out, fmt.Sprintf("%s: no reference page has the anchor #%s", what, op.Anchor))
			return
		}
		if !linked[page+"#"+op.Anchor] {
			out = append(out, fmt.Sprintf("%s is not linked from any guide (link to %s#%s)", what, page, op.Anchor))
		}
	}
	for _, tag := range doc.Tags {
		for _, op := range tag.Operations {
			check(fmt.Sprintf("operation %s (%s %s)", op.ID, op.Method, op.Path), op)
		}
	}
	for i := range doc.Webhooks {
		check("webhook "+doc.Webhooks[i].Name, &doc.Webhooks[i].Operation)
	}
	return out, nil
}

// problem is the part of an errors.json entry the checks read.
type problem struct {
	Code     string         `json:"code"`
	When     string         `json:"when"`
	Scenario map[string]any `json:"scenario"`
}

// CatalogCovered reports every error-catalog entry that no guide or FAQ page
// links to (/errors/#code), and every entry with a sandbox scenario whose
// scenario no page shows as a "simulate" object a reader can send.
func CatalogCovered(s *build.Site, pages []*content.Page, catalog []byte) ([]string, error) {
	var cat struct {
		Problems []problem `json:"problems"`
	}
	if err := json.Unmarshal(catalog, &cat); err != nil {
		return nil, fmt.Errorf("errors.json: %w", err)
	}
	linked := map[string]bool{}
	for _, p := range guidePages(s) {
		links, _ := scan(p, s.Files[p])
		for _, l := range links {
			if code, ok := strings.CutPrefix(l, "/errors/#"); ok {
				linked[code] = true
			}
		}
	}
	var shown []map[string]any
	for _, p := range pages {
		objs, err := SimulateObjects(p.Source)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.File, err)
		}
		shown = append(shown, objs...)
	}
	errorsPage := string(s.Files["errors/index.html"])
	var out []string
	for _, pr := range cat.Problems {
		if len(pr.Scenario) > 0 && !reproducible(errorsPage, pr.Code) {
			out = append(out, fmt.Sprintf("error %s has a scenario but no try-it panel that reproduces it on /errors/ (give a job-starting operation a request example named %q)", pr.Code, pr.Code))
		}
		if !linked[pr.Code] {
			out = append(out, fmt.Sprintf("error %s (%s) is not linked from any guide (link to /errors/#%s)", pr.Code, pr.When, pr.Code))
		}
		if len(pr.Scenario) == 0 {
			continue
		}
		if !slices.ContainsFunc(shown, func(obj map[string]any) bool { return covers(obj, pr.Scenario) }) {
			b, _ := json.Marshal(pr.Scenario)
			out = append(out, fmt.Sprintf("error %s: no guide shows its scenario %s as a \"simulate\" object", pr.Code, b))
		}
	}
	return out, nil
}

// reproducible reports whether the catalog entry code on the errors page
// holds a try-it panel set to the scenario named after it.
func reproducible(page, code string) bool {
	start := strings.Index(page, `<section class="problem" id="`+code+`"`)
	if start < 0 {
		return false
	}
	entry := page[start:]
	if end := strings.Index(entry, "</section>"); end >= 0 {
		entry = entry[:end]
	}
	return strings.Contains(entry, `class="try-it"`) && strings.Contains(entry, `data-scenario="`+code+`"`)
}

// covers reports whether obj has every field of want, with the same value.
func covers(obj, want map[string]any) bool {
	for k, v := range want {
		if !reflect.DeepEqual(obj[k], v) {
			return false
		}
	}
	return true
}

var simulateRE = regexp.MustCompile(`"simulate"\s*:\s*`)

// SimulateObjects finds every `"simulate": {…}` in a page's Markdown (in
// code blocks and inline code alike) and decodes the objects.
func SimulateObjects(src []byte) ([]map[string]any, error) {
	var out []map[string]any
	for _, loc := range simulateRE.FindAllIndex(src, -1) {
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(src[loc[1]:]))
		if err := dec.Decode(&obj); err != nil {
			line := bytes.Count(src[:loc[0]], []byte("\n")) + 1
			return nil, fmt.Errorf("line %d: a \"simulate\" value that is not a JSON object: %w", line, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

// LifecycleStates reports every value of the Job status enum in the spec that
// the lifecycle flowchart does not draw as a word.
func LifecycleStates(s *build.Site, spec []byte) ([]string, error) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	states := doc.Components.Schemas["Job"].Properties["status"].Enum
	if len(states) == 0 {
		return nil, errors.New("openapi.json: no enum at components.schemas.Job.properties.status")
	}
	page, ok := s.Files[LifecyclePage]
	if !ok {
		return []string{"no lifecycle page " + LifecyclePage}, nil
	}
	lines, found, err := DiagramText(page, LifecycleTitle)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", LifecyclePage, err)
	}
	if !found {
		return []string{fmt.Sprintf("%s has no diagram titled %q", LifecyclePage, LifecycleTitle)}, nil
	}
	words := map[string]bool{}
	for _, l := range lines {
		for _, w := range strings.FieldsFunc(l, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_') }) {
			words[w] = true
		}
	}
	var out []string
	for _, st := range states {
		if !words[st] {
			out = append(out, fmt.Sprintf("the lifecycle flowchart does not show the state %q", st))
		}
	}
	return out, nil
}

// DiagramText finds the inline SVG whose <title> is title and returns its
// text, line by line. goat draws each character as its own <text> element,
// so characters are put back together by row (y), in order of x; a gap wider
// than one character becomes a space.
func DiagramText(page []byte, title string) (lines []string, found bool, err error) {
	type char struct {
		x, y float64
		s    string
	}
	z := html.NewTokenizer(bytes.NewReader(page))
	depth := 0 // inside an <svg>
	var chars []char
	var cur *char
	inTitle, match := false, false
	var titleText strings.Builder
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				return nil, false, z.Err()
			}
			return nil, false, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			tn, more := z.TagName()
			attrs := map[string]string{}
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				attrs[string(k)] = string(v)
			}
			switch string(tn) {
			case "svg":
				if depth == 0 {
					chars, match = nil, false
					titleText.Reset()
				}
				depth++
			case "title":
				inTitle = depth > 0
			case "text":
				if depth > 0 && tt == html.StartTagToken {
					x, _ := strconv.ParseFloat(attrs["x"], 64)
					y, _ := strconv.ParseFloat(attrs["y"], 64)
					cur = &char{x: x, y: y}
				}
			}
		case html.TextToken:
			if inTitle {
				titleText.Write(z.Text())
			} else if cur != nil {
				cur.s += string(z.Text())
			}
		case html.EndTagToken:
			tn, _ := z.TagName()
			switch string(tn) {
			case "title":
				if inTitle && strings.TrimSpace(titleText.String()) == title {
					match = true
				}
				inTitle = false
			case "text":
				if cur != nil {
					chars = append(chars, *cur)
					cur = nil
				}
			case "svg":
				if depth > 0 {
					depth--
				}
				if depth == 0 && match {
					return joinRows(chars, func(c char) (float64, float64, string) { return c.x, c.y, c.s }), true, nil
				}
			}
		}
	}
}

// joinRows rebuilds lines of text from characters placed on a grid.
func joinRows[C any](chars []C, at func(C) (x, y float64, s string)) []string {
	rows := map[float64][]C{}
	var ys []float64
	for _, c := range chars {
		_, y, _ := at(c)
		if _, ok := rows[y]; !ok {
			ys = append(ys, y)
		}
		rows[y] = append(rows[y], c)
	}
	sort.Float64s(ys)
	var out []string
	for _, y := range ys {
		row := rows[y]
		sort.SliceStable(row, func(i, j int) bool {
			xi, _, _ := at(row[i])
			xj, _, _ := at(row[j])
			return xi < xj
		})
		// The grid step is the smallest gap between neighbours.
		step := 0.0
		for i := 1; i < len(row); i++ {
			a, _, _ := at(row[i-1])
			b, _, _ := at(row[i])
			if d := b - a; d > 0 && (step == 0 || d < step) {
				step = d
			}
		}
		var b strings.Builder
		for i, c := range row {
			x, _, s := at(c)
			if i > 0 {
				px, _, _ := at(row[i-1])
				if step > 0 && x-px > step*1.5 {
					b.WriteByte(' ')
				}
			}
			b.WriteString(s)
		}
		out = append(out, b.String())
	}
	return out
}

// FrontMatter reports pages without a title or a description.
func FrontMatter(pages []*content.Page) []string {
	var out []string
	for _, p := range pages {
		if strings.TrimSpace(p.Title) == "" {
			out = append(out, p.File+": no title in the front matter")
		}
		if strings.TrimSpace(p.Description) == "" {
			out = append(out, p.File+": no description in the front matter")
		}
	}
	return out
}
