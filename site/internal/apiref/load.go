package apiref

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/accepted-dev/accepted/site/internal/codesamples"
)

// DefaultServer is used for samples when the document names no absolute server.
const DefaultServer = "https://api.example.com"

// methods in the order OpenAPI lists them; path items are read in document
// order, this only says which keys are operations.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type loader struct {
	root         *node
	modelAnchors map[string]string
	schemeAnchor map[string]string
	schemes      map[string]*node
	used         map[string]bool // anchors handed out
	badRefs      []string
	uses         map[string]bool // models referenced by the operation being built
	global       *node           // top-level security
}

// Load parses an OpenAPI 3.x document in JSON or YAML and builds the view
// models. It fails on documents that are not OpenAPI 3 and on local $refs
// that point nowhere; anything else unknown is ignored.
func Load(data []byte) (*Doc, error) {
	root, err := parse(data)
	if err != nil {
		return nil, err
	}
	if !root.isObject() {
		return nil, errors.New("not an OpenAPI document: top level is not an object")
	}
	version := root.str("openapi")
	if !strings.HasPrefix(version, "3.") {
		return nil, fmt.Errorf("not an OpenAPI 3 document (openapi: %q)", version)
	}
	l := &loader{
		root:         root,
		modelAnchors: map[string]string{},
		schemeAnchor: map[string]string{},
		schemes:      map[string]*node{},
		used:         map[string]bool{},
		global:       root.get("security"),
	}
	info := root.get("info")
	doc := &Doc{
		Title:       info.str("title"),
		Version:     info.str("version"),
		Description: info.str("description"),
		OpenAPI:     version,
	}
	for _, s := range root.get("servers").elems() {
		doc.Servers = append(doc.Servers, serverURL(s))
	}

	components := root.get("components")
	components.get("schemas").each(func(name string, _ *node) {
		l.modelAnchors[name] = l.anchor("model-" + slug(name))
	})
	components.get("securitySchemes").each(func(name string, n *node) {
		n = l.resolve(n)
		l.schemes[name] = n
		l.schemeAnchor[name] = l.anchor("security-" + slug(name))
		doc.SecuritySchemes = append(doc.SecuritySchemes, SecurityScheme{
			Name: name, Anchor: l.schemeAnchor[name],
			Type: n.str("type"), Description: n.str("description"),
			Scheme: n.str("scheme"), BearerFormat: n.str("bearerFormat"),
			In: n.str("in"), ParamName: n.str("name"),
			Example: authExample(authFor(n)),
		})
	})

	usedBy := map[string][]string{}
	track := func(op *Operation) {
		for name := range l.uses {
			usedBy[name] = append(usedBy[name], op.Anchor)
		}
		l.uses = nil
	}
	root.get("paths").each(func(path string, item *node) {
		item = l.resolve(item)
		item.each(func(method string, opn *node) {
			if !slices.Contains(methods, method) {
				return
			}
			l.uses = map[string]bool{}
			op := l.operation(KindOperation, method, path, item, opn, "")
			track(&op)
			doc.Operations = append(doc.Operations, op)
		})
	})
	root.get("webhooks").each(func(name string, item *node) {
		item = l.resolve(item)
		item.each(func(method string, opn *node) {
			if !slices.Contains(methods, method) {
				return
			}
			l.uses = map[string]bool{}
			base := "webhook-" + slug(name)
			if n := len(doc.Webhooks); n > 0 && doc.Webhooks[n-1].Name == name {
				base += "-" + method
			}
			op := l.operation(KindWebhook, method, name, item, opn, base)
			track(&op)
			doc.Webhooks = append(doc.Webhooks, Webhook{Name: name, Operation: op})
		})
	})

	components.get("schemas").each(func(name string, n *node) {
		ref := schemaPrefix + strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
		s := l.schema(n, []string{ref}, 0)
		doc.Models = append(doc.Models, Model{
			Name: name, Anchor: l.modelAnchors[name], Description: s.Description, Schema: s,
		})
	})
	// UsedBy points into the final slices, so fill it once they stop growing.
	var all []*Operation
	for i := range doc.Operations {
		all = append(all, &doc.Operations[i])
	}
	for i := range doc.Webhooks {
		all = append(all, &doc.Webhooks[i].Operation)
	}
	for i := range doc.Models {
		for _, op := range all {
			if slices.Contains(usedBy[doc.Models[i].Name], op.Anchor) {
				doc.Models[i].UsedBy = append(doc.Models[i].UsedBy, op)
			}
		}
	}

	l.tags(doc)
	l.followHints(doc)
	if len(l.badRefs) > 0 {
		slices.Sort(l.badRefs)
		return nil, fmt.Errorf("unresolved $ref: %s", strings.Join(slices.Compact(l.badRefs), ", "))
	}
	doc.SetServer("")
	return doc, nil
}

// SetServer regenerates every operation's samples against serverURL; ""
// means the document's first absolute server, or DefaultServer.
func (d *Doc) SetServer(serverURL string) {
	if serverURL == "" {
		serverURL = DefaultServer
		if len(d.Servers) > 0 {
			s := d.Servers[0]
			if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
				serverURL = s
			} else {
				serverURL = DefaultServer + "/" + strings.TrimLeft(s, "/")
			}
		}
	}
	d.server = serverURL
	for i := range d.Operations {
		d.Operations[i].Samples = codesamples.For(d.Operations[i].Request, serverURL)
		d.Operations[i].Follow = codesamples.Follow(d.Operations[i].Request, serverURL)
	}
}

// Server is the URL the samples were last written against (by Load or SetServer).
func (d *Doc) Server() string { return d.server }

func serverURL(s *node) string {
	u := s.str("url")
	s.get("variables").each(func(name string, v *node) {
		u = strings.ReplaceAll(u, "{"+name+"}", v.get("default").text())
	})
	return u
}

func (l *loader) resolveRef(ref string) *node {
	if !strings.HasPrefix(ref, "#") {
		return nil // another file: cannot be read from one []byte
	}
	t := l.root.pointer(ref)
	if t == nil {
		l.badRefs = append(l.badRefs, ref)
	}
	return t
}

// resolve follows $ref chains of non-schema objects (parameters, responses,
// path items …). Siblings of $ref are dropped, as OpenAPI 3.0 says.
func (l *loader) resolve(n *node) *node {
	for i := 0; i < 32 && n.isObject() && n.str("$ref") != ""; i++ {
		n = l.resolveRef(n.str("$ref"))
	}
	if n.isObject() && n.str("$ref") != "" {
		return nil
	}
	return n
}

// resolveWithSummary resolves n but keeps the summary and description set
// beside the $ref (OpenAPI 3.1 allows them to override the target's).
func (l *loader) resolveWithSummary(n *node) (r *node, summary, description string) {
	r = l.resolve(n)
	summary, description = r.str("summary"), r.str("description")
	if n.isObject() && n.str("$ref") != "" {
		if s := n.str("summary"); s != "" {
			summary = s
		}
		if d := n.str("description"); d != "" {
			description = d
		}
	}
	return r, summary, description
}

func (l *loader) noteUse(model string) {
	if l.uses != nil {
		l.uses[model] = true
	}
}

// anchor hands out a unique id based on base.
func (l *loader) anchor(base string) string {
	if base == "" {
		base = "op"
	}
	a := base
	for i := 2; l.used[a]; i++ {
		a = fmt.Sprintf("%s-%d", base, i)
	}
	l.used[a] = true
	return a
}

// slug makes a lower-case, URL-safe id: "createReport" → "create-report",
// "GET /v1/jobs/{id}" → "get-v1-jobs-id".
func slug(s string) string {
	var b strings.Builder
	dash := false
	var prev rune
	for _, r := range s {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev)) && b.Len() > 0 {
				dash = true
			}
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(unicode.ToLower(r))
		default:
			dash = true
		}
		prev = r
	}
	return b.String()
}

func (l *loader) tags(doc *Doc) {
	index := map[string]int{}
	slugs := map[string]bool{}
	add := func(name, description string) {
		if _, ok := index[name]; ok {
			return
		}
		s := slug(name)
		if s == "" {
			s = "tag"
		}
		base := s
		for i := 2; slugs[s]; i++ {
			s = fmt.Sprintf("%s-%d", base, i)
		}
		slugs[s] = true
		index[name] = len(doc.Tags)
		doc.Tags = append(doc.Tags, Tag{Name: name, Slug: s, Description: description})
	}
	for _, t := range l.root.get("tags").elems() {
		add(t.str("name"), t.str("description"))
	}
	untagged := "Operations"
	if len(doc.Tags) > 0 {
		untagged = "Other"
	}
	for i := range doc.Operations {
		op := &doc.Operations[i]
		if op.Tag == "" {
			op.Tag = untagged
		}
		add(op.Tag, "")
		t := &doc.Tags[index[op.Tag]]
		t.Operations = append(t.Operations, op)
	}
	// Declared tags no operation uses would be empty pages.
	doc.Tags = slices.DeleteFunc(doc.Tags, func(t Tag) bool { return len(t.Operations) == 0 })
}
