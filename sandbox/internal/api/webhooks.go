package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/callbacks"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/secrets"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Webhooks is what the webhook, inbox and import operations need, each
// part through an interface of this package. In Deps it may be nil: the
// sandbox is then built without webhooks (tests of other parts), the
// webhook and inbox routes are not registered, and an import with a
// callback_url is refused.
type Webhooks struct {
	Service WebhookService // callbacks.Service
	Secrets SecretStore    // secrets.Store
	Inboxes InboxStore     // inbox.Store
}

// WebhookService is what the API needs of the webhook side of imports.
type WebhookService interface {
	// CheckCallback checks a callback URL when an import is made (R31).
	CheckCallback(raw string) error
	// Enable lets owner's url receive again after a 410 Gone.
	Enable(ctx context.Context, owner, url string) error
	// Deliveries answers what became of the webhook of owner's import job.
	Deliveries(ctx context.Context, owner, jobID, callbackURL string) (callbacks.Status, error)
	// Redeliver sends it again, answering its message id;
	// webhooks.ErrAlreadyPending while an attempt is due,
	// outbox.ErrNotSent when there is nothing to send yet.
	Redeliver(ctx context.Context, owner, jobID string) (string, error)
	// DeadLetters answers a page of owner's webhooks that gave up, newest
	// first, after the cursor, and whether more follow.
	DeadLetters(ctx context.Context, owner string, after outbox.DeadCursor, limit int) ([]outbox.DeadLetter, bool, error)
	// InboxURL is the callback URL of an inbox.
	InboxURL(id string) string
}

// SecretStore keeps API keys' webhook signing secrets.
type SecretStore interface {
	Get(ctx context.Context, owner string) (secrets.Set, error)
	Rotate(ctx context.Context, owner string) (secrets.Set, error)
	Grace() time.Duration
}

// InboxStore keeps the built-in inboxes.
type InboxStore interface {
	Create(ctx context.Context, owner string) (inbox.Inbox, error)
	Get(ctx context.Context, owner, id string) (inbox.Inbox, error)
	SetBehaviour(ctx context.Context, owner, id string, b inbox.Behaviour) (inbox.Inbox, error)
	Receive(ctx context.Context, id string, header http.Header, body []byte) (inbox.Answer, error)
	Deliveries(ctx context.Context, owner, id string) ([]inbox.Delivery, error)
	Subscribe(ctx context.Context, id string, after int) (<-chan inbox.Delivery, func(), error)
}

// The payload of import webhooks, as the spec documents it: one definition,
// the one the webhooks are built from.
type (
	ImportEvent     = callbacks.ImportEvent
	ImportEventData = callbacks.ImportEventData
)

// errNoWebhooks refuses a callback_url when the sandbox has no webhooks.
var errNoWebhooks = errors.New("webhooks are not configured on this sandbox")

// WebhookSecret is an API key's signing secret.
type WebhookSecret struct {
	Secret            string     `json:"secret" maxLength:"64" pattern:"^whsec_[A-Za-z0-9+/=]+$" doc:"The signing secret: whsec_ and the base64 of the key. Verify the webhook-signature of every delivery with it." example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
	CreatedAt         time.Time  `json:"created_at" maxLength:"35" doc:"When this secret was made."`
	PreviousSecret    string     `json:"previous_secret,omitempty" maxLength:"64" pattern:"^whsec_[A-Za-z0-9+/=]+$" doc:"The secret replaced by the last rotation, while it still signs deliveries." example:"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"`
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty" maxLength:"35" doc:"When the previous secret stops signing deliveries."`
	GraceSeconds      int        `json:"grace_seconds" minimum:"0" maximum:"9223372036" doc:"How long a rotated-out secret keeps signing, in seconds." example:"86400"`
	Note              string     `json:"note" maxLength:"512" doc:"How rotation works."`
}

// WebhookSecretOutput answers the secret operations.
type WebhookSecretOutput struct {
	CacheControl string `header:"Cache-Control" maxLength:"64" doc:"no-store: a secret must not be cached."`
	Body         WebhookSecret
}

// DeliveryAttempt is one try at delivering an import's webhook.
type DeliveryAttempt struct {
	Number        int        `json:"number" minimum:"1" maximum:"2147483647" doc:"1 for the first attempt; a manual redelivery starts again at 1." example:"1"`
	At            time.Time  `json:"at" maxLength:"35" doc:"When the attempt was made (its webhook-timestamp)."`
	StatusCode    int        `json:"status_code,omitempty" minimum:"0" maximum:"999" doc:"The receiver's status code; absent when no answer arrived." example:"503"`
	LatencyMS     float64    `json:"latency_ms" doc:"Time to the receiver's answer, in milliseconds." example:"12.5"`
	Error         string     `json:"error,omitempty" doc:"Why the attempt failed, for a person." example:"receiver answered 503 Service Unavailable"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty" maxLength:"35" doc:"When the next automatic attempt is due, while retrying."`
	Outcome       string     `json:"outcome" enum:"delivered,retrying,failed,disabled" doc:"delivered: a 2xx arrived. retrying: another attempt is scheduled. failed: no attempt is left (or the address was refused). disabled: the URL answered 410 Gone." example:"retrying"`
	Manual        bool       `json:"manual,omitempty" doc:"A redelivery asked for with POST."`
}

// Deliveries is the delivery log of an import.
type Deliveries struct {
	ImportID    string            `json:"import_id" maxLength:"64" pattern:"^imp_[a-z0-9]+$" example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	CallbackURL string            `json:"callback_url,omitempty" maxLength:"2048" format:"uri" doc:"Where the webhook goes." example:"https://example.com/webhooks/accepted"`
	State       string            `json:"state" enum:"no_callback,waiting_for_job,sending,delivered,failed,disabled" doc:"no_callback: the import has no callback_url. waiting_for_job: the webhook is sent when the job ends. sending: an attempt is under way or scheduled. delivered, failed, disabled: the last attempt's final outcome." example:"delivered"`
	MessageID   string            `json:"message_id,omitempty" maxLength:"64" doc:"The webhook-id every attempt carries." example:"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"`
	EventType   string            `json:"event_type,omitempty" enum:"import.complete,import.partial,import.failed" example:"import.complete"`
	Disabled    bool              `json:"endpoint_disabled" doc:"The URL answered 410 Gone, so this API key sends it nothing more until it is re-enabled: by a redelivery (POST on this URL) or by a new import naming it as callback_url."`
	Attempts    []DeliveryAttempt `json:"attempts" maxItems:"100" doc:"Every attempt, oldest first."`
}

// DeliveriesOutput answers the delivery log.
type DeliveriesOutput struct {
	CacheControl string `header:"Cache-Control" maxLength:"64"`
	Body         Deliveries
}

// RedeliverOutput answers a redelivery.
type RedeliverOutput struct {
	Location     string `header:"Location" doc:"The delivery log, where the new attempt appears."`
	RetryAfter   string `header:"Retry-After" doc:"Seconds to wait before reading the delivery log."`
	CacheControl string `header:"Cache-Control" maxLength:"64"`
	Body         Deliveries
}

func (h *handlers) registerWebhooks(api huma.API) {
	if h.Webhooks == nil {
		return
	}
	get := huma.Operation{
		OperationID: "getWebhookSecret",
		Method:      http.MethodGet,
		Path:        "/v1/webhooks/secret",
		Tags:        []string{"Webhooks"},
		Summary:     "Get your webhook signing secret",
		Description: "The secret this API key's webhooks are signed with (Standard Webhooks: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the base64-decoded part after `whsec_`). " +
			"It is made on first use. During a rotation's grace window the previous secret is shown too, and every delivery carries a signature under each.",
		Security: []map[string][]string{{bearerScheme: {}}},
	}
	h.documentProblems(api, &get, problems.Unauthorized)
	huma.Register(api, get, func(ctx context.Context, _ *struct{}) (*WebhookSecretOutput, error) {
		set, err := h.Webhooks.Secrets.Get(ctx, owner(ctx))
		if err != nil {
			return nil, h.problemFor(ctx, err, get.Path)
		}
		return h.secretOutput(set), nil
	})

	rot := huma.Operation{
		OperationID: "rotateWebhookSecret",
		Method:      http.MethodPost,
		Path:        "/v1/webhooks/secret/rotate",
		Tags:        []string{"Webhooks"},
		Summary:     "Rotate your webhook signing secret",
		Description: "Makes a new signing secret for this API key and answers it. The previous secret is not dropped at once: for a grace window (24 hours) every delivery " +
			"carries two signatures, `v1,<new> v1,<previous>`, space-separated in `webhook-signature`, so receivers keep verifying while you deploy the new secret. " +
			"Rotating again during the window ends the older secret's grace at once.",
		Security: []map[string][]string{{bearerScheme: {}}},
	}
	h.documentProblems(api, &rot, problems.Unauthorized)
	huma.Register(api, rot, func(ctx context.Context, _ *struct{}) (*WebhookSecretOutput, error) {
		set, err := h.Webhooks.Secrets.Rotate(ctx, owner(ctx))
		if err != nil {
			return nil, h.problemFor(ctx, err, rot.Path)
		}
		h.Logger.InfoContext(ctx, "webhook secret rotated", "owner", owner(ctx))
		return h.secretOutput(set), nil
	})

	list := huma.Operation{
		OperationID: "listImportDeliveries",
		Method:      http.MethodGet,
		Path:        "/v1/imports/{id}/deliveries",
		Tags:        []string{"Webhooks"},
		Summary:     "List an import's webhook deliveries",
		Description: "Every attempt at delivering the import's webhook: when, the receiver's status code, latency, the error, when the next attempt is due, and the outcome. " +
			"Start here when a webhook \"never arrived\". Attempts follow the Standard Webhooks schedule (immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h later, with ±10% jitter; the sandbox's time scale compresses it), " +
			"a longer `Retry-After` from the receiver is honoured, only a 2xx counts as delivered, redirects are not followed, and a 410 Gone disables the URL for this API key.",
		Security: []map[string][]string{{bearerScheme: {}}},
		Metadata: map[string]any{policyKey: PolicyPoll},
	}
	h.documentProblems(api, &list, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.RateLimited, problems.ValidationFailed)
	huma.Register(api, list, func(ctx context.Context, in *ImportIDParam) (*DeliveriesOutput, error) {
		d, err := h.deliveries(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &DeliveriesOutput{CacheControl: "no-store", Body: d}, nil
	})

	re := huma.Operation{
		OperationID:   "redeliverImportWebhook",
		Method:        http.MethodPost,
		Path:          "/v1/imports/{id}/deliveries",
		Tags:          []string{"Webhooks"},
		Summary:       "Redeliver an import's webhook",
		DefaultStatus: http.StatusAccepted,
		Description: "Sends the import's webhook again: the same message, with the same `webhook-id` (so a receiver that already handled it can drop it), " +
			"signed afresh with the current secrets and a new timestamp. One attempt, no automatic retries. A URL disabled by a 410 Gone is re-enabled by this request. " +
			"Answers **202 Accepted** with the delivery log in `Location`; the attempt appears there within a moment. " +
			"It queues one attempt, not a job (`x-async-job: false`): there is no status monitor to poll, the delivery log is where its outcome shows.",
		Security:   []map[string][]string{{bearerScheme: {}}},
		Metadata:   map[string]any{policyKey: PolicyStart, idempotentKey: true},
		Parameters: []*huma.Param{idempotencyParam(fmt.Sprintf("%g hours", h.IdempotencyTTL.Hours()))},
		Extensions: map[string]any{"x-async-job": false},
	}
	h.documentProblems(api, &re, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.WebhookNotSent,
		problems.WebhookDeliveryPending, problems.RateLimited, problems.QueueFull, problems.ValidationFailed,
		problems.IdempotencyKeyInvalid, problems.IdempotencyKeyInUse, problems.IdempotencyKeyReused)
	huma.Register(api, re, h.redeliver)
	if r := registered(api, http.MethodPost, re.Path).Responses["202"]; r != nil && r.Content["application/json"] != nil {
		id := resourceIDFor(exampleJobID, importPrefix)
		at := exampleStart.Add(4 * time.Second)
		r.Content["application/json"].Examples = map[string]*huma.Example{"redelivering": {Summary: "A failed delivery being sent again", Value: Deliveries{
			ImportID: id, CallbackURL: "https://example.com/webhooks/accepted", State: "failed", MessageID: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", EventType: "import.complete",
			Attempts: []DeliveryAttempt{{Number: 1, At: at, StatusCode: 500, LatencyMS: 41.2, Error: "receiver answered 500 Internal Server Error", Outcome: "failed"}},
		}}}
	}
}

func (h *handlers) secretOutput(set secrets.Set) *WebhookSecretOutput {
	out := &WebhookSecretOutput{CacheControl: "no-store", Body: WebhookSecret{
		Secret: set.Current.Value, CreatedAt: set.Current.CreatedAt.UTC(),
		GraceSeconds: int(h.Webhooks.Secrets.Grace().Seconds()),
		Note: "Deliveries are signed with this secret. POST /v1/webhooks/secret/rotate makes a new one; the previous one keeps signing " +
			"(a second signature in webhook-signature) until previous_expires_at, so receivers can switch without losing a delivery.",
	}}
	if p := set.Previous; p != nil {
		t := p.ExpiresAt.UTC()
		out.Body.PreviousSecret, out.Body.PreviousExpiresAt = p.Value, &t
	}
	return out
}

// importJob finds owner's import job behind an import id.
func (h *handlers) importJob(ctx context.Context, importID, instance string) (jobs.Job, imports.Input, error) {
	id, ok := jobIDFor(importID, importPrefix)
	if !ok {
		return jobs.Job{}, imports.Input{}, h.problemFor(ctx, jobs.ErrNotFound, instance)
	}
	j, err := h.Engine.Get(ctx, owner(ctx), id)
	if err == nil && j.Kind != imports.Kind {
		err = jobs.ErrNotFound
	}
	if err != nil {
		return jobs.Job{}, imports.Input{}, h.problemFor(ctx, err, instance)
	}
	var in imports.Input
	if err := jsonUnmarshal(j.Input, &in); err != nil {
		return jobs.Job{}, imports.Input{}, h.problemFor(ctx, fmt.Errorf("decoding import input: %w", err), instance)
	}
	return j, in, nil
}

func (h *handlers) deliveries(ctx context.Context, importID string) (Deliveries, error) {
	instance := "/v1/imports/" + importID + "/deliveries"
	j, in, err := h.importJob(ctx, importID, instance)
	if err != nil {
		return Deliveries{}, err
	}
	d := Deliveries{ImportID: importID, CallbackURL: in.CallbackURL, Attempts: []DeliveryAttempt{}}
	if in.CallbackURL == "" {
		d.State = "no_callback"
		return d, nil
	}
	st, err := h.Webhooks.Service.Deliveries(ctx, j.Owner, j.ID, in.CallbackURL)
	if err != nil {
		return Deliveries{}, h.problemFor(ctx, err, instance)
	}
	d.Disabled = st.Disabled
	if !st.Sent {
		d.State = "waiting_for_job"
		return d, nil
	}
	d.MessageID, d.EventType, d.State = st.MessageID, st.EventType, st.State
	for _, a := range st.Attempts {
		da := DeliveryAttempt{Number: a.Number, At: a.At.UTC(), StatusCode: a.StatusCode,
			LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error, Outcome: a.Outcome, Manual: a.Manual}
		if !a.NextAttemptAt.IsZero() {
			t := a.NextAttemptAt.UTC()
			da.NextAttemptAt = &t
		}
		d.Attempts = append(d.Attempts, da)
	}
	return d, nil
}

func (h *handlers) redeliver(ctx context.Context, in *ImportIDParam) (*RedeliverOutput, error) {
	instance := "/v1/imports/" + in.ID + "/deliveries"
	j, input, err := h.importJob(ctx, in.ID, instance)
	if err != nil {
		return nil, err
	}
	if input.CallbackURL == "" {
		return nil, h.problemFor(ctx, notSentError{importID: in.ID, jobID: j.ID, why: "it has no callback_url"}, instance)
	}
	msgID, err := h.Webhooks.Service.Redeliver(ctx, j.Owner, j.ID)
	switch {
	case errors.Is(err, outbox.ErrNotSent):
		why := "its job is " + string(j.Status) + "; the webhook is sent when the job ends"
		if j.Status.Terminal() {
			why = "its webhook could not be made (see the delivery log)"
		}
		return nil, h.problemFor(ctx, notSentError{importID: in.ID, jobID: j.ID, why: why}, instance)
	case errors.Is(err, webhooks.ErrAlreadyPending):
		return nil, h.problemFor(ctx, pendingError{jobID: j.ID, messageID: msgID}, instance)
	case err != nil:
		return nil, h.problemFor(ctx, err, instance)
	}
	d, err := h.deliveries(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &RedeliverOutput{Location: instance, RetryAfter: "1", CacheControl: "no-store", Body: d}, nil
}
