package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
)

// TestSpecDocumentsEverything checks that every operation carries what a
// newcomer needs, and that the 202s and 303 document their headers.
func TestSpecDocumentsEverything(t *testing.T) {
	ts := newSandbox(t, nil)
	spec := ts.s.API().OpenAPI()
	ops := 0
	for path, item := range spec.Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete} {
			if op == nil {
				continue
			}
			ops++
			name := method + " " + path
			if op.OperationID == "" || len(op.Tags) == 0 || op.Summary == "" || len(op.Description) < 60 {
				t.Errorf("%s: needs operationId, tag, summary and a real description", name)
			}
			for status, r := range op.Responses {
				if r.Description == "" {
					t.Errorf("%s %s: response without description", name, status)
				}
				if strings.HasPrefix(status, "4") || strings.HasPrefix(status, "5") {
					mt := r.Content["application/problem+json"]
					if mt == nil || len(mt.Examples) == 0 {
						t.Errorf("%s %s: problem response without application/problem+json examples", name, status)
					}
				}
			}
			if r := op.Responses["202"]; r != nil {
				for _, h := range []string{"Location", "Retry-After"} {
					if r.Headers[h] == nil {
						t.Errorf("%s 202: %s not documented", name, h)
					}
				}
				if mt := r.Content["application/json"]; mt == nil || len(mt.Examples) == 0 {
					t.Errorf("%s 202: no example", name)
				}
				// Operations that start a job take a body; a 202 on a
				// sub-resource (a webhook redelivery) need not.
				if (op.RequestBody != nil || !strings.Contains(path, "{")) && (op.RequestBody == nil || len(op.RequestBody.Content["application/json"].Examples) == 0) {
					t.Errorf("%s: no request examples", name)
				}
			}
		}
	}
	if ops < 8 {
		t.Errorf("only %d operations in the spec", ops)
	}
	get := spec.Paths["/v1/jobs/{id}"].Get
	if r := get.Responses["303"]; r == nil || r.Headers["Location"] == nil {
		t.Error("getJob: 303 with Location not documented")
	}
}

// TestSpecRequestExamplesAreAccepted sends every request example of the
// spec: each must be a valid request (202), so the examples a try-it console
// offers cannot drift from the validation rules.
// TestSpecRequestExamplesAreAccepted: every request example in the spec
// (the try-it scenario picker offers each) is accepted, and the job it
// starts ends as the example's name says.
func TestSpecRequestExamplesAreAccepted(t *testing.T) {
	// Many examples: more POSTs than the default start policy's burst.
	ts := newSandbox(t, nil, withoutLimits)
	key := ts.key(t)
	n := 0
	for path, item := range ts.s.API().OpenAPI().Paths {
		if item.Post == nil || item.Post.RequestBody == nil {
			continue
		}
		for name, ex := range item.Post.RequestBody.Content["application/json"].Examples {
			n++
			r := ts.do(t, http.MethodPost, path, key, ex.Value)
			if r.StatusCode != http.StatusAccepted {
				t.Errorf("POST %s with example %q: %d %s", path, name, r.StatusCode, r.body)
				continue
			}
			// The example does what its name says: a catalog code fails
			// the job with that code, anything else succeeds.
			polls := ts.mustFollow(t, key, r.Header.Get("Location"))
			last := polls[len(polls)-1]
			_, isCode := ts.s.catalog.Entry(name)
			switch {
			case isCode && last.StatusCode == http.StatusOK:
				if j := last.json(t); j["status"] != "failed" || j["error"].(map[string]any)["code"] != name {
					t.Errorf("POST %s with example %q (%s): job ended %v %v, want failed with %s", path, name, ex.Summary, j["status"], j["error"], name)
				}
			case isCode:
				t.Errorf("POST %s with example %q (%s): job succeeded, want failed with %s", path, name, ex.Summary, name)
			case last.StatusCode != http.StatusSeeOther:
				t.Errorf("POST %s with example %q (%s): job ended %s, want it to succeed", path, name, ex.Summary, last.body)
			}
		}
	}
	if n == 0 {
		t.Fatal("no request examples in the spec")
	}
}

// TestSpecDeclaresLimitsWhereTheyApply: an operation documents 429 exactly
// when a rate-limit policy applies to it, and then every answer the limiter
// sees declares RateLimit and RateLimit-Policy; every 429 and 503 declares
// Retry-After; and every header reference resolves.
func TestSpecDeclaresLimitsWhereTheyApply(t *testing.T) {
	ts := newSandbox(t, nil)
	spec := ts.s.API().OpenAPI()
	for path, item := range spec.Paths {
		for method, op := range map[string]*huma.Operation{"GET": item.Get, "POST": item.Post, "PUT": item.Put, "DELETE": item.Delete} {
			if op == nil {
				continue
			}
			name := method + " " + path
			policy, _ := op.Metadata["ratelimit"].(string)
			if _, has := op.Responses["429"]; has != (policy != "") {
				t.Errorf("%s: documents 429 = %v, but its rate-limit policy is %q", name, has, policy)
			}
			if op.Security == nil {
				t.Errorf("%s: no security requirement; an operation that needs no key says security: []", name)
			}
			for status, r := range op.Responses {
				for hname, h := range r.Headers {
					if ref, ok := strings.CutPrefix(h.Ref, "#/components/headers/"); h.Ref != "" && (!ok || spec.Components.Headers[ref] == nil) {
						t.Errorf("%s %s: header %s refers to %q, which is not in components/headers", name, status, hname, h.Ref)
					}
				}
				if policy != "" && status != "401" && (r.Headers["RateLimit"] == nil || r.Headers["RateLimit-Policy"] == nil) {
					t.Errorf("%s %s: rate limited, but RateLimit and RateLimit-Policy are not declared", name, status)
				}
				if (status == "429" || status == "503") && r.Headers["Retry-After"] == nil {
					t.Errorf("%s %s: Retry-After not declared", name, status)
				}
			}
		}
	}
}
