package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/sse"
)

func (h *handlers) registerInboxEvents(api huma.API) {
	if h.Webhooks == nil {
		return
	}
	op := huma.Operation{
		OperationID: "streamInboxEvents",
		Method:      http.MethodGet,
		Path:        "/v1/sandbox/inboxes/{id}/events",
		Tags:        []string{"Sandbox"},
		Summary:     "Watch an inbox live (server-sent events)",
		Description: "Streams each webhook the inbox receives as it arrives, so a page can show deliveries next to the request that caused them. " +
			"The stream opens with `event: ready` (the inbox, with its `received` count), then sends `event: delivery` per delivery, whose `data` is the delivery " +
			"as in the delivery list: headers, body, what the inbox answered, and the signature check step by step. Event ids count deliveries. " +
			"There is no replay: after a reconnect, list the deliveries to catch up. Comment lines keep idle streams open; streams end after 5 minutes.",
		Security: []map[string][]string{{bearerScheme: {}}},
		Metadata: map[string]any{policyKey: PolicyPoll},
		Responses: map[string]*huma.Response{"200": {
			Description: "The event stream.",
			Content: map[string]*huma.MediaType{"text/event-stream": {
				Schema:  &huma.Schema{Type: "string", Description: "Server-sent events (WHATWG HTML §9.2)."},
				Example: "retry: 2000\nid: 0\nevent: ready\ndata: {\"id\":\"inb_7kq2m4x6zbw3dcn5ey8f1hvra9\",\"received\":0,…}\n\nid: 1\nevent: delivery\ndata: {\"id\":\"…\",\"headers\":{\"Webhook-Id\":[\"msg_…\"],…},\"verification\":{\"valid\":true,…}}\n\n",
			}},
		}},
	}
	h.documentProblems(api, &op, problems.Unauthorized, problems.NotFound, problems.RateLimited, problems.ValidationFailed)
	huma.Register(api, op, h.streamInboxEvents)
}

func (h *handlers) streamInboxEvents(ctx context.Context, in *InboxIDParam) (*huma.StreamResponse, error) {
	instance := "/v1/sandbox/inboxes/" + in.ID + "/events"
	store := h.Webhooks.Inboxes
	who := owner(ctx)
	ib, err := store.Get(ctx, who, in.ID)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	view, err := h.inboxView(ctx, ib)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	release := func() {}
	if h.Limiter != nil {
		var refused error
		if release, refused = h.Limiter.AcquireStream(who, network(ctx)); refused != nil {
			return nil, h.problemFor(ctx, streamLimitError{alternative: "list the deliveries", err: refused}, instance)
		}
	}
	ready, err := json.Marshal(view)
	if err != nil {
		release()
		return nil, h.problemFor(ctx, fmt.Errorf("encoding inbox: %w", err), instance)
	}
	// Every delivery after the ready event's count, whichever replica
	// received it. The subscription ends with the request at the latest.
	deliveries, cancel, err := store.Subscribe(ctx, in.ID, ib.Received)
	if err != nil {
		release()
		return nil, h.problemFor(ctx, err, instance)
	}
	return &huma.StreamResponse{Body: func(hc huma.Context) {
		defer release()
		defer cancel()
		sw, err := sse.NewWriter(&contextWriter{ctx: hc, header: http.Header{}})
		if err != nil {
			return
		}
		if err := sw.Send(sse.Event{ID: strconv.Itoa(ib.Received), Event: "ready", Data: string(ready), Retry: streamRetry}); err != nil {
			return
		}
		// Event ids are the deliveries' sequence numbers: the inbox's
		// count, the same on every replica.
		_ = follow(hc.Context(), h.Clock, sw, 0, deliveries, func(d inbox.Delivery) (sse.Event, error) {
			data, err := json.Marshal(d)
			if err != nil {
				return sse.Event{}, fmt.Errorf("encoding delivery: %w", err)
			}
			return sse.Event{ID: strconv.Itoa(d.Seq), Event: "delivery", Data: string(data)}, nil
		})
	}}, nil
}
