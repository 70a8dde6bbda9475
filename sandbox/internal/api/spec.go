package api

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// documentProblems lists, on op, every problem it can answer with: one
// response per status, with a named example per catalog code. Huma documents
// only the default status by itself.
func (h *handlers) documentProblems(api huma.API, op *huma.Operation, codes ...string) {
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	ref := api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[problems.Problem](), true, "")
	for _, code := range codes {
		e, ok := h.Catalog.Entry(code)
		if !ok {
			panic(fmt.Sprintf("api: operation %s documents unknown problem %q", op.OperationID, code))
		}
		status := strconv.Itoa(e.Status)
		r := op.Responses[status]
		if r == nil {
			r = &huma.Response{
				Description: http.StatusText(e.Status),
				Content:     map[string]*huma.MediaType{"application/problem+json": {Schema: ref, Examples: map[string]*huma.Example{}}},
			}
			op.Responses[status] = r
		} else {
			r.Description += "; " + e.Title
		}
		if r.Description == http.StatusText(e.Status) {
			r.Description = e.Title
		}
		switch e.Code {
		case problems.QueueFull, problems.RateLimited:
			r.Headers = map[string]*huma.Param{"Retry-After": retryAfterHeader("Seconds to wait before trying again.")}
		case problems.Unauthorized:
			r.Headers = map[string]*huma.Param{"WWW-Authenticate": {Description: "The scheme to authenticate with: `Bearer`.", Schema: &huma.Schema{Type: "string"}, Example: `Bearer realm="accepted-sandbox"`}}
		}
		mt := r.Content["application/problem+json"]
		mt.Examples[e.Code] = &huma.Example{Summary: e.Title, Value: e.Example}
	}
}

func retryAfterHeader(doc string) *huma.Param {
	return &huma.Param{
		Description: doc + " Delay-seconds: a whole number of seconds (RFC 9110 §10.2.3).",
		Schema:      &huma.Schema{Type: "integer", Minimum: ptr(0.0)},
		Example:     3,
	}
}

// fixRetryAfter documents Retry-After as an integer: the output struct holds
// it as a string so that Huma omits it when empty.
func fixRetryAfter(op *huma.Operation, status, doc string) {
	if r := op.Responses[status]; r != nil && r.Headers != nil {
		if _, ok := r.Headers["Retry-After"]; ok {
			r.Headers["Retry-After"] = retryAfterHeader(doc)
		}
	}
}

func ptr[T any](v T) *T { return &v }
