package refpages

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"

	"github.com/accepted-dev/accepted/site/internal/apiref"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mustDoc(t *testing.T, name string) *apiref.Doc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "apiref", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := apiref.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func mustRender(t *testing.T, ctx context.Context, c templ.Component) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(ctx, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func opByAnchor(t *testing.T, doc *apiref.Doc, anchor string) *apiref.Operation {
	t.Helper()
	for i := range doc.Operations {
		if doc.Operations[i].Anchor == anchor {
			return &doc.Operations[i]
		}
	}
	t.Fatalf("no operation %q", anchor)
	return nil
}

// indent puts one tag per line so golden diffs stay readable.
func indent(s string) string {
	return strings.ReplaceAll(s, "><", ">\n<")
}

func TestOperationGolden(t *testing.T) {
	cases := []struct{ spec, anchor string }{
		{"async.json", "create-report"},
		{"async.json", "get-job"},
		{"async.json", "create-import"},
		{"pets.yaml", "list-pets"},
		{"pets.yaml", "put-pets-pet-id"},
	}
	for _, c := range cases {
		t.Run(c.anchor, func(t *testing.T) {
			doc := mustDoc(t, c.spec)
			got := indent(mustRender(t, context.Background(), Operation(opByAnchor(t, doc, c.anchor))))
			file := filepath.Join("testdata", c.anchor+".golden.html")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run go test -update and review the diff)", c.anchor, file)
			}
		})
	}
}

// pages renders every page of a spec, as the generator would.
func pages(t *testing.T, ctx context.Context, doc *apiref.Doc) map[string]string {
	out := map[string]string{
		"overview": mustRender(t, ctx, Overview(doc)),
		"all":      mustRender(t, ctx, Operations(doc, nil)),
		"webhooks": mustRender(t, ctx, Webhooks(doc)),
		"models":   mustRender(t, ctx, Models(doc)),
	}
	for i := range doc.Tags {
		out["tag "+doc.Tags[i].Slug] = mustRender(t, ctx, Operations(doc, &doc.Tags[i]))
	}
	return out
}

var (
	styleAttr = regexp.MustCompile(`(?i)\sstyle\s*=`)
	onAttr    = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	script    = regexp.MustCompile(`(?i)<script|javascript:`)
)

func TestStrictCSP(t *testing.T) {
	for _, spec := range []string{"async.json", "pets.yaml"} {
		for name, page := range pages(t, context.Background(), mustDoc(t, spec)) {
			for _, re := range []*regexp.Regexp{styleAttr, onAttr, script} {
				if loc := re.FindStringIndex(page); loc != nil {
					t.Errorf("%s %s: %q at %d: %s", spec, name, re, loc[0], page[max(0, loc[0]-80):min(len(page), loc[1]+80)])
				}
			}
		}
	}
}

// TestHTMLWellFormed checks that every element closes where it should, ids
// are unique per page, and every same-page link resolves.
func TestHTMLWellFormed(t *testing.T) {
	void := map[string]bool{"br": true, "hr": true, "img": true, "input": true, "meta": true, "link": true, "wbr": true}
	for _, spec := range []string{"async.json", "pets.yaml"} {
		all := ""
		for name, page := range pages(t, context.Background(), mustDoc(t, spec)) {
			if name != "all" && !strings.HasPrefix(name, "tag ") {
				all += page
			}
			z := html.NewTokenizer(strings.NewReader(page))
			var stack []string
			ids := map[string]bool{}
			var hrefs []string
		loop:
			for {
				tt := z.Next()
				switch tt {
				case html.ErrorToken:
					if z.Err() != io.EOF {
						t.Errorf("%s %s: %v", spec, name, z.Err())
					}
					break loop
				case html.StartTagToken, html.SelfClosingTagToken:
					tn, hasAttr := z.TagName()
					tag := string(tn)
					for hasAttr {
						var k, v []byte
						k, v, hasAttr = z.TagAttr()
						switch string(k) {
						case "id":
							if ids[string(v)] {
								t.Errorf("%s %s: duplicate id %q", spec, name, v)
							}
							ids[string(v)] = true
						case "href":
							hrefs = append(hrefs, string(v))
						}
					}
					if tt == html.StartTagToken && !void[tag] {
						stack = append(stack, tag)
					}
				case html.EndTagToken:
					tn, _ := z.TagName()
					if len(stack) == 0 || stack[len(stack)-1] != string(tn) {
						t.Fatalf("%s %s: </%s> closes %v", spec, name, tn, stack)
					}
					stack = stack[:len(stack)-1]
				}
			}
			if len(stack) > 0 {
				t.Errorf("%s %s: unclosed %v", spec, name, stack)
			}
			if name == "all" {
				for _, h := range hrefs {
					if a, ok := strings.CutPrefix(h, "#"); ok && !ids[a] && !strings.HasPrefix(a, "model-") && !strings.HasPrefix(a, "webhook") && a != "import-complete" {
						t.Errorf("%s: link %s resolves to nothing", spec, h)
					}
				}
			}
		}
		// Overview, webhooks and models link to operations, models and
		// webhooks: with "all" they form a one-page reference.
		all += mustRender(t, context.Background(), Operations(mustDoc(t, spec), nil))
		for _, m := range regexp.MustCompile(`href="#([^"]+)"`).FindAllStringSubmatch(all, -1) {
			if !strings.Contains(all, `id="`+m[1]+`"`) {
				t.Errorf("%s: link #%s resolves to nothing", spec, m[1])
			}
		}
	}
}

func TestRendererHooks(t *testing.T) {
	doc := mustDoc(t, "async.json")
	r := Renderer{
		Markdown: func(s string) templ.Component {
			return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
				_, err := fmt.Fprintf(w, "<div class=\"md\">%s</div>", html.EscapeString(s))
				return err
			})
		},
		Highlight: func(lang, code string) templ.Component {
			return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
				_, err := fmt.Fprintf(w, "<pre class=\"chroma\" data-hl=\"%s\">%s</pre>", lang, html.EscapeString(code))
				return err
			})
		},
		Href: func(anchor string) string { return "/reference/x/#" + anchor },
	}
	op := opByAnchor(t, doc, "create-report")
	out := mustRender(t, context.Background(), r.Operation(op))
	for _, want := range []string{
		`<div class="md">Starts a report job`, `data-hl="bash"`, `data-hl="go"`, `data-hl="json"`,
		`href="/reference/x/#get-job"`, `href="/reference/x/#model-job"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("hooks not used: missing %s", want)
		}
	}
	// The same through the context, for generators that render a layout.
	ctx := WithRenderer(context.Background(), r)
	if out2 := mustRender(t, ctx, Operation(op)); out2 != out {
		t.Error("WithRenderer and Renderer.Operation disagree")
	}
}

func TestOperationEssentials(t *testing.T) {
	doc := mustDoc(t, "async.json")
	out := mustRender(t, context.Background(), Operation(opByAnchor(t, doc, "create-report")))
	for _, want := range []string{
		`<span class="ref-method ref-method-post">POST</span>`, `<code class="ref-path">/v1/reports</code>`,
		`<details class="ref-node">`, `<summary>`, "Location", "Retry-After", `class="ref-follow"`,
		`data-lang="curl"`, `data-lang="javascript"`, `data-lang="python"`, `data-lang="go"`, `data-tabs`,
		`<div class="try-it" data-operation="create-report" data-method="POST" data-path="/v1/reports" data-auth="bearer" data-examples=`,
		`<pre class="ref-try-it-curl" tabindex="0" role="group" aria-label="The request as a curl command"><code>`, `data-flow="{`,
		`<div class="ref-op-grid ref-op-grid-2">`, `<div class="ref-op-main">`, `<div class="ref-op-aside" role="group" tabindex="0" aria-label="Samples and examples: `,
		`Follow the job`, `<div class="tab-panel ref-sample" id="create-report-follow-curl"`,
		`curl -i -X POST`, `Authorization: Bearer $ACCEPTED_KEY`,
		`<span class="ref-status">202</span> Accepted`, "application/problem+json", `<th scope="col">`,
		// Tab lists and copy buttons are in the HTML, so nothing moves when site.js runs.
		`<div class="tab-list" role="tablist" aria-label="Language"><button type="button" role="tab" id="create-report-sample-curl_tab" aria-controls="create-report-sample-curl" aria-selected="true" tabindex="0" data-tab="curl">curl</button>`,
		`<div class="tab-panel ref-sample" id="create-report-sample-curl" data-tab="curl" data-lang="curl"><p class="tab-label">curl</p><div class="copy-over" data-copy-scope><button type="button" class="copy" data-copy>`,
	} {
		if !strings.Contains(out, html.EscapeString(want)) && !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	// Default markdown escapes: a description with markup stays text.
	pets := mustDoc(t, "pets.yaml")
	put := mustRender(t, context.Background(), Operation(opByAnchor(t, pets, "put-pets-pet-id")))
	if strings.Contains(put, "<b>tennis") || !strings.Contains(put, "&lt;b&gt;tennis") {
		t.Error("example text not escaped")
	}
	webhooks := mustRender(t, context.Background(), Webhooks(doc))
	for _, want := range []string{"import.complete", "import.failed", "import.partial", `class="ref-kind">Webhook`} {
		if !strings.Contains(webhooks, want) {
			t.Errorf("webhooks page lacks %s", want)
		}
	}
	if strings.Contains(webhooks, "try-it") {
		t.Error("webhooks get no try-it panel")
	}
	models := mustRender(t, context.Background(), Models(doc))
	if !strings.Contains(models, "Recursive: see") {
		t.Error("models page does not mark the recursive Category")
	}
}

// axe: only the operation is a landmark (a region named by its title), so
// no two "Parameters" or "Responses" share a name; tab panels are divs,
// which may take role="tabpanel" (a figure may not).
func TestLandmarksAndRoles(t *testing.T) {
	for _, spec := range []string{"async.json", "pets.yaml"} {
		doc := mustDoc(t, spec)
		for name, page := range pages(t, context.Background(), doc) {
			if strings.Contains(page, `<figure class="tab-panel`) {
				t.Errorf("%s %s: a tab panel is a figure", spec, name)
			}
			for _, m := range regexp.MustCompile(`<section[^>]*>`).FindAllString(page, -1) {
				if !strings.Contains(m, `class="ref-op `) && !strings.Contains(m, `class="ref-tag"`) && !strings.Contains(m, `class="ref-model"`) &&
					!strings.Contains(m, "ref-index") && !strings.Contains(m, "ref-servers") && !strings.Contains(m, "ref-auth") && !strings.Contains(m, "ref-scheme") {
					t.Errorf("%s %s: unexpected landmark %s", spec, name, m)
				}
			}
		}
	}
}

// The reference pages link the spec downloads the generator passes in.
func TestDownloadMenu(t *testing.T) {
	doc := mustDoc(t, "async.json")
	r := Renderer{Downloads: func() []Download {
		return []Download{{Label: "openapi.json", Href: "/openapi.json", Note: "OpenAPI 3.1, JSON"}, {Label: "async-api.yaml", Href: "/rulesets/async-api.yaml"}}
	}}
	ctx := WithRenderer(context.Background(), r)
	for name, page := range pages(t, ctx, doc) {
		if name == "all" {
			continue
		}
		for _, want := range []string{`<details class="ref-downloads"><summary>Download spec</summary>`, `<a href="/openapi.json" download>openapi.json</a>`, `href="/rulesets/async-api.yaml"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s lacks %s", name, want)
			}
		}
	}
	if page := mustRender(t, context.Background(), Overview(doc)); strings.Contains(page, "ref-downloads") {
		t.Error("a menu without downloads")
	}
}

// A schema with many properties folds them behind a summary.
func TestLongPropertyListsFold(t *testing.T) {
	s := &apiref.Schema{Types: []string{"object"}, Ref: "Big", RefAnchor: "model-big"}
	for i := range maxOpenProps + 1 {
		s.Properties = append(s.Properties, &apiref.Schema{Name: fmt.Sprintf("p%d", i), Types: []string{"string"}})
	}
	out := mustRender(t, context.Background(), members(s))
	for _, want := range []string{`<details class="ref-many"><summary>Show all 9 properties</summary>`, `The whole model: <a class="ref-model-link" href="#model-big">Big</a>`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	s.Properties = s.Properties[:maxOpenProps]
	if out := mustRender(t, context.Background(), members(s)); strings.Contains(out, "ref-many") {
		t.Error("a short list folds")
	}
}

func TestCSSEmbedded(t *testing.T) {
	if !strings.Contains(CSS, ".ref-method-post") {
		t.Fatal("ref.css not embedded")
	}
	// Every ref- class the pages use has a rule, or is a deliberate hook.
	used := map[string]bool{}
	for _, spec := range []string{"async.json", "pets.yaml"} {
		for _, page := range pages(t, context.Background(), mustDoc(t, spec)) {
			for _, m := range regexp.MustCompile(`class="([^"]+)"`).FindAllStringSubmatch(page, -1) {
				for _, c := range strings.Fields(m[1]) {
					if strings.HasPrefix(c, "ref-") {
						used[c] = true
					}
				}
			}
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d ref- classes used", len(used))
	}
}
