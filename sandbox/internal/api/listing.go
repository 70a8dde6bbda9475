package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Lists follow Google AIP-158 (pagination) and a small part of AIP-160
// (filtering): page_size and page_token in, next_page_token out (empty on
// the last page); a filter is a query parameter per field, repeated or
// comma-separated, whose values are alternatives (OR), while different
// fields must all match (AND).

// Page sizes of the lists.
const (
	defaultListPage = 20
	maxListPage     = jobs.MaxListLimit
)

// listTokenError: a page_token this list did not give out, or gave out
// for other filters.
type listTokenError struct{ why string }

func (e listTokenError) Error() string { return "page_token " + e.why }

// Page tokens are opaque to clients: the base64url of a version byte, the
// cursor (a time in Unix nanoseconds and an id: the last item of the
// previous page), a digest of the filters it was given for, and a digest
// binding all of it to the list and the API key it was given to. A token
// changed by hand, another key's token, or a token of another list or
// other filters is refused with a 422 that says which, rather than read
// as some other place. A forged token could only name a place in the
// caller's own list: the query reads nothing else.
const pageTokenVersion = 1

func pageSum(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// encodePageToken is the token of the page after (at, id) of list, for
// owner, under filter (a canonical string of the filters).
func encodePageToken(list, owner, filter string, at time.Time, id string) string {
	raw := []byte{pageTokenVersion}
	raw = binary.BigEndian.AppendUint64(raw, uint64(sqldb.Nanos(at)))
	raw = append(raw, pageSum(filter)[:4]...)
	raw = append(raw, id...)
	raw = append(raw, pageSum(list, owner, string(raw))[:8]...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodePageToken reads a token of encodePageToken back, or says why it
// cannot be used; validID checks the id it carries.
func decodePageToken(list, owner, filter, token string, validID func(string) bool) (time.Time, string, error) {
	const head, filterLen, sumLen = 1 + 8, 4, 8
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < head+filterLen+1+sumLen || raw[0] != pageTokenVersion {
		return time.Time{}, "", listTokenError{"is not a page token of this list (it may have been cut short or changed)"}
	}
	body, sum := raw[:len(raw)-sumLen], raw[len(raw)-sumLen:]
	if !bytes.Equal(sum, pageSum(list, owner, string(body))[:sumLen]) {
		return time.Time{}, "", listTokenError{"was not given out by this list to this API key, or was changed"}
	}
	if !bytes.Equal(body[head:head+filterLen], pageSum(filter)[:filterLen]) {
		return time.Time{}, "", listTokenError{"was given for other filters: send the same status and kind with it as with the first page"}
	}
	id := string(body[head+filterLen:])
	if !validID(id) {
		return time.Time{}, "", listTokenError{"is not a page token of this list"}
	}
	return sqldb.Time(int64(binary.BigEndian.Uint64(body[1:head]))), id, nil
}

// splitValues reads a repeated, comma-separated filter into its distinct
// values, sorted (so that their order does not change the filter).
func splitValues(in []string) []string {
	var out []string
	for _, v := range in {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ListJobsInput selects a page of the caller's jobs.
type ListJobsInput struct {
	Status []string `query:"status,explode" nullable:"false" maxItems:"5" maxLength:"64" pattern:"^(queued|processing|succeeded|failed|canceled)(,(queued|processing|succeeded|failed|canceled))*$" patternDescription:"one or more of queued, processing, succeeded, failed and canceled, separated by commas" doc:"Only jobs in one of these statuses: repeat the parameter (status=failed&status=canceled) or separate values with commas (status=failed,canceled). All statuses when left out."`
	Kind   []string `query:"kind,explode" nullable:"false" maxItems:"3" maxLength:"32" pattern:"^(report|export|import)(,(report|export|import))*$" patternDescription:"one or more of report, export and import, separated by commas" doc:"Only jobs of one of these kinds, repeated or comma-separated like status. All kinds when left out. With status too, a job must match both."`
	ListPage
}

// ListPage is the paging of a list (AIP-158).
type ListPage struct {
	PageSize  int    `query:"page_size" minimum:"1" maximum:"100" default:"20" doc:"How many items a page holds at most: 1 to 100, 20 when left out. Whether more follow is what next_page_token says, not the count."`
	PageToken string `query:"page_token" maxLength:"128" pattern:"^[A-Za-z0-9_-]+$" doc:"The next_page_token of the previous page, to get the page after it; leave it out for the first page. Send the same filters with it as with the first page (page_size may change)."`
}

func (p ListPage) size() int {
	if p.PageSize < 1 || p.PageSize > maxListPage {
		return defaultListPage
	}
	return p.PageSize
}

// JobList is a page of the caller's jobs.
type JobList struct {
	Jobs          []Job  `json:"jobs" maxItems:"100" doc:"This page of jobs, newest first (by created_at, then id): each the same object GET /v1/jobs/{id} answers."`
	NextPageToken string `json:"next_page_token" maxLength:"128" pattern:"^[A-Za-z0-9_-]*$" doc:"Pass it as page_token, with the same filters, to get the next page; empty on the last page. Opaque: do not build or change one." example:"AQAAGNr2dxkAAAAAr4r9iGpvYl8zdTJrNHY3cXpieDZkY201ZXk4ZjFod3JhOdk4zl9KTPd0"`
}

// JobListOutput answers a page of jobs.
type JobListOutput struct {
	CacheControl string `header:"Cache-Control" maxLength:"64" doc:"Always no-store: the list changes as jobs do."`
	Body         JobList
}

func (h *handlers) registerJobList(api huma.API) {
	op := huma.Operation{
		OperationID: "listJobs",
		Method:      http.MethodGet,
		Path:        "/v1/jobs",
		Tags:        []string{"Jobs"},
		Summary:     "List your jobs",
		Description: "Every job this API key started that is still kept (not past its `expires_at`), newest first: the way back to a job whose id you lost, " +
			"and with `status=failed` the jobs that failed, each with its `error` from the error catalog. Other keys' jobs never appear.\n\n" +
			"Filter with `status` and `kind`: repeat a parameter or separate its values with commas; values of one parameter are alternatives, and both parameters must match. " +
			"Pages follow Google AIP-158: at most `page_size` jobs (20 unless you ask for 1 to 100); when more follow, `next_page_token` is not empty: " +
			"pass it as `page_token`, with the same filters, for the next page. Pages are cut by position in the list (created_at, then id), not by offset, " +
			"so jobs started while you page neither repeat nor push others onto the next page. A job's status may change between pages: a filtered list shows it as it was when its page was read.\n\n" +
			"Rate limited with the polling policy, like GET /v1/jobs/{id}.",
		Security:      []map[string][]string{{bearerScheme: {}}},
		DefaultStatus: http.StatusOK,
		Metadata:      map[string]any{policyKey: PolicyPoll},
	}
	h.documentProblems(api, &op, problems.Unauthorized, problems.RateLimited, problems.ValidationFailed)
	huma.Register(api, op, h.listJobs)
	// patternDescription words Huma's validation message ("expected string
	// to be one or more of …"), which it has already composed; it is no
	// OpenAPI keyword, so the spec does not carry it.
	for _, p := range registered(api, http.MethodGet, op.Path).Parameters {
		if p.Schema != nil && p.Schema.Items != nil {
			p.Schema.Items.PatternDescription = ""
		}
	}
	if r := registered(api, http.MethodGet, op.Path).Responses["200"]; r != nil && r.Content["application/json"] != nil {
		failed := exampleJob("failed", 60, 0, "aggregating by day (3 of 5)", 5)
		failed.Error = h.exampleFailure("The orders database did not answer within 30 s.")
		r.Content["application/json"].Examples = map[string]*huma.Example{
			"failed": {Summary: "GET /v1/jobs?status=failed: the jobs that failed, with their errors", Value: JobList{Jobs: []Job{failed}, NextPageToken: ""}},
			"page": {Summary: "A first page with more to follow", Value: JobList{
				Jobs:          []Job{exampleJob("processing", 40, 5, "aggregating by day (3 of 5)", 3)},
				NextPageToken: "AQAAGNr2dxkAAAAAr4r9iGpvYl8zdTJrNHY3cXpieDZkY201ZXk4ZjFod3JhOdk4zl9KTPd0",
			}},
		}
	}
}

func (h *handlers) listJobs(ctx context.Context, in *ListJobsInput) (*JobListOutput, error) {
	const list = "/v1/jobs"
	statuses, kinds := splitValues(in.Status), splitValues(in.Kind)
	filter := "status=" + strings.Join(statuses, ",") + "&kind=" + strings.Join(kinds, ",")
	q := jobs.ListQuery{Owner: owner(ctx), Limit: in.size()}
	for _, s := range statuses {
		q.Statuses = append(q.Statuses, jobs.Status(s))
	}
	for _, k := range kinds {
		q.Kinds = append(q.Kinds, jobs.Kind(k))
	}
	if in.PageToken != "" {
		at, id, err := decodePageToken(list, q.Owner, filter, in.PageToken, jobs.ValidID)
		if err != nil {
			return nil, h.problemFor(ctx, err, list)
		}
		q.After = jobs.Cursor{CreatedAt: at, ID: id}
	}
	page, more, err := h.Engine.List(ctx, q)
	if err != nil {
		return nil, h.problemFor(ctx, err, list)
	}
	out := &JobListOutput{CacheControl: "no-store", Body: JobList{Jobs: make([]Job, len(page))}}
	for i, j := range page {
		out.Body.Jobs[i] = h.view(j)
	}
	if more && len(page) > 0 {
		last := page[len(page)-1]
		out.Body.NextPageToken = encodePageToken(list, q.Owner, filter, last.CreatedAt, last.ID)
	}
	return out, nil
}

// WebhookDeadLetter is a webhook that gave up.
type WebhookDeadLetter struct {
	MessageID   string           `json:"message_id" maxLength:"64" doc:"The webhook-id every attempt carried; a redelivery carries it too." example:"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"`
	EventType   string           `json:"event_type" enum:"import.complete,import.partial,import.failed" example:"import.complete"`
	JobID       string           `json:"job_id" maxLength:"64" pattern:"^job_[a-z0-9]+$" doc:"The job the webhook reports on." example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	ImportID    string           `json:"import_id" maxLength:"64" pattern:"^imp_[a-z0-9]+$" example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	CallbackURL string           `json:"callback_url" maxLength:"2048" format:"uri" doc:"Where it was to go." example:"https://example.com/webhooks/accepted"`
	State       string           `json:"state" enum:"failed,disabled" doc:"failed: every attempt of the schedule failed, the address was refused, or it was never sent (see last_error). disabled: the URL answered 410 Gone, so this API key sends it nothing until it is re-enabled (a redelivery does that)." example:"failed"`
	Attempts    int              `json:"attempts" minimum:"0" maximum:"2147483647" doc:"Automatic attempts made; 0 when it was never sent." example:"10"`
	GaveUpAt    time.Time        `json:"gave_up_at" maxLength:"35" doc:"When its last attempt ended it (RFC 3339)."`
	LastError   string           `json:"last_error" maxLength:"1024" doc:"Why its last attempt failed, or why it was never sent, for a person." example:"receiver answered 503 Service Unavailable"`
	LastAttempt *DeliveryAttempt `json:"last_attempt,omitempty" doc:"Its last attempt, as the delivery log shows it."`
	Links       DeadLetterLinks  `json:"links" doc:"Where to go from here."`
}

// DeadLetterLinks are the actions on a dead letter.
type DeadLetterLinks struct {
	Deliveries string `json:"deliveries" maxLength:"128" format:"uri-reference" doc:"GET: the import's whole delivery log." example:"/v1/imports/imp_3u2k4v7qzbx6dcm5ey8f1hwra9/deliveries"`
	Redeliver  string `json:"redeliver,omitempty" maxLength:"128" format:"uri-reference" doc:"POST (with an Idempotency-Key) to send the webhook again, once, with the same webhook-id: redeliverImportWebhook. Absent when there is nothing to send (a payload refused when it was made)." example:"/v1/imports/imp_3u2k4v7qzbx6dcm5ey8f1hwra9/deliveries"`
	Job        string `json:"job" maxLength:"128" format:"uri-reference" doc:"The job's status monitor." example:"/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
}

// DeadLetterList is a page of the caller's dead letters.
type DeadLetterList struct {
	DeadLetters   []WebhookDeadLetter `json:"dead_letters" maxItems:"100" doc:"This page of webhooks that gave up, the most recent first (by gave_up_at, then message_id)."`
	NextPageToken string              `json:"next_page_token" maxLength:"128" pattern:"^[A-Za-z0-9_-]*$" doc:"Pass it as page_token to get the next page; empty on the last page. Opaque: do not build or change one." example:"AQAAGNr2dxkAAAAAr4r9iG1zZ18yS1dQQmdMbEFmeGRweDJBSTU0cFBKODVmNFf8Y0z1oaH3qQ"`
}

// DeadLetterListOutput answers a page of dead letters.
type DeadLetterListOutput struct {
	CacheControl string `header:"Cache-Control" maxLength:"64" doc:"Always no-store: the list changes as deliveries do."`
	Body         DeadLetterList
}

// DeadLetterListInput selects a page of dead letters.
type DeadLetterListInput struct {
	ListPage
}

func (h *handlers) registerDeadLetters(api huma.API) {
	if h.Webhooks == nil {
		return
	}
	op := huma.Operation{
		OperationID: "listWebhookDeadLetters",
		Method:      http.MethodGet,
		Path:        "/v1/webhooks/dead-letters",
		Tags:        []string{"Webhooks"},
		Summary:     "List webhooks that gave up (dead letters)",
		Description: "This API key's webhooks that will not be sent again by themselves, most recent first: every attempt of the retry schedule failed, " +
			"the callback URL answered 410 Gone (which disables it), its address was refused, or it was never sent at all (over this key's share of pending webhooks). " +
			"Each says why (`last_error`, `last_attempt`), and `links.redeliver` is where to POST to send it again, once, with the same `webhook-id` " +
			"(redeliverImportWebhook): it then leaves this list, and comes back if that attempt fails too.\n\n" +
			"A dead letter is kept as long as its delivery log (24 hours after its last attempt, unless the operator says otherwise). " +
			"Pages work as in GET /v1/jobs (AIP-158): `page_size` 1 to 100 (20 by default), and `next_page_token`, empty on the last page. " +
			"Rate limited with the polling policy.",
		Security:      []map[string][]string{{bearerScheme: {}}},
		DefaultStatus: http.StatusOK,
		Metadata:      map[string]any{policyKey: PolicyPoll},
	}
	h.documentProblems(api, &op, problems.Unauthorized, problems.RateLimited, problems.ValidationFailed)
	huma.Register(api, op, h.listDeadLetters)
	if r := registered(api, http.MethodGet, op.Path).Responses["200"]; r != nil && r.Content["application/json"] != nil {
		imp := resourceIDFor(exampleJobID, importPrefix)
		deliveries := "/v1/imports/" + imp + "/deliveries"
		at := exampleStart.Add(76 * time.Hour)
		r.Content["application/json"].Examples = map[string]*huma.Example{"exhausted": {Summary: "A webhook whose every attempt failed", Value: DeadLetterList{
			DeadLetters: []WebhookDeadLetter{{
				MessageID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", EventType: "import.complete", JobID: exampleJobID, ImportID: imp,
				CallbackURL: "https://example.com/webhooks/accepted", State: "failed", Attempts: 10, GaveUpAt: at,
				LastError:   "receiver answered 503 Service Unavailable",
				LastAttempt: &DeliveryAttempt{Number: 10, At: at, StatusCode: 503, LatencyMS: 38.4, Error: "receiver answered 503 Service Unavailable", Outcome: "failed"},
				Links:       DeadLetterLinks{Deliveries: deliveries, Redeliver: deliveries, Job: statusURL(exampleJobID)},
			}},
			NextPageToken: "",
		}}}
	}
}

func (h *handlers) listDeadLetters(ctx context.Context, in *DeadLetterListInput) (*DeadLetterListOutput, error) {
	const list = "/v1/webhooks/dead-letters"
	who := owner(ctx)
	var after outbox.DeadCursor
	if in.PageToken != "" {
		at, id, err := decodePageToken(list, who, "", in.PageToken, validMessageID)
		if err != nil {
			return nil, h.problemFor(ctx, err, list)
		}
		after = outbox.DeadCursor{GaveUpAt: at, ID: id}
	}
	page, more, err := h.Webhooks.Service.DeadLetters(ctx, who, after, in.size())
	if err != nil {
		return nil, h.problemFor(ctx, err, list)
	}
	out := &DeadLetterListOutput{CacheControl: "no-store", Body: DeadLetterList{DeadLetters: make([]WebhookDeadLetter, len(page))}}
	for i, d := range page {
		imp := resourceIDFor(d.JobID, importPrefix)
		deliveries := "/v1/imports/" + imp + "/deliveries"
		v := WebhookDeadLetter{
			MessageID: d.MessageID, EventType: d.EventType, JobID: d.JobID, ImportID: imp, CallbackURL: d.URL,
			State: d.State, Attempts: d.Attempts, GaveUpAt: d.GaveUpAt.UTC(), LastError: clip(d.Last.Error, maxLastError),
			Links: DeadLetterLinks{Deliveries: deliveries, Job: statusURL(d.JobID)},
		}
		if d.Last.Number > 0 {
			a := deliveryAttempt(d.Last)
			v.LastAttempt = &a
		}
		if d.Sendable {
			v.Links.Redeliver = deliveries
		}
		out.Body.DeadLetters[i] = v
	}
	if more && len(page) > 0 {
		last := page[len(page)-1]
		out.Body.NextPageToken = encodePageToken(list, who, "", last.GaveUpAt, last.MessageID)
	}
	return out, nil
}

// deliveryAttempt is a line of a delivery log as the API shows it.
func deliveryAttempt(a webhooks.Attempt) DeliveryAttempt {
	da := DeliveryAttempt{Number: a.Number, At: a.At.UTC(), StatusCode: a.StatusCode,
		LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error, Outcome: a.Outcome, Manual: a.Manual}
	if !a.NextAttemptAt.IsZero() {
		t := a.NextAttemptAt.UTC()
		da.NextAttemptAt = &t
	}
	return da
}

// maxLastError bounds last_error (its maxLength in the spec): an error
// may quote a receiver's status line, which the receiver chooses.
const maxLastError = 1024

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := 0
	for i := range s { // rune boundaries
		if i > n-len("…") {
			break
		}
		cut = i
	}
	return s[:cut] + "…"
}

// validMessageID accepts the shape of a webhook-id (webhooks.NewMessage).
func validMessageID(id string) bool {
	rest, ok := strings.CutPrefix(id, "msg_")
	if !ok || rest == "" || len(id) > 64 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
