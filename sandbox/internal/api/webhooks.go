package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/secrets"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Dispatcher is what the API needs of the webhook dispatcher.
type Dispatcher interface {
	Enqueue(ctx context.Context, ep webhooks.Endpoint, msg webhooks.Message) error
	Redeliver(ctx context.Context, ep webhooks.Endpoint, msg webhooks.Message) error
	Enable(key string)
	Disabled(key string) (time.Time, bool)
}

// AttemptLog keeps delivery attempts per message, which is how the delivery
// log of an import reads them; the dispatcher records them per endpoint.
type AttemptLog struct{ mem *webhooks.MemLog }

// NewAttemptLog keeps perMessage attempts for each of the last messages.
func NewAttemptLog(perMessage, messages int) *AttemptLog {
	return &AttemptLog{mem: webhooks.NewMemLog(perMessage, messages)}
}

// Record implements webhooks.Log.
func (l *AttemptLog) Record(ctx context.Context, _ string, a webhooks.Attempt) error {
	return l.mem.Record(ctx, a.MessageID, a)
}

// List returns a message's attempts, oldest first.
func (l *AttemptLog) List(messageID string) []webhooks.Attempt { return l.mem.List(messageID) }

// WebhooksConfig is what imports, webhook secrets and the inbox need.
type WebhooksConfig struct {
	Dispatcher Dispatcher
	Attempts   *AttemptLog
	Secrets    *secrets.Store
	Inboxes    *inbox.Store
	// Watch follows a job to its end (jobs.Engine.Watch).
	Watch func(ctx context.Context, owner, id string) (jobs.Job, <-chan jobs.Job, func(), error)
	// PublicURL is where clients reach the sandbox, e.g.
	// https://sandbox.example.com; inbox URLs and the URLs inside webhook
	// payloads start with it.
	PublicURL string
	// CheckCallback checks a callback URL when an import is created
	// (safedial.ValidateURL when nil). Inbox URLs are always allowed.
	CheckCallback func(raw string) error
	// Catalog fills in the problems of failed imports' webhooks.
	Catalog *problems.Catalog
	Clock   clock.Clock
	Logger  *slog.Logger
	// MaxMessages bounds the webhook messages remembered for redelivery
	// (10 000 when 0), oldest forgotten first.
	MaxMessages int
}

// Webhooks sends the webhooks of imports and remembers them for the
// delivery log and redelivery.
type Webhooks struct {
	cfg    WebhooksConfig
	public atomic.Pointer[url.URL]
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	sent   map[string]sentMessage // by job id
	order  []string
	closed bool
}

// sentMessage is the webhook an import produced.
type sentMessage struct {
	owner, url string
	msg        webhooks.Message
}

// NewWebhooks checks cfg and returns the webhook side of the API. Close it
// after the job engine, before the dispatcher.
func NewWebhooks(cfg WebhooksConfig) (*Webhooks, error) {
	if cfg.Dispatcher == nil || cfg.Attempts == nil || cfg.Secrets == nil || cfg.Inboxes == nil || cfg.Watch == nil {
		return nil, errors.New("api: WebhooksConfig needs a Dispatcher, Attempts, Secrets, Inboxes and Watch")
	}
	u, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: public URL %q must be an absolute http(s) URL", cfg.PublicURL)
	}
	if cfg.Catalog == nil {
		return nil, errors.New("api: WebhooksConfig needs the Catalog")
	}
	if cfg.CheckCallback == nil {
		cfg.CheckCallback = safedial.ValidateURL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 10_000
	}
	w := &Webhooks{cfg: cfg, sent: make(map[string]sentMessage)}
	w.public.Store(u)
	// Following jobs outlives the requests that start them.
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w, nil
}

// Close stops following jobs and waits, until ctx ends, for webhooks
// being handed to the dispatcher.
func (w *Webhooks) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing webhooks: %w", ctx.Err())
	}
}

// SetPublicURL replaces the public URL given in the config, for a server
// that learns its address only once it listens (a port of 0). Inbox URLs
// handed out before keep working only if they name the same host.
func (w *Webhooks) SetPublicURL(raw string) error {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("api: public URL %q must be an absolute http(s) URL", raw)
	}
	w.public.Store(u)
	return nil
}

var inboxIDRE = regexp.MustCompile(`^inb_[a-z2-7]{26}$`)

// InboxURL is the callback URL of an inbox.
func (w *Webhooks) InboxURL(id string) string {
	return w.public.Load().String() + "/v1/sandbox/inboxes/" + id
}

// InboxID reports whether raw is the URL of one of the sandbox's own
// inboxes, and which. Such URLs are delivered in-process, so no network
// policy applies to them; nothing else under the public URL is.
func (w *Webhooks) InboxID(raw string) (string, bool) {
	pub := w.public.Load()
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		!strings.EqualFold(u.Scheme, pub.Scheme) || !sameHost(u, pub) {
		return "", false
	}
	id, ok := strings.CutPrefix(u.EscapedPath(), pub.EscapedPath()+"/v1/sandbox/inboxes/")
	if !ok || !inboxIDRE.MatchString(id) {
		return "", false
	}
	return id, true
}

// sameHost reports whether u names the host of pub: the same host and
// port, where localhost, 127.0.0.1 and ::1 are one host, so an inbox URL
// written with localhost reaches a sandbox listening on 127.0.0.1.
func sameHost(u, pub *url.URL) bool {
	if strings.EqualFold(u.Host, pub.Host) {
		return true
	}
	loopback := func(h string) bool {
		ip, err := netip.ParseAddr(h)
		return strings.EqualFold(h, "localhost") || err == nil && ip.IsLoopback()
	}
	return u.Port() == pub.Port() && u.Port() != "" && loopback(u.Hostname()) && loopback(pub.Hostname())
}

// checkCallback is the parse-time check of a callback URL (R31); the
// dispatcher's client checks again when it connects.
func (w *Webhooks) checkCallback(raw string) error {
	if _, ok := w.InboxID(raw); ok {
		return nil
	}
	return w.cfg.CheckCallback(raw)
}

// endpoint is where an owner's webhooks to u go. The key is per API key and
// URL, so a 410 Gone disables that URL for that key only.
func (w *Webhooks) endpoint(owner, u string) (webhooks.Endpoint, error) {
	set, err := w.cfg.Secrets.Get(owner)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	return webhooks.Endpoint{URL: u, Secrets: set.Active(), Key: owner + " " + u, Name: owner + " " + w.logName(u)}, nil
}

// logName names a callback URL in logs: an inbox's id is its credential,
// so only its first characters are kept; other URLs lose what may carry a
// token (webhooks.RedactURL).
func (w *Webhooks) logName(u string) string {
	if id, ok := w.InboxID(u); ok {
		return "inbox " + id[:8] + "…"
	}
	return webhooks.RedactURL(u)
}

// reenable lets a URL that answered 410 Gone receive again: registering it
// for a new import, or asking for a redelivery, is the owner saying so.
func (w *Webhooks) reenable(owner, u string) {
	w.cfg.Dispatcher.Enable(owner + " " + u)
}

// follow waits, on the long-lived context, for the import job to end, and
// then sends its webhook. The engine stores the terminal state before
// telling watchers, so a receiver that GETs the import sees it finished.
func (w *Webhooks) follow(owner, jobID, callbackURL string) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		j, updates, stop, err := w.cfg.Watch(w.ctx, owner, jobID)
		if err != nil {
			w.cfg.Logger.Error("cannot follow import for its webhook", "job", jobID, "err", err)
			return
		}
		defer stop()
		for u := range updates {
			j = u
		}
		if !j.Status.Terminal() {
			return // shutting down
		}
		w.send(j, callbackURL)
	}()
}

func (w *Webhooks) send(j jobs.Job, callbackURL string) {
	msg := webhooks.NewMessage("", j.FinishedAt, nil)
	msg.Type, msg.Data = w.event(j)
	if msg.Timestamp.IsZero() {
		msg.Timestamp = w.cfg.Clock.Now()
	}
	w.remember(j.ID, sentMessage{owner: j.Owner, url: callbackURL, msg: msg})
	ep, err := w.endpoint(j.Owner, callbackURL)
	if err == nil {
		err = w.cfg.Dispatcher.Enqueue(w.ctx, ep, msg)
	}
	if err != nil {
		// Say so in the delivery log, where the developer will look.
		_ = w.cfg.Attempts.Record(w.ctx, "", webhooks.Attempt{MessageID: msg.ID, EventType: msg.Type, Number: 1,
			At: w.cfg.Clock.Now(), URL: callbackURL, Final: true, Outcome: webhooks.OutcomeFailed,
			Error: "not sent: " + err.Error()})
		w.cfg.Logger.Warn("import webhook not enqueued", "job", j.ID, "msg_id", msg.ID, "err", err)
	}
}

func (w *Webhooks) remember(jobID string, m sentMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.sent[jobID]; !ok {
		for len(w.order) >= w.cfg.MaxMessages {
			delete(w.sent, w.order[0])
			w.order = w.order[1:]
		}
		w.order = append(w.order, jobID)
	}
	w.sent[jobID] = m
}

func (w *Webhooks) message(jobID string) (sentMessage, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.sent[jobID]
	return m, ok
}

// maxRejectedInEvent bounds the rejected rows a webhook carries, so the
// payload stays far under the 20 kB Standard Webhooks asks for; the rest
// are at result_url.
const maxRejectedInEvent = 20

// ImportEvent is the payload of every import webhook.
type ImportEvent struct {
	Type      string          `json:"type" enum:"import.complete,import.partial,import.failed" doc:"The event type." example:"import.partial"`
	Timestamp time.Time       `json:"timestamp" doc:"When the import ended (RFC 3339)."`
	Data      ImportEventData `json:"data"`
}

// ImportEventData is the data of an import webhook.
type ImportEventData struct {
	ImportID      string            `json:"import_id" doc:"The import." example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	JobID         string            `json:"job_id" doc:"The job that ran it." example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Status        string            `json:"status" enum:"succeeded,failed,canceled" doc:"The job's terminal status. An import whose every row was rejected still succeeded as a job (its event is import.failed)." example:"succeeded"`
	TotalRows     int               `json:"total_rows" doc:"Rows sent." example:"3"`
	Imported      int               `json:"imported" doc:"Rows imported." example:"2"`
	RejectedCount int               `json:"rejected_count" doc:"Rows rejected." example:"1"`
	Rejected      []RejectedRow     `json:"rejected" doc:"The first 20 rejected rows; all of them are at result_url."`
	ResultURL     string            `json:"result_url,omitempty" doc:"The import's result, once its job succeeded (absolute URL; same API key)." example:"https://sandbox.example.com/v1/imports/imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	StatusURL     string            `json:"status_url" doc:"The job's status monitor (absolute URL)." example:"https://sandbox.example.com/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Error         *problems.Problem `json:"error,omitempty" doc:"Why the job failed, when status is failed: a problem from the error catalog."`
}

// event is the type and data of a finished import's webhook.
func (w *Webhooks) event(j jobs.Job) (string, ImportEventData) {
	d := ImportEventData{ImportID: resourceIDFor(j.ID, importPrefix), JobID: j.ID, Status: string(j.Status),
		StatusURL: w.public.Load().String() + statusURL(j.ID), Rejected: []RejectedRow{}}
	var in imports.Input
	if err := jsonUnmarshal(j.Input, &in); err == nil {
		d.TotalRows = len(in.Rows)
	}
	if j.Status != jobs.StatusSucceeded {
		// A cancelled job says so in status; a failed one carries its problem.
		if j.Status == jobs.StatusFailed {
			d.Error = jobProblem(w.cfg.Catalog, j, "The import job failed.")
		}
		return imports.EventFailed, d
	}
	r, err := resultJSON[imports.Result](j)
	if err != nil {
		return imports.EventFailed, d
	}
	d.TotalRows, d.Imported, d.RejectedCount = r.TotalRows, r.Imported, len(r.Rejected)
	for _, rj := range r.Rejected[:min(len(r.Rejected), maxRejectedInEvent)] {
		d.Rejected = append(d.Rejected, RejectedRow(rj))
	}
	d.ResultURL = w.public.Load().String() + resourceURL(j)
	return r.Event(), d
}

// ---- operations: secrets, delivery log, redelivery ----

// WebhookSecret is an API key's signing secret.
type WebhookSecret struct {
	Secret            string     `json:"secret" doc:"The signing secret: whsec_ and the base64 of the key. Verify the webhook-signature of every delivery with it." example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
	CreatedAt         time.Time  `json:"created_at" doc:"When this secret was made."`
	PreviousSecret    string     `json:"previous_secret,omitempty" doc:"The secret replaced by the last rotation, while it still signs deliveries." example:"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"`
	PreviousExpiresAt *time.Time `json:"previous_expires_at,omitempty" doc:"When the previous secret stops signing deliveries."`
	GraceSeconds      int        `json:"grace_seconds" doc:"How long a rotated-out secret keeps signing, in seconds." example:"86400"`
	Note              string     `json:"note" doc:"How rotation works."`
}

// WebhookSecretOutput answers the secret operations.
type WebhookSecretOutput struct {
	CacheControl string `header:"Cache-Control" doc:"no-store: a secret must not be cached."`
	Body         WebhookSecret
}

// DeliveryAttempt is one try at delivering an import's webhook.
type DeliveryAttempt struct {
	Number        int        `json:"number" doc:"1 for the first attempt; a manual redelivery starts again at 1." example:"1"`
	At            time.Time  `json:"at" doc:"When the attempt was made (its webhook-timestamp)."`
	StatusCode    int        `json:"status_code,omitempty" doc:"The receiver's status code; absent when no answer arrived." example:"503"`
	LatencyMS     float64    `json:"latency_ms" doc:"Time to the receiver's answer, in milliseconds." example:"12.5"`
	Error         string     `json:"error,omitempty" doc:"Why the attempt failed, for a person." example:"receiver answered 503 Service Unavailable"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty" doc:"When the next automatic attempt is due, while retrying."`
	Outcome       string     `json:"outcome" enum:"delivered,retrying,failed,disabled" doc:"delivered: a 2xx arrived. retrying: another attempt is scheduled. failed: no attempt is left (or the address was refused). disabled: the URL answered 410 Gone." example:"retrying"`
	Manual        bool       `json:"manual,omitempty" doc:"A redelivery asked for with POST."`
}

// Deliveries is the delivery log of an import.
type Deliveries struct {
	ImportID    string            `json:"import_id" example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	CallbackURL string            `json:"callback_url,omitempty" doc:"Where the webhook goes." example:"https://example.com/webhooks/accepted"`
	State       string            `json:"state" enum:"no_callback,waiting_for_job,sending,delivered,failed,disabled" doc:"no_callback: the import has no callback_url. waiting_for_job: the webhook is sent when the job ends. sending: an attempt is under way or scheduled. delivered, failed, disabled: the last attempt's final outcome." example:"delivered"`
	MessageID   string            `json:"message_id,omitempty" doc:"The webhook-id every attempt carries." example:"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"`
	EventType   string            `json:"event_type,omitempty" enum:"import.complete,import.partial,import.failed" example:"import.complete"`
	Disabled    bool              `json:"endpoint_disabled" doc:"The URL answered 410 Gone, so this API key sends it nothing more until it is re-enabled: by a redelivery (POST on this URL) or by a new import naming it as callback_url."`
	Attempts    []DeliveryAttempt `json:"attempts" doc:"Every attempt, oldest first."`
}

// DeliveriesOutput answers the delivery log.
type DeliveriesOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         Deliveries
}

// RedeliverOutput answers a redelivery.
type RedeliverOutput struct {
	Location     string `header:"Location" doc:"The delivery log, where the new attempt appears."`
	RetryAfter   string `header:"Retry-After" doc:"Seconds to wait before reading the delivery log."`
	CacheControl string `header:"Cache-Control"`
	Body         Deliveries
}

func (h *handlers) registerWebhooks(api huma.API) {
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
		set, err := h.webhooks().cfg.Secrets.Get(owner(ctx))
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
		set, err := h.webhooks().cfg.Secrets.Rotate(owner(ctx))
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

// webhooks returns the webhook side, or a stand-in that refuses everything
// when the API was registered without one (tests of other parts).
func (h *handlers) webhooks() *Webhooks {
	if h.Webhooks != nil {
		return h.Webhooks
	}
	w := &Webhooks{
		cfg: WebhooksConfig{
			Secrets: secrets.New(clock.Real(), 0, 1), Inboxes: inbox.New(inbox.Config{Clock: clock.Real(), MaxInboxes: 1}),
			Attempts: NewAttemptLog(1, 1), Dispatcher: noDispatcher{}, Catalog: h.Catalog,
			CheckCallback: func(string) error { return errors.New("webhooks are not configured") },
			Clock:         clock.Real(), Logger: slog.New(slog.DiscardHandler), MaxMessages: 1,
			Watch: func(context.Context, string, string) (jobs.Job, <-chan jobs.Job, func(), error) {
				return jobs.Job{}, nil, func() {}, errors.New("webhooks are not configured")
			},
		},
		ctx:  context.Background(),
		sent: map[string]sentMessage{},
	}
	w.public.Store(&url.URL{Scheme: "http", Host: "localhost"})
	return w
}

type noDispatcher struct{}

func (noDispatcher) Enqueue(context.Context, webhooks.Endpoint, webhooks.Message) error {
	return webhooks.ErrClosed
}
func (noDispatcher) Redeliver(context.Context, webhooks.Endpoint, webhooks.Message) error {
	return webhooks.ErrClosed
}
func (noDispatcher) Enable(string)                     {}
func (noDispatcher) Disabled(string) (time.Time, bool) { return time.Time{}, false }

func (h *handlers) secretOutput(set secrets.Set) *WebhookSecretOutput {
	out := &WebhookSecretOutput{CacheControl: "no-store", Body: WebhookSecret{
		Secret: set.Current.Value, CreatedAt: set.Current.CreatedAt.UTC(),
		GraceSeconds: int(h.webhooks().cfg.Secrets.Grace().Seconds()),
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
	w := h.webhooks()
	d := Deliveries{ImportID: importID, CallbackURL: in.CallbackURL, Attempts: []DeliveryAttempt{}}
	switch m, ok := w.message(j.ID); {
	case in.CallbackURL == "":
		d.State = "no_callback"
		return d, nil
	case !ok:
		d.State = "waiting_for_job"
	default:
		d.MessageID, d.EventType, d.State = m.msg.ID, m.msg.Type, "sending"
		for _, a := range w.cfg.Attempts.List(m.msg.ID) {
			da := DeliveryAttempt{Number: a.Number, At: a.At.UTC(), StatusCode: a.StatusCode,
				LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error, Outcome: a.Outcome, Manual: a.Manual}
			if !a.NextAttemptAt.IsZero() {
				t := a.NextAttemptAt.UTC()
				da.NextAttemptAt = &t
			}
			d.Attempts = append(d.Attempts, da)
			if a.Final {
				d.State = a.Outcome
			} else {
				d.State = "sending"
			}
		}
	}
	_, d.Disabled = w.cfg.Dispatcher.Disabled(j.Owner + " " + in.CallbackURL)
	return d, nil
}

func (h *handlers) redeliver(ctx context.Context, in *ImportIDParam) (*RedeliverOutput, error) {
	instance := "/v1/imports/" + in.ID + "/deliveries"
	j, input, err := h.importJob(ctx, in.ID, instance)
	if err != nil {
		return nil, err
	}
	w := h.webhooks()
	m, ok := w.message(j.ID)
	if !ok {
		why := "its job is " + string(j.Status) + "; the webhook is sent when the job ends"
		if input.CallbackURL == "" {
			why = "it has no callback_url"
		}
		return nil, h.problemFor(ctx, notSentError{importID: in.ID, jobID: j.ID, why: why}, instance)
	}
	w.reenable(m.owner, m.url)
	ep, err := w.endpoint(m.owner, m.url)
	if err == nil {
		err = w.cfg.Dispatcher.Redeliver(w.ctx, ep, m.msg)
	}
	switch {
	case errors.Is(err, webhooks.ErrAlreadyPending):
		return nil, h.problemFor(ctx, pendingError{jobID: j.ID, messageID: m.msg.ID}, instance)
	case err != nil:
		return nil, h.problemFor(ctx, err, instance)
	}
	h.Logger.InfoContext(ctx, "import webhook redelivery", "job", j.ID, "msg_id", m.msg.ID)
	d, err := h.deliveries(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &RedeliverOutput{Location: instance, RetryAfter: "1", CacheControl: "no-store", Body: d}, nil
}
