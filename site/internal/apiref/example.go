package apiref

import "strconv"

// direction decides which properties an example shows: requests leave out
// readOnly ones (an id the server assigns), responses writeOnly ones.
type direction int

const (
	toServer direction = iota
	toClient
)

// exampleFor builds an example value from a schema for a body that has no
// example in the spec, so every JSON body on the page (and in the samples)
// shows something concrete.
func exampleFor(s *Schema, dir direction, depth int) *node {
	if s == nil || s.Cycle || s.Truncated || depth > maxDepth {
		return nil
	}
	if s.example != nil {
		return s.example
	}
	if len(s.AllOf) > 0 {
		merged := &node{kind: kObject}
		for _, sub := range s.AllOf {
			if v := exampleFor(sub, dir, depth+1); v != nil && v.kind == kObject {
				for i, k := range v.keys {
					if !merged.has(k) {
						merged.keys = append(merged.keys, k)
						merged.items = append(merged.items, v.items[i])
					}
				}
			}
		}
		addProperties(merged, s, dir, depth)
		if len(merged.keys) == 0 {
			return nil // every part was a cycle or empty: say nothing
		}
		return merged
	}
	for _, alts := range [][]*Schema{s.OneOf, s.AnyOf} {
		if len(alts) > 0 && len(s.Properties) == 0 {
			return exampleFor(alts[0], dir, depth+1)
		}
	}
	typ := ""
	if len(s.Types) > 0 {
		typ = s.Types[0]
	}
	switch typ {
	case "object":
		obj := &node{kind: kObject}
		addProperties(obj, s, dir, depth)
		return obj
	case "array":
		arr := &node{kind: kArray}
		if v := exampleFor(s.Items, dir, depth+1); v != nil {
			arr.items = []*node{v}
		}
		return arr
	case "string":
		return &node{kind: kString, scalar: stringExample(s)}
	case "integer", "number":
		v := 0.0
		if s.Minimum != nil {
			v = *s.Minimum
			if s.ExclusiveMinimum {
				v++
			}
		}
		return &node{kind: kNumber, scalar: strconv.FormatFloat(v, 'g', -1, 64)}
	case "boolean":
		return &node{kind: kBool, scalar: "true"}
	case "null":
		return &node{kind: kNull}
	}
	if len(s.Properties) > 0 {
		obj := &node{kind: kObject}
		addProperties(obj, s, dir, depth)
		return obj
	}
	if s.Nullable {
		return &node{kind: kNull}
	}
	return nil
}

func addProperties(obj *node, s *Schema, dir direction, depth int) {
	for _, p := range s.Properties {
		if (dir == toServer && p.ReadOnly) || (dir == toClient && p.WriteOnly) || obj.has(p.Name) {
			continue
		}
		if v := exampleFor(p, dir, depth+1); v != nil {
			obj.keys = append(obj.keys, p.Name)
			obj.items = append(obj.items, v)
		}
	}
}

func stringExample(s *Schema) string {
	switch s.Format {
	case "date-time":
		return "2025-01-31T09:30:00Z"
	case "date":
		return "2025-01-31"
	case "time":
		return "09:30:00Z"
	case "duration":
		return "PT30S"
	case "email":
		return "ada@example.com"
	case "uri", "url", "iri":
		return "https://example.com/"
	case "uri-reference", "iri-reference":
		return "/v1/example"
	case "uuid":
		return "0b8f4f2e-3c1a-4f5e-9d7a-2f1e6c3b8a90"
	case "hostname":
		return "example.com"
	case "ipv4":
		return "192.0.2.1"
	case "ipv6":
		return "2001:db8::1"
	case "byte":
		return "aGVsbG8="
	}
	if s.MinLength != nil && *s.MinLength > 6 {
		b := make([]byte, *s.MinLength)
		for i := range b {
			b[i] = 'x'
		}
		return string(b)
	}
	return "string"
}
