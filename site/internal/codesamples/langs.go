package codesamples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"strconv"
	"strings"
)

func jsString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// indentRest indents every line after the first, for multi-line literals
// placed after some text on the same line.
func indentRest(s, indent string) string {
	return strings.ReplaceAll(s, "\n", "\n"+indent)
}

func javascript(op Op, serverURL string) string {
	var b strings.Builder
	u := jsString(op.URL(serverURL))
	if sep, name, ok := op.authQuery(serverURL); ok {
		u = "`" + strings.NewReplacer("`", "\\`", "${", "\\${").Replace(strings.Trim(u, `"`)) + sep + name +
			"=${encodeURIComponent(process.env." + op.Auth.env() + ")}`"
	}
	type kv struct{ k, v string }
	var headers []kv
	if h, ok := op.authHeader(); ok {
		headers = append(headers, kv{jsString(h), "`" + strings.NewReplacer("`", "\\`", "${", "\\${").Replace(op.authPrefix()) + "${process.env." + op.Auth.env() + "}`"})
	}
	for _, h := range op.Headers {
		v := jsString(h.Value)
		if h.Fresh {
			v = "crypto.randomUUID()" // a new key each run
		}
		headers = append(headers, kv{jsString(h.Name), v})
	}
	if op.Body != "" {
		ct := op.ContentType
		if ct == "" {
			ct = "application/json"
		}
		headers = append(headers, kv{jsString("Content-Type"), jsString(ct)})
	}
	fmt.Fprintf(&b, "const res = await fetch(%s, {\n", u)
	fmt.Fprintf(&b, "  method: %s,\n", jsString(op.method()))
	if len(headers) > 0 {
		b.WriteString("  headers: {\n")
		for _, h := range headers {
			fmt.Fprintf(&b, "    %s: %s,\n", h.k, h.v)
		}
		b.WriteString("  },\n")
	}
	if op.Body != "" {
		if v, err := parseJSON(op.Body); err == nil && op.isJSON() {
			fmt.Fprintf(&b, "  body: JSON.stringify(%s),\n", indentRest(v.format("  ", jsonLiteral), "  "))
		} else {
			fmt.Fprintf(&b, "  body: %s,\n", jsString(op.Body))
		}
	}
	b.WriteString("});\n")
	if op.FollowLocation {
		for _, l := range followComment() {
			b.WriteString("// " + l + "\n")
		}
		b.WriteString("console.log(res.status, res.headers.get(\"Location\"), res.headers.get(\"Retry-After\"));\n")
	} else {
		b.WriteString("console.log(res.status);\n")
	}
	b.WriteString("console.log(await res.text());\n")
	return b.String()
}

func python(op Op, serverURL string) string {
	var b strings.Builder
	imports := []string{}
	body := ""
	if op.Body != "" {
		if v, err := parseJSON(op.Body); err == nil && op.isJSON() {
			imports = append(imports, "json")
			body = "json.dumps(" + indentRest(v.format("    ", pythonLiteral), "") + ").encode()"
		} else {
			body = jsString(op.Body) + ".encode()"
		}
	}
	_, _, authQuery := op.authQuery(serverURL)
	if op.Auth != nil {
		imports = append(imports, "os")
	}
	if authQuery {
		imports = append(imports, "urllib.parse")
	}
	imports = append(imports, "urllib.request")
	if op.hasFresh() {
		imports = append(imports, "uuid")
	}
	for _, i := range imports {
		b.WriteString("import " + i + "\n")
	}
	b.WriteString("\n")
	u := jsString(op.URL(serverURL))
	if sep, name, ok := op.authQuery(serverURL); ok {
		u = u + " + " + jsString(sep+name+"=") + " + urllib.parse.quote(os.environ[" + jsString(op.Auth.env()) + "])"
	}
	if body != "" {
		b.WriteString("body = " + body + "\n")
	}
	b.WriteString("req = urllib.request.Request(\n")
	b.WriteString("    " + u + ",\n")
	if body != "" {
		b.WriteString("    data=body,\n")
	}
	b.WriteString("    method=" + jsString(op.method()) + ",\n")
	var headers [][2]string
	if h, ok := op.authHeader(); ok {
		headers = append(headers, [2]string{jsString(h), jsString(op.authPrefix()) + " + os.environ[" + jsString(op.Auth.env()) + "]"})
	}
	for _, h := range op.Headers {
		v := jsString(h.Value)
		if h.Fresh {
			v = "str(uuid.uuid4())" // a new key each run
		}
		headers = append(headers, [2]string{jsString(h.Name), v})
	}
	if body != "" {
		ct := op.ContentType
		if ct == "" {
			ct = "application/json"
		}
		headers = append(headers, [2]string{jsString("Content-Type"), jsString(ct)})
	}
	if len(headers) > 0 {
		b.WriteString("    headers={\n")
		for _, h := range headers {
			b.WriteString("        " + h[0] + ": " + h[1] + ",\n")
		}
		b.WriteString("    },\n")
	}
	b.WriteString(")\n")
	b.WriteString("with urllib.request.urlopen(req) as res:\n")
	if op.FollowLocation {
		for _, l := range followComment() {
			b.WriteString("    # " + l + "\n")
		}
		b.WriteString("    print(res.status, res.headers.get(\"Location\"), res.headers.get(\"Retry-After\"))\n")
	} else {
		b.WriteString("    print(res.status)\n")
	}
	b.WriteString("    print(res.read().decode())\n")
	return b.String()
}

// hasFresh reports whether a header takes a new random value each run.
func (op Op) hasFresh() bool {
	for _, h := range op.Headers {
		if h.Fresh {
			return true
		}
	}
	return false
}

func goString(s string) string {
	if !strings.Contains(s, "`") && !strings.Contains(s, "\r") && strings.Contains(s, "\n") {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

var goMethods = map[string]string{
	"GET": "http.MethodGet", "POST": "http.MethodPost", "PUT": "http.MethodPut",
	"PATCH": "http.MethodPatch", "DELETE": "http.MethodDelete", "HEAD": "http.MethodHead",
	"OPTIONS": "http.MethodOptions", "TRACE": "http.MethodTrace",
}

func golang(op Op, serverURL string) string {
	var b strings.Builder
	imports := []string{"fmt", "io", "log", "net/http"}
	if op.hasFresh() {
		imports = append([]string{"crypto/rand"}, imports...)
	}
	_, _, authQuery := op.authQuery(serverURL)
	if authQuery {
		imports = append(imports, "net/url")
	}
	if op.Auth != nil {
		imports = append(imports, "os")
	}
	if op.Body != "" {
		imports = append(imports, "strings")
	}
	b.WriteString("package main\n\nimport (\n")
	for _, i := range imports {
		b.WriteString("\t" + strconv.Quote(i) + "\n")
	}
	b.WriteString(")\n\nfunc main() {\n")
	body := "nil"
	if op.Body != "" {
		fmt.Fprintf(&b, "\tbody := strings.NewReader(%s)\n", goString(op.Body))
		body = "body"
	}
	method, ok := goMethods[op.method()]
	if !ok {
		method = strconv.Quote(op.method())
	}
	u := strconv.Quote(op.URL(serverURL))
	if sep, name, ok := op.authQuery(serverURL); ok {
		u += " + " + strconv.Quote(sep+name+"=") + " + url.QueryEscape(os.Getenv(" + strconv.Quote(op.Auth.env()) + "))"
	}
	fmt.Fprintf(&b, "\treq, err := http.NewRequest(%s, %s, %s)\n", method, u, body)
	b.WriteString("\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
	if h, ok := op.authHeader(); ok {
		fmt.Fprintf(&b, "\treq.Header.Set(%s, %s+os.Getenv(%s))\n", strconv.Quote(h), strconv.Quote(op.authPrefix()), strconv.Quote(op.Auth.env()))
	}
	for _, h := range op.Headers {
		if h.Fresh {
			fmt.Fprintf(&b, "\t// A new %s for each new request (rand.Text: Go 1.24 or later).\n", h.Name)
			fmt.Fprintf(&b, "\treq.Header.Set(%s, rand.Text())\n", strconv.Quote(h.Name))
			continue
		}
		fmt.Fprintf(&b, "\treq.Header.Set(%s, %s)\n", strconv.Quote(h.Name), strconv.Quote(h.Value))
	}
	if op.Body != "" {
		ct := op.ContentType
		if ct == "" {
			ct = "application/json"
		}
		fmt.Fprintf(&b, "\treq.Header.Set(\"Content-Type\", %s)\n", strconv.Quote(ct))
	}
	b.WriteString("\n\tres, err := http.DefaultClient.Do(req)\n")
	b.WriteString("\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tdefer res.Body.Close()\n\n")
	if op.FollowLocation {
		for _, l := range followComment() {
			b.WriteString("\t// " + l + "\n")
		}
		b.WriteString("\tfmt.Println(res.Status, res.Header.Get(\"Location\"), res.Header.Get(\"Retry-After\"))\n")
	} else {
		b.WriteString("\tfmt.Println(res.Status)\n")
	}
	b.WriteString("\tout, err := io.ReadAll(res.Body)\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
	b.WriteString("\tfmt.Println(string(out))\n}\n")
	src := b.String()
	if formatted, err := format.Source([]byte(src)); err == nil {
		return string(formatted)
	}
	return src
}

// value is a JSON value that keeps the order of object members, so samples
// show fields in the order the spec lists them.
type value struct {
	kind   byte // o(bject), a(rray), s(tring), n(umber), b(ool), z (null)
	keys   []string
	items  []*value
	scalar string
}

func parseJSON(s string) (*value, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (*value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		v := &value{kind: 'a'}
		if t == '{' {
			v.kind = 'o'
		}
		for dec.More() {
			if v.kind == 'o' {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, kt.(string))
			}
			item, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			v.items = append(v.items, item)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return v, nil
	case string:
		return &value{kind: 's', scalar: t}, nil
	case json.Number:
		return &value{kind: 'n', scalar: t.String()}, nil
	case bool:
		return &value{kind: 'b', scalar: strconv.FormatBool(t)}, nil
	default:
		return &value{kind: 'z'}, nil
	}
}

// literal spells scalars in a target language.
type literal func(v *value) string

func jsonLiteral(v *value) string {
	switch v.kind {
	case 's':
		return jsString(v.scalar)
	case 'z':
		return "null"
	}
	return v.scalar
}

func pythonLiteral(v *value) string {
	switch v.kind {
	case 's':
		return jsString(v.scalar)
	case 'z':
		return "None"
	case 'b':
		if v.scalar == "true" {
			return "True"
		}
		return "False"
	}
	return v.scalar
}

// format writes v as a multi-line literal (JSON, JavaScript or Python, which
// agree on the shape of objects and arrays) indented by step.
func (v *value) format(step string, lit literal) string {
	var b strings.Builder
	v.write(&b, "", step, lit)
	return b.String()
}

func (v *value) write(b *strings.Builder, indent, step string, lit literal) {
	switch v.kind {
	case 'o', 'a':
		open, closing := "[", "]"
		if v.kind == 'o' {
			open, closing = "{", "}"
		}
		if len(v.items) == 0 {
			b.WriteString(open + closing)
			return
		}
		if inline := v.inline(lit); inline != "" {
			b.WriteString(inline)
			return
		}
		b.WriteString(open + "\n")
		for i, item := range v.items {
			b.WriteString(indent + step)
			if v.kind == 'o' {
				b.WriteString(jsString(v.keys[i]) + ": ")
			}
			item.write(b, indent+step, step, lit)
			if i < len(v.items)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + closing)
	default:
		b.WriteString(lit(v))
	}
}

// inline spells a short array of scalars on one line, or returns "".
func (v *value) inline(lit literal) string {
	if v.kind != 'a' {
		return ""
	}
	parts := make([]string, len(v.items))
	n := 0
	for i, item := range v.items {
		if item.kind == 'o' || item.kind == 'a' {
			return ""
		}
		parts[i] = lit(item)
		n += len(parts[i]) + 2
	}
	if n > 60 {
		return ""
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
