package apiref

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// node is a JSON value that keeps the order of object members: the reference
// lists properties, paths and responses in the order the spec's author chose,
// which encoding/json's maps would lose.
type node struct {
	kind   kind
	keys   []string // object member names, parallel to items
	items  []*node  // object member values or array elements
	scalar string   // string value, number literal, "true"/"false"
}

type kind byte

const (
	kNull kind = iota
	kObject
	kArray
	kString
	kNumber
	kBool
)

func (n *node) get(key string) *node {
	if n == nil || n.kind != kObject {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.items[i]
		}
	}
	return nil
}

func (n *node) has(key string) bool { return n.get(key) != nil }

// str returns the string member key, or "" when it is missing or not a string.
func (n *node) str(key string) string {
	v := n.get(key)
	if v == nil || v.kind != kString {
		return ""
	}
	return v.scalar
}

func (n *node) boolean(key string) bool {
	v := n.get(key)
	return v != nil && v.kind == kBool && v.scalar == "true"
}

// number returns the numeric member key.
func (n *node) number(key string) (float64, bool) {
	v := n.get(key)
	if v == nil || v.kind != kNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.scalar, 64)
	return f, err == nil
}

func (n *node) integer(key string) *int {
	f, ok := n.number(key)
	if !ok || f != math.Trunc(f) {
		return nil
	}
	i := int(f)
	return &i
}

func (n *node) isObject() bool { return n != nil && n.kind == kObject }

// each calls fn for every member of an object in document order.
func (n *node) each(fn func(key string, v *node)) {
	if n == nil || n.kind != kObject {
		return
	}
	for i, k := range n.keys {
		fn(k, n.items[i])
	}
}

func (n *node) elems() []*node {
	if n == nil || n.kind != kArray {
		return nil
	}
	return n.items
}

// parse reads a JSON or YAML document.
func parse(data []byte) (*node, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty document")
	}
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		n, err := decodeJSON(dec)
		if err != nil {
			return nil, fmt.Errorf("parsing JSON: %w", err)
		}
		if _, err := dec.Token(); err == nil {
			return nil, errors.New("parsing JSON: trailing data after the document")
		}
		return n, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	return fromYAML(&doc, 0)
}

func decodeJSON(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &node{kind: kArray}
		if t == '{' {
			n.kind = kObject
		}
		for dec.More() {
			if n.kind == kObject {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := decodeJSON(dec)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return n, nil
	case string:
		return &node{kind: kString, scalar: t}, nil
	case json.Number:
		return &node{kind: kNumber, scalar: t.String()}, nil
	case bool:
		return &node{kind: kBool, scalar: strconv.FormatBool(t)}, nil
	}
	return &node{kind: kNull}, nil
}

func fromYAML(y *yaml.Node, depth int) (*node, error) {
	if depth > 512 {
		return nil, errors.New("parsing YAML: nesting too deep (alias loop?)")
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return nil, errors.New("empty document")
		}
		return fromYAML(y.Content[0], depth+1)
	case yaml.AliasNode:
		return fromYAML(y.Alias, depth+1)
	case yaml.MappingNode:
		n := &node{kind: kObject}
		for i := 0; i+1 < len(y.Content); i += 2 {
			v, err := fromYAML(y.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			// Keys such as 200 are ints to YAML; their text is what we want.
			n.keys = append(n.keys, y.Content[i].Value)
			n.items = append(n.items, v)
		}
		return n, nil
	case yaml.SequenceNode:
		n := &node{kind: kArray}
		for _, c := range y.Content {
			v, err := fromYAML(c, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, v)
		}
		return n, nil
	}
	switch y.ShortTag() {
	case "!!null":
		return &node{kind: kNull}, nil
	case "!!bool":
		var b bool
		if err := y.Decode(&b); err == nil {
			return &node{kind: kBool, scalar: strconv.FormatBool(b)}, nil
		}
	case "!!int":
		var i int64
		if err := y.Decode(&i); err == nil {
			return &node{kind: kNumber, scalar: strconv.FormatInt(i, 10)}, nil
		}
	case "!!float":
		var f float64
		if err := y.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return &node{kind: kNumber, scalar: strconv.FormatFloat(f, 'g', -1, 64)}, nil
		}
	}
	return &node{kind: kString, scalar: y.Value}, nil
}

// pointer resolves a local reference such as #/components/schemas/Job.
func (n *node) pointer(ref string) *node {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	frag := ref[1:]
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	if frag == "" {
		return n
	}
	if !strings.HasPrefix(frag, "/") {
		return nil // plain-name fragments ($anchor) are not supported
	}
	cur := n
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch {
		case cur == nil:
			return nil
		case cur.kind == kObject:
			cur = cur.get(tok)
		case cur.kind == kArray:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur.items) {
				return nil
			}
			cur = cur.items[i]
		default:
			return nil
		}
	}
	return cur
}

// JSON writes n as indented JSON.
func (n *node) JSON() string {
	var b strings.Builder
	n.writeJSON(&b, "")
	return b.String()
}

func quoteJSON(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

func (n *node) writeJSON(b *strings.Builder, indent string) {
	if n == nil {
		b.WriteString("null")
		return
	}
	switch n.kind {
	case kObject, kArray:
		open, closing := "[", "]"
		if n.kind == kObject {
			open, closing = "{", "}"
		}
		if len(n.items) == 0 {
			b.WriteString(open + closing)
			return
		}
		b.WriteString(open + "\n")
		for i, v := range n.items {
			b.WriteString(indent + "  ")
			if n.kind == kObject {
				b.WriteString(quoteJSON(n.keys[i]) + ": ")
			}
			v.writeJSON(b, indent+"  ")
			if i < len(n.items)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + closing)
	case kString:
		b.WriteString(quoteJSON(n.scalar))
	case kNumber, kBool:
		b.WriteString(n.scalar)
	default:
		b.WriteString("null")
	}
}

// text is the value as a reader would type it: strings without quotes.
func (n *node) text() string {
	if n != nil && n.kind == kString {
		return n.scalar
	}
	return n.JSON()
}
