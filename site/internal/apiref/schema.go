package apiref

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxDepth bounds how deep schemas are expanded inline; deeper nodes keep
// their Ref link so the reader can continue on the models page.
const maxDepth = 12

const schemaPrefix = "#/components/schemas/"

// schema builds the view of n. stack holds the $refs being expanded, so a
// reference back into one of them becomes a Cycle link instead of recursing.
func (l *loader) schema(n *node, stack []string, depth int) *Schema {
	if n == nil {
		return nil
	}
	if n.kind == kBool { // true / false schemas of JSON Schema 2020-12
		if n.scalar == "false" {
			return &Schema{Not: &Schema{}}
		}
		return &Schema{}
	}
	if n.kind != kObject {
		return &Schema{}
	}
	if ref := n.str("$ref"); ref != "" {
		return l.refSchema(n, ref, stack, depth)
	}
	s := &Schema{
		Title:       n.str("title"),
		Description: n.str("description"),
		Format:      n.str("format"),
		ReadOnly:    n.boolean("readOnly"),
		WriteOnly:   n.boolean("writeOnly"),
		Deprecated:  n.boolean("deprecated"),
		Pattern:     n.str("pattern"),
		MinLength:   n.integer("minLength"),
		MaxLength:   n.integer("maxLength"),
		MinItems:    n.integer("minItems"),
		MaxItems:    n.integer("maxItems"),
		UniqueItems: n.boolean("uniqueItems"),

		MinProperties: n.integer("minProperties"),
		MaxProperties: n.integer("maxProperties"),
	}
	switch t := n.get("type"); {
	case t == nil:
	case t.kind == kString:
		s.Types = []string{t.scalar}
	case t.kind == kArray:
		for _, e := range t.items {
			s.Types = append(s.Types, e.scalar)
		}
	}
	if i := slices.Index(s.Types, "null"); i >= 0 {
		s.Types = slices.Delete(s.Types, i, i+1)
		s.Nullable = true
	}
	if n.boolean("nullable") { // OpenAPI 3.0
		s.Nullable = true
	}
	if len(s.Types) == 0 {
		switch {
		case n.has("properties") || n.has("additionalProperties"):
			s.Types = []string{"object"}
		case n.has("items"):
			s.Types = []string{"array"}
		}
	}

	if v, ok := n.number("minimum"); ok {
		s.Minimum = &v
	}
	if v, ok := n.number("maximum"); ok {
		s.Maximum = &v
	}
	// 3.1 spells exclusive bounds as numbers, 3.0 as booleans.
	if v, ok := n.number("exclusiveMinimum"); ok {
		s.Minimum, s.ExclusiveMinimum = &v, true
	} else if n.boolean("exclusiveMinimum") {
		s.ExclusiveMinimum = true
	}
	if v, ok := n.number("exclusiveMaximum"); ok {
		s.Maximum, s.ExclusiveMaximum = &v, true
	} else if n.boolean("exclusiveMaximum") {
		s.ExclusiveMaximum = true
	}
	if v, ok := n.number("multipleOf"); ok {
		s.MultipleOf = &v
	}
	for _, e := range n.get("enum").elems() {
		if e.kind == kNull {
			s.Nullable = true
		}
		s.Enum = append(s.Enum, e.JSON())
	}
	if c := n.get("const"); c != nil {
		s.Const, s.HasConst = c.JSON(), true
	}
	if d := n.get("default"); d != nil {
		s.Default = d.JSON()
	}
	if ex := n.get("examples"); ex != nil && ex.kind == kArray {
		for _, e := range ex.items {
			s.Examples = append(s.Examples, e.JSON())
		}
	} else if ex := n.get("example"); ex != nil {
		s.Examples = append(s.Examples, ex.JSON())
	}
	s.example = firstNonNil(firstElem(n.get("examples")), n.get("example"), n.get("default"), n.get("const"), firstElem(n.get("enum")))
	if d := n.get("discriminator"); d.isObject() {
		s.Discriminator = d.str("propertyName")
	}

	if depth >= maxDepth {
		s.Truncated = n.has("properties") || n.has("items") || n.has("allOf") || n.has("oneOf") || n.has("anyOf")
		return s
	}
	required := map[string]bool{}
	for _, r := range n.get("required").elems() {
		required[r.scalar] = true
	}
	n.get("properties").each(func(name string, p *node) {
		ps := l.schema(p, stack, depth+1)
		ps.Name = name
		ps.Required = required[name]
		s.Properties = append(s.Properties, ps)
	})
	if it := n.get("items"); it != nil {
		s.Items = l.schema(it, stack, depth+1)
	}
	if ap := n.get("additionalProperties"); ap != nil {
		if ap.kind == kBool {
			s.NoAdditional = ap.scalar == "false"
			if !s.NoAdditional {
				s.AdditionalProperties = &Schema{}
			}
		} else {
			s.AdditionalProperties = l.schema(ap, stack, depth+1)
		}
	}
	for _, kw := range []struct {
		key string
		dst *[]*Schema
	}{{"allOf", &s.AllOf}, {"oneOf", &s.OneOf}, {"anyOf", &s.AnyOf}} {
		for _, sub := range n.get(kw.key).elems() {
			*kw.dst = append(*kw.dst, l.schema(sub, stack, depth+1))
		}
	}
	if not := n.get("not"); not != nil {
		s.Not = l.schema(not, stack, depth+1)
	}
	s.foldNullAlternative()
	return s
}

// foldNullAlternative turns anyOf/oneOf [X, {type: null}] into a nullable X,
// which reads far better than a two-branch choice.
func (s *Schema) foldNullAlternative() {
	for _, alts := range []*[]*Schema{&s.OneOf, &s.AnyOf} {
		if len(*alts) != 2 || len(s.Types) > 0 || len(s.Properties) > 0 {
			continue
		}
		var other *Schema
		for i, a := range *alts {
			if a.isNullOnly() {
				other = (*alts)[1-i]
			}
		}
		if other == nil || other.isNullOnly() {
			continue
		}
		*alts = nil
		keep := *s
		*s = *other
		s.Nullable = true
		if keep.Description != "" {
			s.Description = keep.Description
		}
		if keep.Title != "" {
			s.Title = keep.Title
		}
		if keep.example != nil {
			s.example = keep.example
		}
		s.Deprecated = s.Deprecated || keep.Deprecated
		s.ReadOnly = s.ReadOnly || keep.ReadOnly
		s.WriteOnly = s.WriteOnly || keep.WriteOnly
		return
	}
}

func (s *Schema) isNullOnly() bool {
	return s.Nullable && len(s.Types) == 0 && s.Ref == "" && !s.HasChildren() && len(s.Enum) == 0
}

func firstElem(n *node) *node {
	if n == nil || n.kind != kArray || len(n.items) == 0 {
		return nil
	}
	return n.items[0]
}

func firstNonNil(ns ...*node) *node {
	for _, n := range ns {
		if n != nil {
			return n
		}
	}
	return nil
}

func (l *loader) refSchema(n *node, ref string, stack []string, depth int) *Schema {
	name, anchor := "", ""
	if rest, ok := strings.CutPrefix(ref, schemaPrefix); ok && !strings.Contains(rest, "/") {
		name = unescapePointer(rest)
		anchor = l.modelAnchors[name]
	}
	var s *Schema
	switch target := l.resolveRef(ref); {
	case target == nil:
		s = &Schema{}
	case slices.Contains(stack, ref):
		s = &Schema{Cycle: true, Types: []string{"object"}}
		if t := target.get("type"); t != nil && t.kind == kString {
			s.Types = []string{t.scalar}
		}
	case depth >= maxDepth:
		s = &Schema{Truncated: true}
	default:
		// Clone so two uses of one model do not share a node (each use gets
		// its own Name and Required).
		s = l.schema(target, append(slices.Clip(stack), ref), depth)
	}
	if name != "" {
		s.Ref, s.RefAnchor = name, anchor
		l.noteUse(name)
	}
	// 3.1 lets keywords sit beside $ref; the ones a reader cares about
	// override the target's.
	if d := n.str("description"); d != "" {
		s.Description = d
	}
	if t := n.str("title"); t != "" {
		s.Title = t
	}
	if n.boolean("deprecated") {
		s.Deprecated = true
	}
	if n.boolean("readOnly") {
		s.ReadOnly = true
	}
	if n.boolean("writeOnly") {
		s.WriteOnly = true
	}
	if n.boolean("nullable") {
		s.Nullable = true
	}
	if d := n.get("default"); d != nil {
		s.Default = d.JSON()
	}
	if ex := firstNonNil(firstElem(n.get("examples")), n.get("example")); ex != nil {
		s.example = ex
		s.Examples = append([]string{ex.JSON()}, s.Examples...)
	}
	return s
}

func unescapePointer(s string) string {
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}

// TypeLabel spells the type for a reader: "string<date-time> | null",
// "array of Job", "object", "any".
func (s *Schema) TypeLabel() string {
	var parts []string
	for _, t := range s.Types {
		switch {
		case t == "array" && s.Items != nil:
			parts = append(parts, "array of "+s.Items.shortLabel())
		case s.Format != "" && t != "object" && t != "array":
			parts = append(parts, t+"<"+s.Format+">")
		default:
			parts = append(parts, t)
		}
	}
	switch {
	case len(parts) > 0:
	case s.Ref != "":
		parts = append(parts, s.Ref)
	case len(s.OneOf) > 0:
		parts = append(parts, "one of")
	case len(s.AnyOf) > 0:
		parts = append(parts, "any of")
	case len(s.AllOf) > 0:
		parts = append(parts, "all of")
	case s.HasConst:
		parts = append(parts, "const")
	case s.Not != nil && s.Not.isAny():
		parts = append(parts, "never")
	default:
		parts = append(parts, "any")
	}
	if s.Nullable {
		parts = append(parts, "null")
	}
	return strings.Join(parts, " | ")
}

func (s *Schema) isAny() bool {
	return len(s.Types) == 0 && s.Ref == "" && !s.HasChildren() && !s.Nullable && len(s.Enum) == 0 && !s.HasConst
}

func (s *Schema) shortLabel() string {
	if s.Ref != "" {
		return s.Ref
	}
	return s.TypeLabel()
}

// Constraints lists the validation keywords in words: "≥ 1", "at most 64
// characters", "pattern ^[a-z]+$", "default \"csv\"".
func (s *Schema) Constraints() []string {
	var out []string
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	if s.Minimum != nil {
		op := "≥ "
		if s.ExclusiveMinimum {
			op = "> "
		}
		out = append(out, op+num(*s.Minimum))
	}
	if s.Maximum != nil {
		op := "≤ "
		if s.ExclusiveMaximum {
			op = "< "
		}
		out = append(out, op+num(*s.Maximum))
	}
	if s.MultipleOf != nil {
		out = append(out, "multiple of "+num(*s.MultipleOf))
	}
	out = appendRange(out, s.MinLength, s.MaxLength, "character")
	out = appendRange(out, s.MinItems, s.MaxItems, "item")
	out = appendRange(out, s.MinProperties, s.MaxProperties, "property")
	if s.UniqueItems {
		out = append(out, "unique items")
	}
	if s.Pattern != "" {
		out = append(out, "pattern "+s.Pattern)
	}
	if s.NoAdditional {
		out = append(out, "no other properties")
	}
	if s.Default != "" {
		out = append(out, "default "+s.Default)
	}
	return out
}

func appendRange(out []string, lo, hi *int, unit string) []string {
	plural := func(n int) string {
		if n == 1 {
			return unit
		}
		if strings.HasSuffix(unit, "y") {
			return strings.TrimSuffix(unit, "y") + "ies"
		}
		return unit + "s"
	}
	switch {
	case lo != nil && hi != nil && *lo == *hi:
		return append(out, fmt.Sprintf("exactly %d %s", *lo, plural(*lo)))
	case lo != nil && hi != nil:
		return append(out, fmt.Sprintf("%d to %d %s", *lo, *hi, plural(*hi)))
	case lo != nil && *lo > 0:
		return append(out, fmt.Sprintf("at least %d %s", *lo, plural(*lo)))
	case hi != nil:
		return append(out, fmt.Sprintf("at most %d %s", *hi, plural(*hi)))
	}
	return out
}
