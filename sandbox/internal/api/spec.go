package api

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
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
		if e.Code == problems.Unauthorized {
			r.Headers = map[string]*huma.Param{"WWW-Authenticate": {Description: "The scheme to authenticate with: `Bearer`.", Schema: &huma.Schema{Type: "string", MaxLength: ptr(64)}, Example: `Bearer realm="accepted-sandbox"`}}
		}
		mt := r.Content["application/problem+json"]
		mt.Examples[e.Code] = &huma.Example{Summary: e.Title, Value: e.Example}
	}
}

// Response headers many operations send are declared once, in
// components/headers, and referenced: generators then make one type of each
// (ogen could not compile per-operation copies of an enum header), and a
// reader learns each header once.
const (
	headerRateLimit       = "RateLimit"
	headerRateLimitPolicy = "RateLimit-Policy"
	headerRetryAfter      = "Retry-After"
	headerReplayed        = "Idempotent-Replayed"
	headerLocation        = "Location"
	headerTraceID         = telemetry.TraceIDHeader
)

func sharedHeaders() map[string]*huma.Header {
	str := func(desc string, example any) *huma.Header {
		return &huma.Header{Description: desc, Schema: &huma.Schema{Type: "string", MaxLength: ptr(128)}, Example: example}
	}
	return map[string]*huma.Header{
		headerRateLimit: str("The rate-limit policy's state after this request (IETF RateLimit header fields draft): `r` requests remain, and the quota is full again in `t` seconds. "+
			"Sent on every answer of an operation that is rate limited.", `"poll";r=19;t=1`),
		headerRateLimitPolicy: str("The rate-limit policy that applies (IETF RateLimit header fields draft): a quota of `q` requests per window of `w` seconds, "+
			"per API key (per client network, its /24 or /64, for creating keys).", `"poll";q=20;w=2`),
		headerRetryAfter: {
			Description: "Seconds to wait before the next request, as delay-seconds (RFC 9110 §10.2.3): before the first poll on a 202, before the next poll while a job runs, " +
				"and before trying again on a 409, 429 or 503.",
			Schema:  &huma.Schema{Type: "integer", Format: "int32", Minimum: ptr(0.0), Maximum: ptr(86400.0)},
			Example: 3,
		},
		headerReplayed: {
			Description: "`true` when this answer is a replay of an earlier request with the same Idempotency-Key (the same job, not a new one); absent otherwise.",
			Schema:      &huma.Schema{Type: "string", Enum: []any{"true"}},
			Example:     "true",
		},
		headerTraceID: {
			Description: "The trace of this request (W3C Trace Context trace id, 32 hex digits), on every answer. A request that sent a `traceparent` continues that trace. " +
				"Quote it, with the job id, when you contact support: an operator finds the request, the job's worker runs and its webhook under it.",
			Schema:  &huma.Schema{Type: "string", Pattern: "^[0-9a-f]{32}$", MinLength: ptr(32), MaxLength: ptr(32)},
			Example: "4bf92f3577b34da6a3ce929d0e0e4736",
		},
		headerLocation: {
			Description: "Where to go next. On a 202: the status monitor to poll (the job's `status_url`). On the status monitor's 303: the result (the job's `result_url`). " +
				"On an inbox's answers: its delivery list. A relative reference, resolved against the request URL.",
			Schema:  &huma.Schema{Type: "string", Format: "uri-reference", MaxLength: ptr(256)},
			Example: "/v1/jobs/" + exampleJobID,
		},
	}
}

// finishSpec makes the spec tell the whole truth about the answers, after
// every operation is registered: the shared headers become references;
// every answer declares Trace-Id (the server's handler sets it); an
// operation under a rate-limit policy declares RateLimit and
// RateLimit-Policy on every answer the limiter sees (all but the 401 that
// authentication gives first); every 409, 429 and 503 declares Retry-After;
// every 202 of an operation honouring Idempotency-Key declares
// Idempotent-Replayed; and an operation that needs no key says so with an
// empty security requirement.
func (h *handlers) finishSpec(api huma.API) {
	oapi := api.OpenAPI()
	oapi.Components.Headers = sharedHeaders()
	ref := func(name string) *huma.Header { return &huma.Header{Ref: "#/components/headers/" + name} }
	for _, item := range oapi.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op == nil {
				continue
			}
			if op.Security == nil {
				op.Security = []map[string][]string{}
			}
			// Any operation can meet a fault of its own (a database that
			// does not answer): internal_error is a documented answer.
			if op.Responses["500"] == nil {
				h.documentProblems(api, op, problems.InternalError)
			}
			policy, _ := op.Metadata[policyKey].(string)
			idempotent, _ := op.Metadata[idempotentKey].(bool)
			for status, r := range op.Responses {
				if r.Headers == nil {
					r.Headers = map[string]*huma.Param{}
				}
				for name, hdr := range r.Headers {
					if _, shared := oapi.Components.Headers[name]; shared {
						r.Headers[name] = ref(name)
					} else if hdr.Description == "" && hdr.Schema != nil {
						// Huma puts a header field's doc on its schema, where
						// readers and renderers look last.
						hdr.Description, hdr.Schema.Description = hdr.Schema.Description, ""
					}
				}
				r.Headers[headerTraceID] = ref(headerTraceID)
				if policy != "" && status != "401" {
					r.Headers[headerRateLimit], r.Headers[headerRateLimitPolicy] = ref(headerRateLimit), ref(headerRateLimitPolicy)
				}
				switch status {
				case "429", "503":
					r.Headers[headerRetryAfter] = ref(headerRetryAfter)
				case "409":
					if idempotent { // idempotency_key_in_use: wait for the first request
						r.Headers[headerRetryAfter] = ref(headerRetryAfter)
					}
				case "202":
					if idempotent {
						r.Headers[headerReplayed] = ref(headerReplayed)
					}
				}
				if len(r.Headers) == 0 {
					r.Headers = nil
				}
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
