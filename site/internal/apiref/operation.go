package apiref

import (
	"net/url"
	"slices"
	"strings"

	"github.com/accepted-dev/accepted/site/internal/codesamples"
)

// operation builds one operation. anchorBase, when set, is used for
// operations without an operationId (webhooks and callbacks pass one).
func (l *loader) operation(kind Kind, method, path string, item, n *node, anchorBase string) Operation {
	op := Operation{
		ID:          n.str("operationId"),
		Kind:        kind,
		Method:      strings.ToUpper(method),
		Path:        path,
		Summary:     firstString(n.str("summary"), item.str("summary")),
		Description: firstString(n.str("description"), item.str("description")),
		Deprecated:  n.boolean("deprecated"),
	}
	if tags := n.get("tags").elems(); len(tags) > 0 {
		op.Tag = tags[0].scalar
	}
	switch {
	case op.ID != "":
		op.Anchor = l.anchor(slug(op.ID))
	case anchorBase != "":
		op.Anchor = l.anchor(anchorBase)
	default:
		op.Anchor = l.anchor(slug(method + " " + path))
	}

	// Path-level parameters apply unless the operation redefines them.
	// Each parameter keeps the description set beside its $ref, if any.
	type param struct {
		n    *node
		desc string
	}
	var params []param
	seen := map[string]bool{}
	for _, p := range n.get("parameters").elems() {
		if p, _, desc := l.resolveWithSummary(p); p != nil {
			seen[p.str("in")+"\x00"+p.str("name")] = true
			params = append(params, param{p, desc})
		}
	}
	var inherited []param
	for _, p := range item.get("parameters").elems() {
		if p, _, desc := l.resolveWithSummary(p); p != nil && !seen[p.str("in")+"\x00"+p.str("name")] {
			inherited = append(inherited, param{p, desc})
		}
	}
	for _, p := range append(inherited, params...) {
		op.Params = append(op.Params, l.param(p.n, p.desc))
	}
	// Path parameters first, in the order they appear in the path.
	slices.SortStableFunc(op.Params, func(a, b Param) int { return inRank(a.In) - inRank(b.In) })

	if rb := n.get("requestBody"); rb != nil {
		if rb, _, desc := l.resolveWithSummary(rb); rb != nil {
			op.Body = &Body{Description: desc, Required: rb.boolean("required"),
				Content: l.content(rb.get("content"), toServer)}
		}
	}
	n.get("responses").each(func(status string, r *node) {
		r, _, desc := l.resolveWithSummary(r)
		if r == nil {
			return
		}
		resp := Response{
			Status: strings.ToUpper(status), Description: desc,
			Anchor:  l.anchor(op.Anchor + "-" + slug(status)),
			Content: l.content(r.get("content"), toClient),
		}
		r.get("headers").each(func(name string, h *node) {
			h, _, hdesc := l.resolveWithSummary(h)
			if h == nil {
				return
			}
			s := l.paramSchema(h)
			resp.Headers = append(resp.Headers, Header{
				Name: name, Description: firstString(hdesc, s.Description), Required: h.boolean("required"),
				Deprecated: h.boolean("deprecated"), Schema: s,
				Examples: l.examples(h, s, false, false),
			})
		})
		r.get("links").each(func(name string, ln *node) {
			ln, _, ldesc := l.resolveWithSummary(ln)
			if ln != nil {
				resp.Links = append(resp.Links, Link{Name: name, Description: ldesc, OperationID: ln.str("operationId")})
			}
		})
		op.Responses = append(op.Responses, resp)
	})
	n.get("callbacks").each(func(name string, cb *node) {
		cb = l.resolve(cb)
		cb.each(func(expr string, cbItem *node) {
			cbItem = l.resolve(cbItem)
			c := Callback{Name: name, Expression: expr}
			cbItem.each(func(m string, cbOp *node) {
				if slices.Contains(methods, m) {
					base := op.Anchor + "-callback-" + slug(name) + "-" + m
					c.Operations = append(c.Operations, l.operation(KindCallback, m, expr, cbItem, cbOp, base))
				}
			})
			op.Callbacks = append(op.Callbacks, c)
		})
	})

	security := l.global
	if s := n.get("security"); s != nil {
		security = s
	}
	for _, req := range security.elems() {
		var names []string
		req.each(func(name string, scopes *node) {
			label := name
			var sc []string
			for _, s := range scopes.elems() {
				sc = append(sc, s.scalar)
			}
			if len(sc) > 0 {
				label += " (" + strings.Join(sc, ", ") + ")"
			}
			names = append(names, label)
		})
		if len(names) == 0 { // {} means "or no authentication"
			names = []string{"none"}
		}
		op.Security = append(op.Security, strings.Join(names, " + "))
	}
	if kind == KindOperation {
		op.Request = l.request(&op, security)
	}
	return op
}

func inRank(in string) int {
	switch in {
	case "path":
		return 0
	case "query":
		return 1
	case "header":
		return 2
	}
	return 3
}

func firstString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// paramSchema is a parameter's or header's schema, from schema or content.
func (l *loader) paramSchema(p *node) *Schema {
	if s := p.get("schema"); s != nil {
		return l.schema(s, nil, 0)
	}
	var s *Schema
	p.get("content").each(func(_ string, mt *node) {
		if s == nil {
			s = l.schema(mt.get("schema"), nil, 0)
		}
	})
	if s == nil {
		s = &Schema{}
	}
	return s
}

// param builds a parameter; desc is its description (the one beside its
// $ref, or its own), and the schema's when it has none: a generator such as
// Huma puts a header's text in its schema.
func (l *loader) param(p *node, desc string) Param {
	s := l.paramSchema(p)
	return Param{
		Name: p.str("name"), In: p.str("in"), Description: firstString(desc, s.Description),
		Required: p.boolean("required") || p.str("in") == "path", Deprecated: p.boolean("deprecated"),
		Schema: s, Examples: l.examples(p, s, false, false),
	}
}

func isJSON(mediaType string) bool {
	mt, _, _ := strings.Cut(mediaType, ";")
	return strings.HasSuffix(mt, "/json") || strings.HasSuffix(mt, "+json") || mt == "*/*"
}

func (l *loader) content(c *node, dir direction) []MediaType {
	var out []MediaType
	c.each(func(typ string, mt *node) {
		s := l.schema(mt.get("schema"), nil, 0)
		m := MediaType{Type: typ, Schema: s}
		m.Examples = l.examples(mt, s, isJSON(typ), true)
		if len(m.Examples) == 0 && s != nil && isJSON(typ) {
			if v := exampleFor(s, dir, 0); v != nil {
				m.Examples = []Example{{Value: v.JSON(), Generated: s.example == nil}}
			}
		}
		out = append(out, m)
	})
	return out
}

// examples reads example / examples from a media type, parameter or header,
// falling back to the schema's own example when fromSchema is false.
func (l *loader) examples(holder *node, s *Schema, asJSON, skipSchema bool) []Example {
	value := func(v *node) string {
		if asJSON {
			return v.JSON()
		}
		return v.text()
	}
	var out []Example
	if ex := holder.get("example"); ex != nil {
		out = append(out, Example{Value: value(ex)})
	}
	holder.get("examples").each(func(name string, ex *node) {
		ex, summary, desc := l.resolveWithSummary(ex)
		if ex == nil {
			return
		}
		e := Example{Name: name, Summary: summary, Description: desc}
		switch {
		case ex.has("value"):
			e.Value = value(ex.get("value"))
		case ex.str("externalValue") != "":
			e.Value = ex.str("externalValue")
			if e.Description == "" {
				e.Description = "External example: " + e.Value
			}
		case ex.has("dataValue"): // OpenAPI 3.2
			e.Value = value(ex.get("dataValue"))
		}
		out = append(out, e)
	})
	if len(out) == 0 && !skipSchema && s != nil && s.example != nil {
		out = append(out, Example{Value: value(s.example)})
	}
	return out
}

// authFor turns a security scheme into how the samples send the credential.
func authFor(scheme *node) *codesamples.Auth {
	if scheme == nil {
		return nil
	}
	switch scheme.str("type") {
	case "http":
		prefix := "Bearer "
		if s := strings.ToLower(scheme.str("scheme")); s != "" && s != "bearer" {
			prefix = strings.ToUpper(s[:1]) + s[1:] + " "
		}
		return &codesamples.Auth{In: "header", Name: "Authorization", Prefix: prefix}
	case "apiKey":
		return &codesamples.Auth{In: scheme.str("in"), Name: scheme.str("name")}
	case "oauth2", "openIdConnect":
		return &codesamples.Auth{In: "header", Name: "Authorization", Prefix: "Bearer "}
	}
	return nil // mutualTLS and unknown types carry nothing in the request
}

func authExample(a *codesamples.Auth) string {
	if a == nil {
		return ""
	}
	secret := "$" + codesamples.KeyEnv
	switch a.In {
	case "query":
		return "?" + a.Name + "=" + secret
	case "cookie":
		return "Cookie: " + a.Name + "=" + secret
	}
	return a.Name + ": " + a.Prefix + secret
}

// request describes the operation for the code samples.
func (l *loader) request(op *Operation, security *node) codesamples.Op {
	r := codesamples.Op{Method: op.Method, Path: op.Path}
	if reqs := security.elems(); len(reqs) > 0 {
		reqs[0].each(func(name string, _ *node) {
			if r.Auth == nil {
				r.Auth = authFor(l.schemes[name])
			}
		})
	}
	for _, p := range op.Params {
		explicit := len(p.Examples) > 0
		v := paramValue(p)
		switch {
		case p.In == "path":
			r.PathParams = append(r.PathParams, codesamples.Param{Name: p.Name, Value: v})
		case p.In == "query" && (p.Required || explicit):
			r.Query = append(r.Query, codesamples.Param{Name: p.Name, Value: v})
		case p.In == "header" && (p.Required || explicit || isIdempotencyKey(p.Name)):
			switch strings.ToLower(p.Name) {
			case "authorization", "content-type":
			default:
				r.Headers = append(r.Headers, codesamples.Param{Name: p.Name, Value: v, Fresh: isIdempotencyKey(p.Name)})
			}
		}
	}
	if op.Body != nil && len(op.Body.Content) > 0 {
		mt := op.Body.Content[0]
		for _, c := range op.Body.Content {
			if isJSON(c.Type) {
				mt = c
				break
			}
		}
		r.ContentType = mt.Type
		if len(mt.Examples) > 0 {
			r.Body = mt.Examples[0].Value
		}
	}
	if resp := op.response("202"); resp != nil && resp.header("Location") != nil {
		r.FollowLocation = true
		r.RetryAfter = resp.header("Retry-After") != nil
	}
	return r
}

// isIdempotencyKey reports whether a header names an idempotency key
// (Idempotency-Key, X-Idempotency-Key …): a sample must send a new one each
// time it runs, or its second run replays the first job.
func isIdempotencyKey(header string) bool {
	return strings.Contains(strings.ToLower(header), "idempotency-key")
}

func paramValue(p Param) string {
	if len(p.Examples) > 0 {
		return p.Examples[0].Value
	}
	s := p.Schema
	if s == nil {
		return strings.ToUpper(p.Name)
	}
	if v := exampleFor(s, toServer, 0); v != nil && (s.example != nil || (len(s.Types) > 0 && s.Types[0] != "string")) {
		return v.text()
	}
	if v := stringExample(s); v != "string" {
		return v
	}
	return strings.ToUpper(p.Name)
}

func (op *Operation) response(status string) *Response {
	for i := range op.Responses {
		if op.Responses[i].Status == status {
			return &op.Responses[i]
		}
	}
	return nil
}

func (r *Response) header(name string) *Header {
	for i := range r.Headers {
		if strings.EqualFold(r.Headers[i].Name, name) {
			return &r.Headers[i]
		}
	}
	return nil
}

// followHints explains, on every operation answering 202 with Location,
// where that Location leads, and on operations answering 303 what the
// redirect means.
func (l *loader) followHints(doc *Doc) {
	byID := map[string]*Operation{}
	for i := range doc.Operations {
		if id := doc.Operations[i].ID; id != "" {
			byID[id] = &doc.Operations[i]
		}
	}
	for i := range doc.Operations {
		for j := range doc.Operations[i].Responses {
			r := &doc.Operations[i].Responses[j]
			for k := range r.Links {
				if t := byID[r.Links[k].OperationID]; t != nil {
					r.Links[k].Anchor = t.Anchor
				}
			}
		}
	}
	for i := range doc.Operations {
		op := &doc.Operations[i]
		accepted := op.response("202")
		if accepted == nil || accepted.header("Location") == nil {
			if see := op.response("303"); see != nil && see.header("Location") != nil {
				op.FollowHint = "When the work is done this answers 303 See Other: follow the Location header to the result."
			}
			continue
		}
		target := followTarget(doc, op, accepted, byID)
		hint := "The request is accepted, not finished. "
		if target != nil {
			hint += "Poll the URL in the Location header (" + target.Method + " " + target.Path + ") "
			op.FollowAnchor = target.Anchor
		} else {
			hint += "Poll the URL in the Location header with GET "
		}
		hint += "until the job is done"
		if accepted.header("Retry-After") != nil {
			hint += ", waiting the number of seconds in Retry-After between requests"
		}
		hint += "."
		if target != nil {
			if see := target.response("303"); see != nil && see.header("Location") != nil {
				hint += " When it is done, a 303 See Other points to the result."
			}
		}
		op.FollowHint = hint
	}
}

// followTarget finds the operation a 202's Location points to: from a link,
// from an example Location value, or from a GET that returns the same model.
func followTarget(doc *Doc, op *Operation, accepted *Response, byID map[string]*Operation) *Operation {
	for _, ln := range accepted.Links {
		if t := byID[ln.OperationID]; t != nil {
			return t
		}
	}
	for _, ex := range accepted.header("Location").Examples {
		p := ex.Value
		if u, err := url.Parse(p); err == nil {
			p = u.Path
		}
		for i := range doc.Operations {
			if t := &doc.Operations[i]; t.Method == "GET" && matchPath(t.Path, p) {
				return t
			}
		}
	}
	model := ""
	for _, c := range accepted.Content {
		if c.Schema != nil && c.Schema.Ref != "" {
			model = c.Schema.Ref
			break
		}
	}
	if model == "" {
		return nil
	}
	for i := range doc.Operations {
		t := &doc.Operations[i]
		if t == op || t.Method != "GET" || !strings.Contains(t.Path, "{") {
			continue
		}
		if ok := t.response("200"); ok != nil {
			for _, c := range ok.Content {
				if c.Schema != nil && c.Schema.Ref == model {
					return t
				}
			}
		}
	}
	return nil
}

// matchPath reports whether a concrete path fits a template like /v1/jobs/{id}.
func matchPath(template, path string) bool {
	ts := strings.Split(strings.Trim(template, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}
