// Package problems is the sandbox's error catalog: every RFC 9457 problem the
// API can return, immediately or later inside a failed job, is an Entry here.
//
// One catalog serves three readers: the HTTP layer (which turns domain errors
// into problems in exactly one place), the spec (each operation documents the
// problems it can return, with examples), and the docs site (generated/errors.json
// becomes the error page, one anchor per code, so every problem's `type` URI
// opens its own entry).
package problems

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// When says at which moment a problem reaches the client.
type When string

const (
	// Immediate problems are the HTTP response itself: the request was refused
	// and nothing was created.
	Immediate When = "immediate"
	// Deferred problems appear later, as the `error` of a job whose status is
	// `failed`, after the API already answered 202.
	Deferred When = "deferred"
)

// Entry describes one problem type.
type Entry struct {
	Code        string         `json:"code"`
	Type        string         `json:"type"`
	Status      int            `json:"status"`
	Title       string         `json:"title"`
	When        When           `json:"when"`
	Retryable   bool           `json:"retryable"`
	Description string         `json:"description"`
	Action      string         `json:"action"`
	Example     *Problem       `json:"example"`
	Scenario    map[string]any `json:"scenario,omitempty"`
}

// Catalog is the set of entries, with their `type` URIs resolved against the
// docs site's base URL.
type Catalog struct {
	base    string
	entries []Entry
	byCode  map[string]int
}

// The codes, as constants so that a typo is a compile error.
const (
	MalformedRequest     = "malformed_request"
	ValidationFailed     = "validation_failed"
	Unauthorized         = "unauthorized"
	NotFound             = "not_found"
	MethodNotAllowed     = "method_not_allowed"
	RequestTooLarge      = "request_too_large"
	UnsupportedMediaType = "unsupported_media_type"
	JobExpired           = "job_expired"
	JobAlreadyFinished   = "job_already_finished"
	ResultNotReady       = "result_not_ready"
	QueueFull            = "queue_full"
	RateLimited          = "rate_limited"
	InternalError        = "internal_error"

	ShuttingDown          = "shutting_down"
	DatabaseUnavailable   = "database_unavailable"
	TooManyJobs           = "too_many_jobs"
	JobInterrupted        = "job_interrupted"
	IdempotencyKeyInvalid = "idempotency_key_invalid"
	IdempotencyKeyInUse   = "idempotency_key_in_use"
	IdempotencyKeyReused  = "idempotency_key_reused"

	JobStalled          = "job_stalled"
	UpstreamUnavailable = "upstream_unavailable"
	SourceDataInvalid   = "source_data_invalid"
	ResultTooLarge      = "result_too_large"
)

// Codes of imports, webhooks and the built-in inbox.
const (
	CallbackURLBlocked     = "callback_url_blocked"
	WebhookNotSent         = "webhook_not_sent"
	WebhookDeliveryPending = "webhook_delivery_pending"
	InboxSimulatedFailure  = "inbox_simulated_failure"
)

func entries() []Entry {
	return []Entry{
		{Code: MalformedRequest, Status: http.StatusBadRequest, Title: "Request could not be parsed", When: Immediate,
			Description: "The request body is not valid JSON, or a parameter could not be read as its declared type. No job was created.",
			Action:      "Send a JSON body that matches the operation's schema, with `Content-Type: application/json`. The `errors` list points at the part that failed."},
		{Code: ValidationFailed, Status: http.StatusUnprocessableEntity, Title: "Request failed validation", When: Immediate,
			Description: "The body parsed, but a field is missing, has the wrong type, is out of range, or is not part of the schema. No job was created.",
			Action:      "Fix every field listed in `errors` (each has a `location` such as `body.from` and a message) and send the request again. At most 20 are listed; when there were more, `errors_omitted` counts the others, which the next attempt shows."},
		{Code: Unauthorized, Status: http.StatusUnauthorized, Title: "Missing or unknown API key", When: Immediate,
			Description: "The request has no `Authorization: Bearer <key>` header, or the key is not one this sandbox issued.",
			Action:      "Get a key with `POST /v1/sandbox/keys` and send it as `Authorization: Bearer <key>` on every call."},
		{Code: NotFound, Status: http.StatusNotFound, Title: "Resource not found", When: Immediate,
			Description: "Nothing exists at this URL for your API key. Jobs and results belong to the key that created them; another key gets this same answer, so ids cannot be probed.",
			Action:      "Check the id and that you use the same API key that started the job."},
		{Code: MethodNotAllowed, Status: http.StatusMethodNotAllowed, Title: "Method not allowed on this URL", When: Immediate,
			Description: "The URL exists, but not for this HTTP method.",
			Action:      "Use one of the methods in the `Allow` response header."},
		{Code: RequestTooLarge, Status: http.StatusRequestEntityTooLarge, Title: "Request body too large", When: Immediate,
			Description: "The body is larger than this operation accepts. No job was created.",
			Action:      "Send a smaller body; the limit is in the operation's description."},
		{Code: UnsupportedMediaType, Status: http.StatusUnsupportedMediaType, Title: "Unsupported content type", When: Immediate,
			Description: "The body was sent with a `Content-Type` this operation does not read.",
			Action:      "Send the body as JSON with `Content-Type: application/json`."},
		{Code: JobExpired, Status: http.StatusGone, Title: "Job expired", When: Immediate,
			Description: "The job finished longer ago than the retention window (24 hours by default), so its status and result were deleted.",
			Action:      "Start a new job. Fetch results within the window given by the job's `expires_at`."},
		{Code: JobAlreadyFinished, Status: http.StatusConflict, Title: "Job already finished", When: Immediate,
			Description: "A job can be cancelled only while it is `queued` or `processing`; this one already reached a terminal state, which never changes.",
			Action:      "Read the job's final state with `GET` on its status URL instead."},
		{Code: ResultNotReady, Status: http.StatusConflict, Title: "Result not ready", When: Immediate,
			Description: "The resource exists but the job that produces it has not succeeded (yet, or at all).",
			Action:      "Poll the job's status URL; it answers 303 See Other with the result's location once the result is ready."},
		{Code: QueueFull, Status: http.StatusServiceUnavailable, Title: "Work queue is full", When: Immediate, Retryable: true,
			Description: "The sandbox accepts a job only when it has room to finish it. Its queue is full right now, so nothing was created.",
			Action:      "Wait the number of seconds in `Retry-After`, then send the same request again (with the same `Idempotency-Key` if you used one)."},
		{Code: RateLimited, Status: http.StatusTooManyRequests, Title: "Too many requests", When: Immediate, Retryable: true,
			Description: "This API key (or, for key creation, this client address) sent more requests than its policy allows.",
			Action:      "Wait the number of seconds in `Retry-After`. While polling, honour the `Retry-After` of each status response instead of polling in a tight loop."},
		{Code: ShuttingDown, Status: http.StatusServiceUnavailable, Title: "Sandbox is shutting down", When: Immediate, Retryable: true,
			Description: "The sandbox is restarting: it lets the jobs it has finish but accepts no new ones. Nothing was created. Status monitors keep answering until it stops.",
			Action:      "Wait the number of seconds in `Retry-After` and send the same request again (with the same `Idempotency-Key` if you used one)."},
		{Code: DatabaseUnavailable, Status: http.StatusServiceUnavailable, Title: "Database unavailable", When: Immediate, Retryable: true,
			Description: "This copy of the sandbox cannot reach its database, so it is not ready to serve. `GET /readyz` answers with this problem, so a load balancer sends requests to another copy meanwhile.",
			Action:      "Retry after the seconds in `Retry-After`; if you run the sandbox, check the database named by `-database`."},
		{Code: TooManyJobs, Status: http.StatusTooManyRequests, Title: "Too many unfinished jobs", When: Immediate, Retryable: true,
			Description: "This API key already has as many queued or processing jobs as the sandbox allows one key, so that one client cannot fill the queue for everyone. Nothing was created.",
			Action:      "Wait for some of your jobs to finish (or cancel ones you no longer need), then retry after the seconds in `Retry-After`."},
		{Code: IdempotencyKeyInvalid, Status: http.StatusBadRequest, Title: "Invalid Idempotency-Key", When: Immediate,
			Description: "The Idempotency-Key header is empty, longer than 255 characters, or holds characters other than printable ASCII. Nothing was created.",
			Action:      "Send 1 to 255 printable ASCII characters; a random UUID per logical request is the usual choice."},
		{Code: IdempotencyKeyInUse, Status: http.StatusConflict, Title: "Idempotency-Key in use", When: Immediate, Retryable: true,
			Description: "An earlier request with this Idempotency-Key is still being handled, so this one was not started (it would have become a duplicate).",
			Action:      "Wait for the first request's answer; a retry with the same key after that replays it."},
		{Code: IdempotencyKeyReused, Status: http.StatusUnprocessableEntity, Title: "Idempotency-Key reused with a different request", When: Immediate,
			Description: "This Idempotency-Key was already used for a request with another body or URL. Replaying the first answer would be wrong, and starting a new job would break the key's promise.",
			Action:      "Use a new key for each new request; reuse a key only to retry exactly the same request."},
		{Code: InternalError, Status: http.StatusInternalServerError, Title: "Internal error", When: Deferred, Retryable: true,
			Description: "The worker running the job crashed. As a response to a request this means a bug in the sandbox; inside a failed job it is the deferred failure most services meet sooner or later.",
			Action:      "Start the job again. If it keeps failing, send the job id to support: it identifies the run in the server's logs.",
			Scenario:    map[string]any{"outcome": "crash"}},
		{Code: JobInterrupted, Status: http.StatusServiceUnavailable, Title: "Job interrupted", When: Deferred, Retryable: true,
			Description: "The job's worker was interrupted (its process crashed or was killed, or its database failed) more often than the sandbox retries it, so the job was failed rather than left pending forever. A restart alone does not do this: jobs are kept in the database and go on where they left off.",
			Action:      "Start the job again; the request itself was fine."},
		{Code: JobStalled, Status: http.StatusGatewayTimeout, Title: "Job stopped reporting progress", When: Deferred, Retryable: true,
			Description: "The worker stopped reporting progress for more than twice the job's expected duration, so the server's dead-man's switch failed the job rather than leave it pending forever.",
			Action:      "Start the job again. Repeated stalls on one input are worth reporting with the job id.",
			Scenario:    map[string]any{"outcome": "stall"}},
		{Code: UpstreamUnavailable, Status: http.StatusBadGateway, Title: "A dependency was unavailable", When: Deferred, Retryable: true,
			Description: "A system the job depends on did not answer while the job ran. The request itself was fine.",
			Action:      "Retry with exponential backoff (for example 30 s, 1 min, 2 min, capped), sending the same request.",
			Scenario:    map[string]any{"outcome": "fail", "fail_code": UpstreamUnavailable}},
		{Code: SourceDataInvalid, Status: http.StatusUnprocessableEntity, Title: "Source data failed validation", When: Deferred,
			Description: "The request passed validation, but the data the job read while running did not (for example a period with no data). Only the job could find this out.",
			Action:      "Do not retry unchanged: read `detail`, change the request (for example the period), and start a new job.",
			Scenario:    map[string]any{"outcome": "fail", "fail_code": SourceDataInvalid}},
		{Code: ResultTooLarge, Status: http.StatusRequestEntityTooLarge, Title: "Result too large", When: Deferred,
			Description: "The result grew past the size the sandbox will store, which is known only once the job runs.",
			Action:      "Do not retry unchanged: narrow the request (a shorter date range) and start a new job.",
			Scenario:    map[string]any{"outcome": "fail", "fail_code": ResultTooLarge}},

		// Imports, webhooks and the built-in inbox.
		{Code: CallbackURLBlocked, Status: http.StatusUnprocessableEntity, Title: "Callback URL not allowed", When: Immediate,
			Description: "The callback_url points at an address the sandbox will not connect to: loopback (127.0.0.1, localhost), a private network (10.0.0.0/8, 192.168.0.0/16 …), link-local (including the 169.254.169.254 cloud metadata service) or another reserved range. Nothing was created. The same check runs again when a webhook is sent, on the address the host name resolves to then.",
			Action:      "Use a public http(s) URL, or create a built-in inbox with `POST /v1/sandbox/inboxes` and pass its `url`. Running the sandbox yourself? Start it with `-allow-private-callbacks` to reach local receivers."},
		{Code: WebhookNotSent, Status: http.StatusConflict, Title: "No webhook to redeliver", When: Immediate,
			Description: "A redelivery needs a webhook that was already sent: this import has no callback_url, or its job has not finished yet (the webhook is sent when it ends).",
			Action:      "Wait for the job to end (poll its status URL), or start an import with a `callback_url`."},
		{Code: WebhookDeliveryPending, Status: http.StatusConflict, Title: "Webhook delivery still under way", When: Immediate, Retryable: true,
			Description: "This webhook is still being delivered: an attempt is in flight or a retry is scheduled, so a redelivery would race it.",
			Action:      "Read the delivery log (`GET /v1/imports/{id}/deliveries`) and redeliver once its last attempt is final."},
		{Code: InboxSimulatedFailure, Status: http.StatusServiceUnavailable, Title: "Inbox told to fail", When: Immediate, Retryable: true,
			Description: "A built-in inbox answered a delivery with the status it was told to answer with (`PUT /v1/sandbox/inboxes/{id}/behaviour`), so that you can watch the sender retry. The response's status is that one (503 is only the usual choice); the delivery was stored anyway.",
			Action:      "Nothing to fix: this is the behaviour you asked for. It ends after `count` deliveries, or set `count` to 0."},
	}
}

// New builds the catalog with `type` URIs of the form `<docsBase>/errors#<code>`.
func New(docsBase string) *Catalog {
	base := strings.TrimRight(docsBase, "/") + "/errors"
	c := &Catalog{base: base, entries: entries(), byCode: map[string]int{}}
	for i := range c.entries {
		e := &c.entries[i]
		e.Type = base + "#" + e.Code
		c.byCode[e.Code] = i
		e.Example = c.New(e.Code, exampleDetail(e.Code))
	}
	return c
}

func exampleDetail(code string) string {
	switch code {
	case ValidationFailed:
		return "body.format: value must be one of \"csv\", \"ndjson\""
	case NotFound:
		return "No job job_3u2k4v7qzbx6dcm5ey8f1hwra9 for this API key."
	default:
		return ""
	}
}

// Entries returns the entries in catalog order.
func (c *Catalog) Entries() []Entry { return slices.Clone(c.entries) }

// Entry returns one entry by code.
func (c *Catalog) Entry(code string) (Entry, bool) {
	i, ok := c.byCode[code]
	if !ok {
		return Entry{}, false
	}
	return c.entries[i], true
}

// Deferred returns the codes a running job can fail with, in catalog order.
func (c *Catalog) Deferred() []string {
	var codes []string
	for _, e := range c.entries {
		if e.When == Deferred {
			codes = append(codes, e.Code)
		}
	}
	return codes
}

// New returns the problem for code. An unknown code is a programming error;
// it becomes an internal_error problem so that nothing outside the catalog is
// ever sent, and the detail names the code so tests catch it.
func (c *Catalog) New(code, detail string) *Problem {
	e, ok := c.Entry(code)
	if !ok {
		e, _ = c.Entry(InternalError)
		detail = fmt.Sprintf("unknown problem code %q", code)
	}
	return &Problem{Type: e.Type, Title: e.Title, Status: e.Status, Detail: detail, Code: e.Code}
}

// MarshalJSON writes the catalog as generated/errors.json.
func (c *Catalog) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Base     string  `json:"base"`
		Problems []Entry `json:"problems"`
	}{c.base, c.entries})
}

// Problem is an RFC 9457 problem details object. The extension members
// (`code`, `errors`, `errors_omitted`, `job_id`) are documented in the error
// catalog. It is written within the bounds in bounds.go.
type Problem struct {
	Type          string        `json:"type" format:"uri" doc:"URI of this problem's entry in the error catalog; open it in a browser for the explanation and what to do." example:"http://localhost:8080/errors#validation_failed"`
	Title         string        `json:"title" maxLength:"100" doc:"Short summary of the problem type; the same for every occurrence of this type." example:"Request failed validation"`
	Status        int           `json:"status" minimum:"100" maximum:"599" doc:"The HTTP status code this problem is (or, inside a failed job, would be) sent with." example:"422"`
	Detail        string        `json:"detail,omitempty" maxLength:"1024" doc:"What went wrong in this occurrence, in words a person can act on."`
	Instance      string        `json:"instance,omitempty" maxLength:"512" doc:"The request path or job that this occurrence is about."`
	Code          string        `json:"code" maxLength:"64" pattern:"^[a-z][a-z0-9_]*$" doc:"The catalog code: the fragment of type. Stable: safe to branch on in code." example:"validation_failed"`
	JobID         string        `json:"job_id,omitempty" maxLength:"64" doc:"The job this problem belongs to. Quote it when you contact support."`
	Errors        []*FieldError `json:"errors,omitempty" maxItems:"20" doc:"For validation problems: one entry per invalid field, the first 20 when there are more (errors_omitted counts the others)."`
	ErrorsOmitted int           `json:"errors_omitted,omitempty" minimum:"1" maximum:"10000000" doc:"How many errors there were beyond the 20 listed in errors; present only when some were left out. Fix the listed ones and send the request again to see the others." example:"3980"`
	TraceID       string        `json:"trace_id,omitempty" minLength:"32" maxLength:"32" pattern:"^[0-9a-f]{32}$" doc:"The trace of the request that got this answer, as in its Trace-Id header. Quote it when you contact support." example:"4bf92f3577b34da6a3ce929d0e0e4736"`

	header http.Header
}

// FieldError locates one invalid part of a request.
type FieldError struct {
	Location string `json:"location,omitempty" maxLength:"160" doc:"Where the error is, for example body.from or header.Idempotency-Key." example:"body.format"`
	Message  string `json:"message" maxLength:"256" doc:"What is wrong with it." example:"expected value to be one of \"csv, ndjson\""`
	Value    any    `json:"value,omitempty" doc:"The value that was sent, when it helps: numbers and booleans as sent, strings cut to 200 bytes with an ellipsis, objects and arrays summarised by their size (\"object with 4000 fields\", \"array of 87000 items\")."`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Code + ": " + p.Detail
	}
	return p.Code + ": " + p.Title
}

// GetStatus lets Huma use the problem as the HTTP status.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes every problem response application/problem+json (RFC 9457 §3).
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

// WithHeader adds a response header (Retry-After, Allow, WWW-Authenticate …)
// to send with the problem.
func (p *Problem) WithHeader(name, value string) *Problem {
	if p.header == nil {
		p.header = http.Header{}
	}
	p.header.Set(name, value)
	return p
}

// GetHeaders lets Huma send the headers added with WithHeader.
func (p *Problem) GetHeaders() http.Header { return p.header }

// WithJob records the job the problem is about.
func (p *Problem) WithJob(id string) *Problem { p.JobID = id; return p }

// WithInstance records the request path or job URL the problem is about.
func (p *Problem) WithInstance(s string) *Problem { p.Instance = s; return p }
