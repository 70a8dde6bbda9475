package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/helpers"
)

// committedSpec is the spec a client would read: the committed file, not
// the one in memory, so a test fails when the two disagree as well as
// when the sandbox sends something the spec does not declare.
const committedSpec = "../../../generated/openapi.json"

// Headers a response may carry that no operation documents: transport
// headers, and the security and CORS headers set around the whole API.
var undocumentedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Date": true, "Vary": true,
	"Connection": true, "Transfer-Encoding": true, "Content-Encoding": true,
	"Content-Security-Policy": true, "X-Content-Type-Options": true, "Referrer-Policy": true,
	"Access-Control-Allow-Origin": true, "Access-Control-Expose-Headers": true,
	"Access-Control-Allow-Credentials": true, "Access-Control-Allow-Methods": true,
	"Access-Control-Allow-Headers": true, "Access-Control-Max-Age": true,
}

// spec is the committed spec, read once: a validator for statuses, bodies
// and the values of declared headers, and the declared header names per
// path, method and status, which the validator does not check.
type spec struct {
	v        validator.Validator
	declared map[string]map[string]bool // "GET /v1/jobs/{id} 200" → canonical header names
	paths    []string
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	raw, err := os.ReadFile(committedSpec)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", committedSpec, err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", committedSpec, err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("building a validator for %s: %v", committedSpec, errs)
	}
	var d struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Headers map[string]json.RawMessage `json:"headers"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("reading the headers of %s: %w", committedSpec, err)
	}
	s := &spec{v: v, declared: map[string]map[string]bool{}}
	for p, item := range d.Paths {
		s.paths = append(s.paths, p)
		for method, op := range item {
			for status, r := range op.Responses {
				set := map[string]bool{}
				for name := range r.Headers {
					set[http.CanonicalHeaderKey(name)] = true
				}
				s.declared[strings.ToUpper(method)+" "+p+" "+status] = set
			}
		}
	}
	return s, nil
})

// template finds the spec path that urlPath is an instance of.
func (s *spec) template(urlPath string) (string, bool) {
	parts := strings.Split(urlPath, "/")
	for _, p := range s.paths {
		tp := strings.Split(p, "/")
		if len(tp) != len(parts) {
			continue
		}
		match := true
		for i := range tp {
			if tp[i] != parts[i] && !strings.HasPrefix(tp[i], "{") {
				match = false
				break
			}
		}
		if match {
			return p, true
		}
	}
	return "", false
}

// specValidation serialises the validator, which is not documented as safe
// for concurrent use, across parallel tests.
var specValidation sync.Mutex

// checkSpec validates one response against the committed spec: its status
// must be declared for the operation, every header it sends (beyond
// undocumentedHeaders, and Cache-Control, which every answer has) must be
// declared for that status, and the body must match the declared schema. Requests
// to paths the spec does not have (the 404s of unknown URLs) have no
// operation to check against and are skipped.
func checkSpec(t testing.TB, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	if p, ok := sp.template(req.URL.Path); ok {
		if declared, ok := sp.declared[req.Method+" "+p+" "+strconv.Itoa(res.StatusCode)]; ok {
			for name := range res.Header {
				if !declared[name] && !undocumentedHeaders[name] && name != "Cache-Control" {
					msgs = append(msgs, fmt.Sprintf("header %s is sent but not declared for this status", name))
				}
			}
		}
	}
	// The validator matches paths only; it must not see the test server's host.
	r := req.Clone(req.Context())
	r.Body = nil
	resp := *res
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/x-ndjson") {
		// The validator reads any media type naming json as one JSON value;
		// NDJSON is a sequence of them, declared as a string. Its status and
		// headers are still checked.
		resp.Body = io.NopCloser(strings.NewReader(`""`))
	}
	resp.Request = r
	specValidation.Lock()
	_, errs := sp.v.ValidateHttpResponse(r, &resp)
	specValidation.Unlock()
	for _, e := range errs {
		if e.ValidationType == helpers.PathValidation {
			return // no such operation in the spec
		}
		msg := e.Message
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		for _, se := range e.SchemaValidationErrors {
			msg += fmt.Sprintf("\n      %s: %s", se.FieldPath, se.Reason)
		}
		msgs = append(msgs, msg)
	}
	if len(msgs) == 0 {
		return
	}
	t.Errorf("spec: %s %s answered %d, which the committed spec does not describe:\n  - %s\n  body: %.400s",
		req.Method, req.URL.Path, res.StatusCode, strings.Join(msgs, "\n  - "), body)
}

// reportRecorder is a testing.TB that keeps what checkSpec reports.
type reportRecorder struct {
	testing.TB
	errs []string
}

func (r *reportRecorder) Helper() {}
func (r *reportRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckSpecCatchesWhatTheSpecDoesNotSay: the check every test response
// goes through must fail on an undeclared status, an undeclared header and
// a body the schema refuses, and pass a response the spec describes.
func TestCheckSpecCatchesWhatTheSpecDoesNotSay(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "http://sandbox.test/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9", nil)
	if err != nil {
		t.Fatal(err)
	}
	job := `{"id":"job_3u2k4v7qzbx6dcm5ey8f1hwra9","kind":"report","status":"processing","status_url":"/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9",` +
		`"percent_complete":40,"estimated_seconds_remaining":5,"created_at":"2026-01-31T09:30:00Z","updated_at":"2026-01-31T09:30:03Z",` +
		`"links":{"self":"/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"}}`
	res := func(status int, body string, header ...string) *http.Response {
		h := http.Header{"Content-Type": {"application/json"}, "Retry-After": {"2"}}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h, Request: req}
	}
	cases := []struct {
		name   string
		res    *http.Response
		body   string
		report string // "" when the spec describes the response
	}{
		{"described", res(200, job), job, ""},
		{"undeclared status", res(202, job), job, "202"},
		{"undeclared header", res(200, job, "X-Debug-Worker", "w1"), job, "X-Debug-Worker"},
		{"body the schema refuses", res(200, `{"id":42}`), `{"id":42}`, "schema"},
	}
	for _, c := range cases {
		r := &reportRecorder{TB: t}
		checkSpec(r, req, c.res, []byte(c.body))
		switch {
		case c.report == "" && len(r.errs) > 0:
			t.Errorf("%s: reported %v", c.name, r.errs)
		case c.report != "" && (len(r.errs) == 0 || !strings.Contains(strings.Join(r.errs, "\n"), c.report)):
			t.Errorf("%s: want a report naming %q, got %v", c.name, c.report, r.errs)
		}
	}
}
