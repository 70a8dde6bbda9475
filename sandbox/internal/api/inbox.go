package api

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// InboxIDParam names an inbox.
type InboxIDParam struct {
	ID string `path:"id" maxLength:"64" pattern:"^inb_[a-z0-9]+$" doc:"The inbox id (from POST /v1/sandbox/inboxes)." example:"inb_7kq2m4x6zbw3dcn5ey8f1hvra9"`
}

// InboxBehaviour is what an inbox answers its next deliveries with.
type InboxBehaviour struct {
	Status     int `json:"status" minimum:"200" maximum:"599" doc:"The HTTP status to answer with instead of 204: 503 or 429 to watch retries, 410 to see the URL disabled, 301 to see a redirect not followed." example:"503"`
	Count      int `json:"count" minimum:"0" maximum:"100" doc:"How many of the next deliveries get that status; after them the inbox answers 204 again. 0 restores 204 at once." example:"3"`
	RetryAfter int `json:"retry_after,omitempty" minimum:"0" maximum:"86400" doc:"Seconds to send in Retry-After with that status (0: none). A longer Retry-After than the next scheduled retry delays it (compressed by the sandbox's time scale)." example:"5"`
}

// InboxView describes an inbox.
type InboxView struct {
	ID            string          `json:"id" maxLength:"64" pattern:"^inb_[a-z0-9]+$" example:"inb_7kq2m4x6zbw3dcn5ey8f1hvra9"`
	URL           string          `json:"url" format:"uri" doc:"The inbox's callback URL: pass it as callback_url. It needs no API key (the unguessable id is the credential), so treat it as a secret." example:"https://sandbox.example.com/v1/sandbox/inboxes/inb_7kq2m4x6zbw3dcn5ey8f1hvra9"`
	Secret        string          `json:"secret" maxLength:"64" pattern:"^whsec_[A-Za-z0-9+/=]+$" doc:"Your API key's current webhook signing secret, which deliveries to this inbox are signed and checked with (GET /v1/webhooks/secret)." example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
	CreatedAt     time.Time       `json:"created_at" maxLength:"35"`
	Received      int             `json:"received" minimum:"0" maximum:"9007199254740991" doc:"Deliveries received so far." example:"0"`
	DeliveriesURL string          `json:"deliveries_url" maxLength:"128" format:"uri-reference" doc:"What the inbox received, newest first." example:"/v1/sandbox/inboxes/inb_7kq2m4x6zbw3dcn5ey8f1hvra9/deliveries"`
	BehaviourURL  string          `json:"behaviour_url" maxLength:"128" format:"uri-reference" doc:"PUT here to make the inbox fail its next deliveries." example:"/v1/sandbox/inboxes/inb_7kq2m4x6zbw3dcn5ey8f1hvra9/behaviour"`
	Behaviour     *InboxBehaviour `json:"behaviour,omitempty" doc:"What the next deliveries will be answered with, while a behaviour is set; count is what is left of it."`
}

// InboxOutput answers the inbox operations.
type InboxOutput struct {
	Location     string `header:"Location" doc:"The inbox's delivery list."`
	CacheControl string `header:"Cache-Control" maxLength:"64"`
	Body         InboxView
}

// BehaviourInput sets an inbox's behaviour.
type BehaviourInput struct {
	InboxIDParam
	Body InboxBehaviour
}

// InboxDeliveries lists what an inbox received.
type InboxDeliveries struct {
	InboxID    string           `json:"inbox_id" maxLength:"64" pattern:"^inb_[a-z0-9]+$" example:"inb_7kq2m4x6zbw3dcn5ey8f1hvra9"`
	Deliveries []inbox.Delivery `json:"deliveries" maxItems:"100" doc:"Newest first, the last 100: each with its headers, body, the status the inbox answered and the signature check step by step."`
}

// InboxDeliveriesOutput answers the delivery list.
type InboxDeliveriesOutput struct {
	CacheControl string `header:"Cache-Control" maxLength:"64"`
	Body         InboxDeliveries
}

// ReceiveInput is a webhook delivered to an inbox.
type ReceiveInput struct {
	InboxIDParam
	RawBody []byte `contentType:"application/json"`
	header  http.Header
}

// Resolve keeps every header: the inbox shows them all.
func (in *ReceiveInput) Resolve(ctx huma.Context) []error {
	in.header = http.Header{}
	ctx.EachHeader(func(name, value string) { in.header.Add(name, value) })
	return nil
}

// ReceiveOutput is the inbox's answer to a delivery.
type ReceiveOutput struct {
	Status     int
	Location   string `header:"Location" doc:"With a 3xx behaviour: the inbox itself (the sender must not follow it)."`
	RetryAfter string `header:"Retry-After" doc:"When the behaviour sets one."`
}

func (h *handlers) registerInbox(api huma.API) {
	if h.Webhooks == nil {
		return
	}
	auth := []map[string][]string{{bearerScheme: {}}}
	create := huma.Operation{
		OperationID:   "createInbox",
		Method:        http.MethodPost,
		Path:          "/v1/sandbox/inboxes",
		Tags:          []string{"Sandbox"},
		Summary:       "Create a webhook inbox",
		DefaultStatus: http.StatusCreated,
		Description: "Creates a built-in webhook receiver, so you can watch webhooks arrive without a public URL. Pass its `url` as the `callback_url` of an import; " +
			"every delivery is stored with its headers, body and a step-by-step check of its signature against your secrets. " +
			"Each API key keeps its 20 newest inboxes (creating a 21st drops the oldest), and each inbox its 100 newest deliveries; an inbox that receives nothing for a day (by default) expires.",
		Security: auth,
		Metadata: map[string]any{policyKey: PolicyStart},
	}
	h.documentProblems(api, &create, problems.Unauthorized, problems.RateLimited)
	huma.Register(api, create, h.createInbox)

	list := huma.Operation{
		OperationID: "listInboxDeliveries",
		Method:      http.MethodGet,
		Path:        "/v1/sandbox/inboxes/{id}/deliveries",
		Tags:        []string{"Sandbox"},
		Summary:     "List what an inbox received",
		Description: "The deliveries an inbox received, newest first: headers, body, when it arrived, what the inbox answered, and the signature check " +
			"(`verification.valid`, which secret matched, and each step with the expected and received signatures). Retries of one webhook share its `webhook-id`.",
		Security: auth,
		Metadata: map[string]any{policyKey: PolicyPoll},
	}
	h.documentProblems(api, &list, problems.Unauthorized, problems.NotFound, problems.RateLimited, problems.ValidationFailed)
	huma.Register(api, list, h.listInboxDeliveries)

	get := huma.Operation{
		OperationID: "getInbox",
		Method:      http.MethodGet,
		Path:        "/v1/sandbox/inboxes/{id}",
		Tags:        []string{"Sandbox"},
		Summary:     "Describe an inbox",
		Description: "The inbox: its callback URL, your current signing secret, how many deliveries it received, and the behaviour set for its next deliveries, if any.",
		Security:    auth,
		Metadata:    map[string]any{policyKey: PolicyPoll},
	}
	h.documentProblems(api, &get, problems.Unauthorized, problems.NotFound, problems.RateLimited, problems.ValidationFailed)
	huma.Register(api, get, func(ctx context.Context, in *InboxIDParam) (*InboxOutput, error) {
		instance := "/v1/sandbox/inboxes/" + in.ID
		ib, err := h.Webhooks.Inboxes.Get(ctx, owner(ctx), in.ID)
		if err != nil {
			return nil, h.problemFor(ctx, err, instance)
		}
		v, err := h.inboxView(ctx, ib)
		if err != nil {
			return nil, h.problemFor(ctx, err, instance)
		}
		return &InboxOutput{Location: v.DeliveriesURL, CacheControl: "no-store", Body: v}, nil
	})

	beh := huma.Operation{
		OperationID: "setInboxBehaviour",
		Method:      http.MethodPut,
		Path:        "/v1/sandbox/inboxes/{id}/behaviour",
		Tags:        []string{"Sandbox"},
		Summary:     "Make an inbox fail its next deliveries",
		Description: "Makes the inbox answer its next `count` deliveries with `status` (and `Retry-After` when `retry_after` is set) instead of 204, " +
			"so you can watch the sender retry with the same `webhook-id` and fresh timestamps, or a 410 disable the URL. Replaces any earlier behaviour.",
		Security: auth,
	}
	h.documentProblems(api, &beh, problems.Unauthorized, problems.NotFound, problems.ValidationFailed, problems.MalformedRequest)
	huma.Register(api, beh, h.setInboxBehaviour)

	recv := huma.Operation{
		OperationID:   "receiveInboxDelivery",
		Method:        http.MethodPost,
		Path:          "/v1/sandbox/inboxes/{id}",
		Tags:          []string{"Sandbox"},
		Summary:       "Deliver a webhook to an inbox",
		DefaultStatus: http.StatusNoContent,
		MaxBodyBytes:  inbox.MaxBody,
		Description: "The inbox's callback URL: the sandbox's webhooks arrive here (you can POST here too, to see how a hand-made signature fares). " +
			"No API key: the unguessable inbox id is the credential. Answers 204, or what a behaviour set with PUT .../behaviour asks for.\n\n" +
			"Deliveries you send are rate limited per inbox and per sending network (its /24 or /64), with 429 and the RateLimit headers beyond them; " +
			"the sandbox's own webhooks are not. What inboxes store is bounded: 100 deliveries per inbox, and a byte budget shared by all inboxes " +
			"(past it the oldest deliveries of the inbox holding most are dropped); an inbox that received nothing and was not changed for a day (by default) expires.",
		Metadata: map[string]any{policyKey: PolicyInbox, inboxNetworkKey: PolicyInboxNetwork},
	}
	// Any body is stored as received: it is the signature, not a schema,
	// that says whether to trust it.
	recv.SkipValidateBody = true
	h.documentProblems(api, &recv, problems.NotFound, problems.RequestTooLarge, problems.RateLimited, problems.InboxSimulatedFailure)
	huma.Register(api, recv, h.receive)
	if rb := registered(api, http.MethodPost, recv.Path).RequestBody; rb != nil && rb.Content["application/json"] != nil {
		rb.Description = "The webhook as sent: stored byte for byte, whatever its shape. The sandbox's own webhooks are ImportEvents."
		rb.Content["application/json"].Schema = api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[ImportEvent](), true, "")
	}
}

func (h *handlers) inboxView(ctx context.Context, ib inbox.Inbox) (InboxView, error) {
	set, err := h.Webhooks.Secrets.Get(ctx, ib.Owner)
	if err != nil {
		return InboxView{}, err
	}
	base := "/v1/sandbox/inboxes/" + ib.ID
	v := InboxView{ID: ib.ID, URL: h.Webhooks.Service.InboxURL(ib.ID), Secret: set.Current.Value, CreatedAt: ib.CreatedAt.UTC(), Received: ib.Received,
		DeliveriesURL: base + "/deliveries", BehaviourURL: base + "/behaviour"}
	if b := ib.Behaviour; b.Remaining > 0 {
		v.Behaviour = &InboxBehaviour{Status: b.Status, Count: b.Remaining, RetryAfter: b.RetryAfter}
	}
	return v, nil
}

func (h *handlers) createInbox(ctx context.Context, _ *struct{}) (*InboxOutput, error) {
	ib, err := h.Webhooks.Inboxes.Create(ctx, owner(ctx))
	if err != nil {
		return nil, h.problemFor(ctx, err, "/v1/sandbox/inboxes")
	}
	v, err := h.inboxView(ctx, ib)
	if err != nil {
		return nil, h.problemFor(ctx, err, "/v1/sandbox/inboxes")
	}
	h.Logger.InfoContext(ctx, "inbox created", "inbox", ib.ID[:8]+"…", "owner", ib.Owner)
	return &InboxOutput{Location: v.DeliveriesURL, CacheControl: "no-store", Body: v}, nil
}

func (h *handlers) listInboxDeliveries(ctx context.Context, in *InboxIDParam) (*InboxDeliveriesOutput, error) {
	instance := "/v1/sandbox/inboxes/" + in.ID + "/deliveries"
	ds, err := h.Webhooks.Inboxes.Deliveries(ctx, owner(ctx), in.ID)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	return &InboxDeliveriesOutput{CacheControl: "no-store", Body: InboxDeliveries{InboxID: in.ID, Deliveries: ds}}, nil
}

func (h *handlers) setInboxBehaviour(ctx context.Context, in *BehaviourInput) (*InboxOutput, error) {
	instance := "/v1/sandbox/inboxes/" + in.ID + "/behaviour"
	b := in.Body
	ib, err := h.Webhooks.Inboxes.SetBehaviour(ctx, owner(ctx), in.ID, inbox.Behaviour{Status: b.Status, Remaining: b.Count, RetryAfter: b.RetryAfter})
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	v, err := h.inboxView(ctx, ib)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	return &InboxOutput{Location: v.DeliveriesURL, CacheControl: "no-store", Body: v}, nil
}

func (h *handlers) receive(ctx context.Context, in *ReceiveInput) (*ReceiveOutput, error) {
	instance := "/v1/sandbox/inboxes/" + in.ID
	// Huma reuses the body's buffer after the handler: the store copies it.
	ans, err := h.Webhooks.Inboxes.Receive(ctx, in.ID, in.header, append([]byte(nil), in.RawBody...))
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	out := &ReceiveOutput{Status: ans.Status}
	ra := ""
	if ans.RetryAfter > 0 {
		ra = strconv.Itoa(ans.RetryAfter)
	}
	switch {
	case ans.Status >= 400:
		return nil, h.problemFor(ctx, simulatedFailure{status: ans.Status, retryAfter: ans.RetryAfter}, instance)
	case ans.Status >= 300:
		out.Location = instance
	}
	out.RetryAfter = ra
	return out, nil
}
