package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/callbacks"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

const importPrefix = "imp_"

// maxImportBody is the body limit of createImport: room for 1,000 rows.
const maxImportBody = 256 << 10

// CreateImportInput starts an import.
type CreateImportInput struct {
	Body  ImportRequest
	input imports.Input
}

// ImportRequest is the body of createImport.
type ImportRequest struct {
	Rows        []ImportRow `json:"rows" minItems:"1" maxItems:"1000" doc:"The products to import: 1 to 1,000 rows."`
	CallbackURL string      `json:"callback_url,omitempty" maxLength:"2048" format:"uri" doc:"Where to POST a signed webhook when the import ends (import.complete, import.partial or import.failed). An absolute http(s) URL on a public address; private, loopback, link-local and metadata addresses are refused, when you send it and again when the sandbox connects. No public URL? Create a built-in inbox with POST /v1/sandbox/inboxes and pass its url." example:"https://example.com/webhooks/accepted"`
	Simulate    *Simulate   `json:"simulate,omitempty" doc:"Sandbox only: how this job should go. Leave it out for a normal run."`
}

// ImportRow is one product line of an import.
type ImportRow struct {
	SKU        string `json:"sku" minLength:"1" maxLength:"64" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]*$" doc:"Stock-keeping unit: letters, digits, dot, dash and underscore. SKUs starting with OLD- are discontinued in the warehouse, so their rows are rejected." example:"MUG-BLUE-350"`
	Name       string `json:"name" minLength:"1" maxLength:"200" doc:"Product name." example:"Blue mug, 350 ml"`
	Quantity   int    `json:"quantity" minimum:"-1000000" maximum:"1000000" doc:"Units received. A negative quantity would take stock below zero, so its row is rejected when the import runs." example:"24"`
	PriceCents int64  `json:"price_cents" minimum:"0" maximum:"100000000" doc:"Unit price in cents." example:"1290"`
}

// Resolve checks what a schema cannot, so a bad request is refused before
// any job exists. A blocked callback URL is kept aside: it has its own
// problem type.
func (in *CreateImportInput) Resolve(huma.Context) []error {
	sc, errs := in.Body.Simulate.resolve(imports.DefaultSeconds(len(in.Body.Rows)), "body.simulate")
	if len(in.Body.Rows) == 0 {
		errs = append(errs, &huma.ErrorDetail{Location: "body.rows", Message: "send at least one row"})
	}
	rows := make([]imports.Row, len(in.Body.Rows))
	for i, r := range in.Body.Rows {
		rows[i] = imports.Row(r)
	}
	in.input = imports.Input{Rows: rows, CallbackURL: in.Body.CallbackURL, Scenario: sc}
	return errs
}

// ImportAccepted is the 202 of createImport: the job, plus what an import
// adds.
type ImportAccepted struct {
	Job
	ImportID          string   `json:"import_id" maxLength:"64" pattern:"^imp_[a-z0-9]+$" doc:"The import's id; GET /v1/imports/{import_id} once the job succeeded." example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	EstimatedDuration int      `json:"estimated_duration" maximum:"60000" minimum:"0" doc:"Seconds the import is expected to take." example:"3"`
	WebhookEvents     []string `json:"webhook_events" maxItems:"3" maxLength:"15" doc:"The event types that may be POSTed to callback_url when the import ends (exactly one of them is); empty without a callback_url." example:"[\"import.complete\",\"import.partial\",\"import.failed\"]"`
	DeliveriesURL     string   `json:"deliveries_url,omitempty" maxLength:"128" format:"uri-reference" doc:"The webhook's delivery log, when there is a callback_url." example:"/v1/imports/imp_3u2k4v7qzbx6dcm5ey8f1hwra9/deliveries"`
}

// ImportAcceptedOutput is the 202 of createImport.
type ImportAcceptedOutput struct {
	Location     string `header:"Location" doc:"The status monitor: GET it to follow the job. The same URL as status_url."`
	RetryAfter   string `header:"Retry-After" doc:"Seconds to wait before the first poll."`
	CacheControl string `header:"Cache-Control" maxLength:"64" doc:"no-store."`
	Body         ImportAccepted
}

// ImportIDParam names an import.
type ImportIDParam struct {
	ID string `path:"id" maxLength:"64" pattern:"^imp_[a-z0-9]+$" doc:"The import id (import_id of the 202)." example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
}

// RejectedRow is a row that was not imported.
type RejectedRow = callbacks.RejectedRow

// Import is a finished import.
type Import struct {
	ID            string        `json:"id" maxLength:"64" pattern:"^imp_[a-z0-9]+$" example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	JobID         string        `json:"job_id" maxLength:"64" pattern:"^job_[a-z0-9]+$" example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Outcome       string        `json:"outcome" enum:"import.complete,import.partial,import.failed" doc:"The event type this import ended with: every row imported, some, or none." example:"import.partial"`
	TotalRows     int           `json:"total_rows" minimum:"1" maximum:"1000" example:"3"`
	Imported      int           `json:"imported" minimum:"0" maximum:"1000" example:"2"`
	RejectedCount int           `json:"rejected_count" minimum:"0" maximum:"1000" doc:"Rows rejected, on every page." example:"1"`
	Rejected      []RejectedRow `json:"rejected" maxItems:"1000" doc:"This page of the rejected rows, in request order: at most page_size of them (100 unless you ask for another number)."`
	NextPageToken string        `json:"next_page_token,omitempty" maxLength:"128" pattern:"^[A-Za-z0-9_-]+$" doc:"Pass it as page_token to get the next page of rejected rows; absent on the last page. Opaque: it stays valid as long as the import, and names a place in this import's rejections only." example:"aW1wXzN1Mms0djdxemJ4NmRjbTVleThmMWh3cmE5LjEwMQ"`
	CallbackURL   string        `json:"callback_url,omitempty" maxLength:"2048" format:"uri" example:"https://example.com/webhooks/accepted"`
	DeliveriesURL string        `json:"deliveries_url,omitempty" maxLength:"128" format:"uri-reference" doc:"The webhook's delivery log." example:"/v1/imports/imp_3u2k4v7qzbx6dcm5ey8f1hwra9/deliveries"`
}

// ImportOutput is a finished import.
type ImportOutput struct {
	Body Import
}

// Pages of an import's rejected rows (AIP-158 names).
const (
	defaultRejectedPage = 100
	maxRejectedPage     = imports.MaxRows
)

// GetImportInput names an import and a page of its rejected rows.
type GetImportInput struct {
	ImportIDParam
	PageSize  int    `query:"page_size" minimum:"1" maximum:"1000" default:"100" doc:"How many rejected rows to list at most: 1 to 1,000, 100 when left out."`
	PageToken string `query:"page_token" maxLength:"128" pattern:"^[A-Za-z0-9_-]+$" doc:"The next_page_token of the previous page, to get the page after it; leave it out for the first page."`
}

// tooManyRowsError refuses an import with more rows than an import takes,
// found before the body is parsed.
type tooManyRowsError struct{ rows int }

func (e tooManyRowsError) Error() string { return strconv.Itoa(e.rows) + " rows in one import" }

// pageTokenError: a page_token that is not one this import gave out.
type pageTokenError struct{}

func (pageTokenError) Error() string { return "page_token is not a page of this import" }

// pageToken is the opaque token of the page that starts at rejected row
// row (its position in the request, from 1) of import id. A result never
// changes once stored, so the same token names the same page for as long
// as the import is kept.
func pageToken(id string, row int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id + "." + strconv.Itoa(row)))
}

// pageStart reads a page token of import id back into its row.
func pageStart(id, token string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	tid, row, ok := strings.Cut(string(raw), ".")
	n, err := strconv.Atoi(row)
	if !ok || tid != id || err != nil || n < 1 || n > imports.MaxRows {
		return 0, false
	}
	return n, true
}

// limitRows refuses, before Huma parses and validates the body, an import
// whose rows array is longer than an import takes. Huma checks maxItems
// only after decoding every row and validating each one: 87,000 empty rows
// (the body limit holds 256 KiB of `{},`) made 348,000 errors and held about
// 100 MB per request. Counting the array's items costs a pass over the bytes
// and nothing per row. Anything else, including a body that is not JSON, is
// left to Huma.
func (h *handlers) limitRows(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		r := ctx.BodyReader()
		if r == nil {
			next(ctx)
			return
		}
		// One byte past the limit is enough for Huma to answer 413. A
		// failed read (a timeout) is handed on for Huma to answer too.
		body, err := io.ReadAll(io.LimitReader(r, maxImportBody+1))
		if err == nil && len(body) <= maxImportBody {
			if n := countRows(body); n > imports.MaxRows {
				writeProblem(api, ctx, h.problemFor(ctx.Context(), tooManyRowsError{n}, ctx.URL().Path))
				return
			}
		}
		rest := r
		if err != nil {
			rest = errReader{err}
		}
		next(&bodyContext{humaContext: ctx, body: io.MultiReader(bytes.NewReader(body), rest)})
	}
}

// bodyContext serves a body that was already read.
type bodyContext struct {
	humaContext
	body io.Reader
}

func (c *bodyContext) BodyReader() io.Reader { return c.body }

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// countRows counts the items of the rows array of a JSON object, matching
// the name the way encoding/json does (case-insensitively), without
// decoding a row: one pass over the bytes, no allocation. It answers 0 for
// a body that is not an object holding a rows array, and for a body that
// is not valid JSON at all: Huma then says what is wrong.
func countRows(body []byte) int {
	sc := scanner{b: body}
	if !sc.next('{') {
		return 0
	}
	most := 0
	for first := true; !sc.next('}'); first = false {
		if !first && !sc.next(',') {
			return 0
		}
		name, ok := sc.str(true)
		if !ok || !sc.next(':') {
			return 0
		}
		if !bytes.EqualFold(name, []byte("rows")) || !sc.next('[') {
			if !sc.value() {
				return 0
			}
			continue
		}
		n := 0
		for ; !sc.next(']'); n++ {
			if n > 0 && !sc.next(',') || !sc.value() {
				return 0
			}
		}
		most = max(most, n)
	}
	if most > imports.MaxRows && !json.Valid(body) {
		return 0
	}
	return most
}

// scanner walks JSON text without decoding it.
type scanner struct {
	b []byte
	i int
}

// next skips white space and consumes c if it comes next.
func (s *scanner) next(c byte) bool {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str consumes a string and returns its content, decoded when it holds
// an escape and decode is set (for a member name; values are skipped).
func (s *scanner) str(decode bool) ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start, escaped := s.i, false
	for ; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
			escaped = true
		case '"':
			s.i++
			if !escaped || !decode {
				return s.b[start : s.i-1], true
			}
			var v string
			err := json.Unmarshal(s.b[start-1:s.i], &v)
			return []byte(v), err == nil
		}
	}
	return nil, false
}

// value consumes one value of any depth.
func (s *scanner) value() bool {
	switch {
	case s.next('"'):
		s.i--
		_, ok := s.str(false)
		return ok
	case s.next('{'), s.next('['):
		for depth := 1; depth > 0; s.i++ {
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"':
				if _, ok := s.str(false); !ok {
					return false
				}
				s.i--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
		}
		return true
	}
	start := s.i
	for s.i < len(s.b) && strings.IndexByte("+-.0123456789Eaeflnrstu", s.b[s.i]) >= 0 {
		s.i++
	}
	return s.i > start
}

func (h *handlers) registerImports(api huma.API) {
	op := huma.Operation{
		OperationID: "createImport",
		Path:        "/v1/imports",
		Tags:        []string{"Imports"},
		Summary:     "Start a product import",
		Description: "Starts importing up to 1,000 product rows into the warehouse. Rows that fail the schema are refused at once (422, nothing is created); " +
			"checks only the warehouse can make happen while the job runs and reject single rows with a reason: a SKU repeated within the import, a discontinued SKU (prefix `OLD-`), " +
			"or a quantity that would take stock below zero. Poll the `Location` until it answers 303 to the result, or pass a `callback_url` and get a signed webhook " +
			"(`import.complete`, `import.partial` or `import.failed`, see the webhooks section) when the import ends.",
	}
	h.startOperation(api, &op)
	op.Metadata[replayKey] = replayer(func(h *handlers, j jobs.Job) (*AcceptedOutput, any) {
		var in imports.Input
		_ = jsonUnmarshal(j.Input, &in) // the engine stored what accept encoded
		out := h.importAccepted(h.accepted(j), in)
		return h.accepted(j), out.Body
	})
	op.MaxBodyBytes = maxImportBody
	op.Middlewares = append(op.Middlewares, h.limitRows(api))
	op.Description = strings.Replace(op.Description, "Bodies are limited to 64 KiB.", "Bodies are limited to 256 KiB.", 1)
	h.documentProblems(api, &op, problems.CallbackURLBlocked)
	op.Callbacks = map[string]map[string]*huma.PathItem{"importFinished": {"{$request.body#/callback_url}": h.importWebhookPathItem(api, "")}}
	huma.Register(api, op, h.createImport)
	post := registered(api, http.MethodPost, op.Path)

	get := huma.Operation{
		OperationID: "getImport",
		Method:      http.MethodGet,
		Path:        "/v1/imports/{id}",
		Tags:        []string{"Imports"},
		Summary:     "Get a finished import",
		Description: "The result of an import: how many rows were imported, and the rejected rows with the reason for each, a page at a time. This is where the status monitor's 303 points. " +
			"Before the job succeeded this answers 409 `result_not_ready`. An import whose every row was rejected still has a result here (its outcome is import.failed).\n\n" +
			"`rejected` lists at most `page_size` rows (100 unless you ask for up to 1,000); `rejected_count` counts them all. When there are more, pass `next_page_token` " +
			"as `page_token` to get the next page, with the same `page_size`; the last page has no `next_page_token`.",
		Security: []map[string][]string{{bearerScheme: {}}},
	}
	h.documentProblems(api, &get, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.ResultNotReady, problems.ValidationFailed)
	huma.Register(api, get, h.getImport)

	for _, ev := range imports.Events() {
		if api.OpenAPI().Webhooks == nil {
			api.OpenAPI().Webhooks = map[string]*huma.PathItem{}
		}
		api.OpenAPI().Webhooks[ev] = h.importWebhookPathItem(api, ev)
	}
	h.addRequestExamples(post, map[string]any{"rows": []map[string]any{
		{"sku": "MUG-BLUE-350", "name": "Blue mug, 350 ml", "quantity": 24, "price_cents": 1290},
		{"sku": "MUG-RED-350", "name": "Red mug, 350 ml", "quantity": 12, "price_cents": 1290},
	}})
	if mt := post.RequestBody.Content["application/json"]; mt != nil {
		mt.Examples["partial"] = &huma.Example{Summary: "Some rows are rejected while the import runs (a duplicate, a discontinued SKU, a negative quantity)", Value: map[string]any{"rows": []map[string]any{
			{"sku": "MUG-BLUE-350", "name": "Blue mug, 350 ml", "quantity": 24, "price_cents": 1290},
			{"sku": "MUG-BLUE-350", "name": "Blue mug, 350 ml (again)", "quantity": 6, "price_cents": 1290},
			{"sku": "OLD-MUG-300", "name": "Old mug", "quantity": 5, "price_cents": 990},
			{"sku": "MUG-RED-350", "name": "Red mug, 350 ml", "quantity": -3, "price_cents": 1290},
		}}}
	}
	if r := post.Responses["202"]; r != nil && r.Content["application/json"] != nil {
		ex := exampleJob("queued", 0, 3, "", 0)
		ex.Kind, ex.Links.Resource = "import", "/v1/imports/"+resourceIDFor(exampleJobID, importPrefix)
		r.Content["application/json"].Examples = map[string]*huma.Example{"queued": {Summary: "Accepted and queued, with a callback URL", Value: ImportAccepted{
			Job: ex, ImportID: resourceIDFor(exampleJobID, importPrefix), EstimatedDuration: 3,
			WebhookEvents: imports.Events(), DeliveriesURL: "/v1/imports/" + resourceIDFor(exampleJobID, importPrefix) + "/deliveries",
		}}}
	}
}

func (h *handlers) createImport(ctx context.Context, in *CreateImportInput) (*ImportAcceptedOutput, error) {
	if u := in.input.CallbackURL; u != "" {
		if h.Webhooks == nil {
			return nil, h.problemFor(ctx, callbackError{errNoWebhooks}, "/v1/imports")
		}
		if err := h.Webhooks.Service.CheckCallback(u); err != nil {
			return nil, h.problemFor(ctx, callbackError{err}, "/v1/imports")
		}
		// Naming a URL that answered 410 Gone is its owner saying it is
		// back. The webhook itself is stored when the job ends, in the
		// transaction that ends it (callbacks.Service.OnFinish).
		if err := h.Webhooks.Service.Enable(ctx, owner(ctx), u); err != nil {
			return nil, h.problemFor(ctx, err, "/v1/imports")
		}
	}
	plan, err := imports.Plan(in.input, h.Scale)
	acc, err := h.accept(ctx, imports.Kind, in.input, plan, err)
	if err != nil {
		return nil, err
	}
	return h.importAccepted(acc, in.input), nil
}

// importAccepted is the 202 of an import: the job's, and what an import adds.
func (h *handlers) importAccepted(acc *AcceptedOutput, in imports.Input) *ImportAcceptedOutput {
	expected := h.scaled(in.Scenario.Duration)
	out := &ImportAcceptedOutput{Location: acc.Location, RetryAfter: acc.RetryAfter, CacheControl: acc.CacheControl,
		Body: ImportAccepted{Job: acc.Body, ImportID: resourceIDFor(acc.Body.ID, importPrefix), WebhookEvents: []string{},
			EstimatedDuration: int(math.Ceil(expected.Seconds()))}}
	if in.CallbackURL != "" {
		out.Body.WebhookEvents = imports.Events()
		out.Body.DeliveriesURL = "/v1/imports/" + out.Body.ImportID + "/deliveries"
	}
	return out
}

func (h *handlers) getImport(ctx context.Context, in *GetImportInput) (*ImportOutput, error) {
	instance := "/v1/imports/" + in.ID
	j, err := h.resultJob(ctx, in.ID, importPrefix, imports.Kind, instance)
	if err != nil {
		return nil, err
	}
	from := 1
	if in.PageToken != "" {
		var ok bool
		if from, ok = pageStart(in.ID, in.PageToken); !ok {
			return nil, h.problemFor(ctx, pageTokenError{}, instance)
		}
	}
	r, err := resultJSON[imports.Result](j)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	var input struct {
		CallbackURL string `json:"callback_url"`
	}
	if err := jsonUnmarshal(j.Input, &input); err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	size := in.PageSize
	if size < 1 || size > maxRejectedPage {
		size = defaultRejectedPage
	}
	// Rejections are in request order, so a page is the ones from row on.
	start := sort.Search(len(r.Rejected), func(i int) bool { return r.Rejected[i].Row >= from })
	page := r.Rejected[start:min(start+size, len(r.Rejected))]
	out := &ImportOutput{Body: Import{ID: in.ID, JobID: j.ID, Outcome: r.Event(), TotalRows: r.TotalRows, Imported: r.Imported,
		RejectedCount: len(r.Rejected), Rejected: make([]RejectedRow, len(page)), CallbackURL: input.CallbackURL}}
	for i, rj := range page {
		out.Body.Rejected[i] = RejectedRow(rj)
	}
	if end := start + len(page); end < len(r.Rejected) {
		out.Body.NextPageToken = pageToken(in.ID, r.Rejected[end].Row)
	}
	if input.CallbackURL != "" {
		out.Body.DeliveriesURL = instance + "/deliveries"
	}
	return out, nil
}

// importWebhookPathItem documents the POST an import's webhook makes: as
// a top-level webhook of one event type, or (ev empty) as the callback of
// createImport, which may be any of them.
func (h *handlers) importWebhookPathItem(api huma.API, ev string) *huma.PathItem {
	schema := api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[ImportEvent](), true, "")
	summary := map[string]string{
		imports.EventComplete: "An import finished and every row was imported",
		imports.EventPartial:  "An import finished and some rows were rejected",
		imports.EventFailed:   "An import imported nothing: every row was rejected, or its job failed or was cancelled",
		"":                    "An import ended (import.complete, import.partial or import.failed)",
	}[ev]
	id := map[string]string{imports.EventComplete: "importComplete", imports.EventPartial: "importPartial", imports.EventFailed: "importFailed", "": "importFinished"}[ev]
	hdr := func(name, doc string, ex any, maxLength int, pattern string) *huma.Param {
		return &huma.Param{Name: name, In: "header", Required: true, Description: doc, Schema: &huma.Schema{Type: "string", MaxLength: &maxLength, Pattern: pattern}, Example: ex}
	}
	examples := map[string]*huma.Example{}
	for _, e := range imports.Events() {
		if ev == "" || ev == e {
			examples[strings.ReplaceAll(e, ".", "_")] = &huma.Example{Summary: e, Value: h.exampleImportEvent(e)}
		}
	}
	op := &huma.Operation{
		OperationID: id,
		// The sandbox sends it; the receiver checks the signature, not a key.
		Security: []map[string][]string{},
		Summary:  summary,
		Tags:     []string{"Webhooks"},
		Description: "Sent to the import's `callback_url` once, when the import ends, following Standard Webhooks 1.0. The body is `{type, timestamp, data}` and always under 20 kB " +
			"(the first 20 rejected rows are included; all of them are at `result_url`).\n\n" +
			"**Verify before trusting it**: compute HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}` with the base64-decoded part of your secret after `whsec_` " +
			"(GET /v1/webhooks/secret), base64 it, and compare it in constant time with each `v1,` entry of `webhook-signature`. Reject timestamps more than 5 minutes from your clock, " +
			"and drop a `webhook-id` you have already handled: retries and redeliveries reuse it.\n\n" +
			"**Answer fast with a 2xx**; anything else is a failure. Failures are retried on the Standard Webhooks schedule (immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h, " +
			"each ±10%; compressed by the sandbox's time scale), honouring a longer `Retry-After`. Redirects are not followed. **410 Gone** disables the URL for this API key until a redelivery or a new import names it again. " +
			"Every attempt is listed at GET /v1/imports/{id}/deliveries.",
		Parameters: []*huma.Param{
			hdr("webhook-id", "The message id: the same on every attempt and redelivery of this event. Use it to drop duplicates.", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
				64, "^msg_[A-Za-z0-9]+$"),
			hdr("webhook-timestamp", "When this attempt was signed, in Unix seconds; new on each attempt.", "1769851805", 20, "^[0-9]+$"),
			hdr("webhook-signature", "Space-separated signatures `v1,<base64 HMAC-SHA256>`, one per active secret (two while a rotated-out secret is in its grace window).", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
				256, "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"),
		},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{"application/json": {Schema: schema, Examples: examples}}},
		Responses: map[string]*huma.Response{
			"200": {Description: "Received (any 2xx does; the body is ignored)."},
			"410": {Description: "Gone: the URL is disabled for this API key; no more webhooks are sent to it until it is re-enabled."},
		},
	}
	return &huma.PathItem{Post: op}
}

func (h *handlers) exampleImportEvent(ev string) ImportEvent {
	id := resourceIDFor(exampleJobID, importPrefix)
	e := ImportEvent{Type: ev, Timestamp: exampleStart.Add(3 * time.Second), Data: ImportEventData{
		ImportID: id, JobID: exampleJobID, Status: "succeeded", TotalRows: 3, Imported: 3, Rejected: []RejectedRow{},
		ResultURL: "https://sandbox.example.com/v1/imports/" + id, StatusURL: "https://sandbox.example.com" + statusURL(exampleJobID),
	}}
	switch ev {
	case imports.EventPartial:
		e.Data.Imported, e.Data.RejectedCount = 2, 1
		e.Data.Rejected = []RejectedRow{{Row: 3, SKU: "OLD-MUG-300", Reason: "SKU OLD-MUG-300 is discontinued in the warehouse (SKUs starting with OLD- are); remove the row or use the product's current SKU"}}
	case imports.EventFailed:
		e.Data.Status, e.Data.Imported, e.Data.ResultURL = "failed", 0, ""
		e.Data.Error = h.exampleFailure("The warehouse did not answer within 30 s.")
	}
	return e
}
