// Package apiref turns an OpenAPI 3.1 document (JSON or YAML) into view
// models for the API reference pages: operations grouped by tag, schemas as
// render-ready trees with $refs resolved and cycles cut, examples as
// indented JSON, code samples, webhooks and callbacks.
//
// The package renders nothing. Descriptions stay raw CommonMark strings; the
// page components (package refpages) decide how to turn them into HTML.
package apiref

import "github.com/accepted-dev/accepted/site/internal/codesamples"

// Doc is the whole API.
type Doc struct {
	Title, Version, Description string
	OpenAPI                     string   // the document's openapi version, e.g. 3.1.0
	Servers                     []string // URLs with server variables set to their defaults
	Tags                        []Tag
	Operations                  []Operation
	Webhooks                    []Webhook
	Models                      []Model
	SecuritySchemes             []SecurityScheme

	server string // what SetServer last used
}

// Tag groups operations; every operation belongs to exactly one Tag (its
// first tag, or a synthetic one when it has none).
type Tag struct {
	Name, Slug, Description string
	Operations              []*Operation // point into Doc.Operations
}

// Kind says where an operation sits in the document.
type Kind string

const (
	KindOperation Kind = "operation" // a request the client sends (paths)
	KindWebhook   Kind = "webhook"   // a request the API sends (webhooks)
	KindCallback  Kind = "callback"  // a request the API sends back after an operation (callbacks)
)

// Operation is one method on one path (or one webhook or callback request).
type Operation struct {
	ID, Method, Path, Tag, Summary, Description, Anchor string

	Kind       Kind
	Deprecated bool
	// Security lists the alternatives that authorize the request, each the
	// scheme names that must all be present ("bearerAuth", "apiKey + oauth2
	// (read, write)"); empty when the operation is public.
	Security []string
	Params   []Param
	Body     *Body
	// Responses in document order.
	Responses []Response
	Callbacks []Callback
	// Samples are the requests in curl, JavaScript, Python and Go against
	// Doc.Servers[0]; only for KindOperation. Doc.SetServer rewrites them.
	Samples []codesamples.Sample
	// Follow are the whole clients of an operation that answers 202 with a
	// Location (start the job, poll as Retry-After says, fetch the result),
	// in the same languages; nil for other operations. SetServer rewrites
	// them too.
	Follow []codesamples.Sample
	// Request is what Samples were generated from.
	Request codesamples.Op
	// FollowHint is set when a 202 response documents Location: it says
	// where to follow it. FollowAnchor is the anchor of the operation the
	// Location points to, when it could be found.
	FollowHint   string
	FollowAnchor string
}

// Title is the summary, falling back to the operation id, then method and path.
func (op *Operation) Title() string {
	switch {
	case op.Summary != "":
		return op.Summary
	case op.ID != "":
		return op.ID
	}
	return op.Method + " " + op.Path
}

// Param is a path, query, header or cookie parameter.
type Param struct {
	Name, In, Description string
	Required, Deprecated  bool
	Schema                *Schema
	Examples              []Example
}

// Body is a request body.
type Body struct {
	Description string
	Required    bool
	Content     []MediaType
}

// MediaType is one representation of a body.
type MediaType struct {
	Type     string // e.g. application/json
	Schema   *Schema
	Examples []Example
}

// Example is a named example value, as indented JSON (or plain text for
// non-JSON string examples).
type Example struct {
	Name, Summary, Description string
	Value                      string
	// Generated is true when the spec had no example and this one was built
	// from the schema.
	Generated bool
}

// Response is one status of an operation.
type Response struct {
	Status      string // "202", "4XX" or "default"
	Description string
	Anchor      string
	Headers     []Header
	Content     []MediaType
	Links       []Link
}

// StatusClass is "1xx" … "5xx", or "default".
func (r Response) StatusClass() string {
	if len(r.Status) == 3 && r.Status[0] >= '1' && r.Status[0] <= '5' {
		return r.Status[:1] + "xx"
	}
	return "default"
}

// Header is a response header.
type Header struct {
	Name, Description    string
	Required, Deprecated bool
	Schema               *Schema
	Examples             []Example
}

// Link is an OpenAPI link from a response to another operation.
type Link struct {
	Name, Description, OperationID, Anchor string
}

// Callback is one runtime expression of an operation's callback.
type Callback struct {
	Name       string
	Expression string // e.g. {$request.body#/callback_url}
	Operations []Operation
}

// Webhook is one request of a top-level webhook (OpenAPI 3.1 webhooks).
// A webhook whose path item has several methods yields several Webhooks.
type Webhook struct {
	Name      string
	Operation Operation
}

// Model is a schema from components/schemas.
type Model struct {
	Name, Anchor, Description string
	Schema                    *Schema
	// UsedBy lists the operations and webhooks whose parameters, bodies or
	// responses refer to the model, in document order. The pointers are
	// into Doc.Operations and Doc.Webhooks.
	UsedBy []*Operation
}

// SecurityScheme is one entry of components/securitySchemes.
type SecurityScheme struct {
	Name, Anchor, Type, Description string
	Scheme, BearerFormat            string // http
	In, ParamName                   string // apiKey
	// Example is how a request carries the credential, such as
	// "Authorization: Bearer $ACCEPTED_KEY".
	Example string
}

// Schema is a render-friendly JSON Schema node. Referenced schemas are
// expanded inline; Ref names the model it came from so the page can link to
// it. A reference back into a schema that is being expanded is not expanded
// again: the node has Cycle set and only Ref and RefAnchor.
type Schema struct {
	Name        string   // property name; empty for roots and items
	Types       []string // JSON types in order, "null" excluded; empty means any
	Nullable    bool
	Format      string
	Title       string
	Description string
	Required    bool // required by the parent object
	ReadOnly    bool
	WriteOnly   bool
	Deprecated  bool

	Enum     []string // JSON literals
	Const    string   // JSON literal; HasConst tells "" apart from absent
	HasConst bool
	Default  string // JSON literal
	Examples []string

	Minimum, Maximum                   *float64
	ExclusiveMinimum, ExclusiveMaximum bool
	MultipleOf                         *float64
	MinLength, MaxLength               *int
	Pattern                            string
	MinItems, MaxItems                 *int
	UniqueItems                        bool
	MinProperties, MaxProperties       *int

	Items      *Schema
	Properties []*Schema
	OneOf      []*Schema
	AnyOf      []*Schema
	AllOf      []*Schema
	Not        *Schema
	// AdditionalProperties is the schema of extra members; NoAdditional is
	// true when the schema forbids them (additionalProperties: false).
	AdditionalProperties *Schema
	NoAdditional         bool
	Discriminator        string

	Ref       string // model name when the node came from #/components/schemas/<Ref>
	RefAnchor string
	Cycle     bool // reference back into an enclosing schema; not expanded
	Truncated bool // nesting limit reached; not expanded

	example *node // first example, default, const or enum value
}

// HasChildren reports whether the node expands into nested nodes.
func (s *Schema) HasChildren() bool {
	return len(s.Properties) > 0 || (s.Items != nil && s.Items.HasChildren()) ||
		len(s.OneOf)+len(s.AnyOf)+len(s.AllOf) > 0 || s.Not != nil ||
		(s.AdditionalProperties != nil && s.AdditionalProperties.HasChildren())
}
