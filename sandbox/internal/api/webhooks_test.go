package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/accepted-dev/accepted/sandbox/internal/callbacks"
	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/secrets"
)

// oneKey accepts one API key, as key_test.
type oneKey struct{}

const oneKeyPlain = keys.Prefix + "test"

func (oneKey) Issue(context.Context, string) (string, keys.Key, error) {
	return oneKeyPlain, keys.Key{ID: "key_test"}, nil
}

func (oneKey) Lookup(_ context.Context, plain string) (keys.Key, error) {
	if plain != oneKeyPlain {
		return keys.Key{}, keys.ErrUnknown
	}
	return keys.Key{ID: "key_test"}, nil
}

// webhooksAPI registers the operations with webhooks w (nil: none).
func webhooksAPI(t *testing.T, w *Webhooks) humatest.TestAPI {
	t.Helper()
	_, api := humatest.New(t, Config("test", "1"))
	Register(api, Deps{
		Keys: oneKey{}, Catalog: problems.New("https://docs.example"), Webhooks: w,
		Clock: clock.Real(), Logger: slog.New(slog.DiscardHandler), Scale: 1, Retention: 24 * time.Hour,
	})
	return api
}

// TestWithoutWebhooks: a sandbox built without webhooks (the tests of
// other parts) has no webhook or inbox routes, and refuses a callback_url
// rather than accept an import whose webhook it could not send.
func TestWithoutWebhooks(t *testing.T) {
	api := webhooksAPI(t, nil)
	auth := "Authorization: Bearer " + oneKeyPlain
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/webhooks/secret"},
		{http.MethodPost, "/v1/webhooks/secret/rotate"},
		{http.MethodGet, "/v1/imports/imp_x/deliveries"},
		{http.MethodPost, "/v1/sandbox/inboxes"},
		{http.MethodGet, "/v1/sandbox/inboxes/inb_x/events"},
		{http.MethodPost, "/v1/sandbox/inboxes/inb_x"},
	} {
		if r := api.Do(c.method, c.path, auth); r.Code != http.StatusNotFound && r.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s without webhooks: %d, want no route", c.method, c.path, r.Code)
		}
	}
	for _, path := range []string{"/v1/webhooks/secret", "/v1/sandbox/inboxes", "/v1/imports/{id}/deliveries"} {
		if api.OpenAPI().Paths[path] != nil {
			t.Errorf("the spec documents %s without webhooks", path)
		}
	}
	r := api.Post("/v1/imports", auth, map[string]any{
		"rows":         []map[string]any{{"sku": "A-1", "name": "A", "quantity": 1, "price_cents": 1}},
		"callback_url": "https://example.com/hook",
	})
	var p problems.Problem
	if err := json.Unmarshal(r.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if r.Code != http.StatusUnprocessableEntity || p.Code != problems.ValidationFailed || !strings.Contains(p.Detail, "webhooks are not configured") {
		t.Errorf("an import with a callback_url without webhooks: %d %s", r.Code, r.Body)
	}
}

// TestWithWebhooks: the routes are there, and reach the parts given.
func TestWithWebhooks(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	api := webhooksAPI(t, &Webhooks{Service: fakeService{}, Secrets: fakeSecrets{now}, Inboxes: fakeInboxes{now}})
	auth := "Authorization: Bearer " + oneKeyPlain
	r := api.Get("/v1/webhooks/secret", auth)
	if r.Code != http.StatusOK || !strings.Contains(r.Body.String(), "whsec_fake") || r.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("GET secret: %d %s", r.Code, r.Body)
	}
	r = api.Post("/v1/sandbox/inboxes", auth)
	if r.Code != http.StatusCreated || !strings.Contains(r.Body.String(), "https://sandbox.example.com/v1/sandbox/inboxes/inb_fake") {
		t.Errorf("POST inbox: %d %s", r.Code, r.Body)
	}
}

type fakeService struct{}

func (fakeService) CheckCallback(string) error                   { return nil }
func (fakeService) Enable(context.Context, string, string) error { return nil }
func (fakeService) Deliveries(context.Context, string, string, string) (callbacks.Status, error) {
	return callbacks.Status{}, nil
}
func (fakeService) Redeliver(context.Context, string, string) (string, error) { return "", nil }
func (fakeService) DeadLetters(context.Context, string, outbox.DeadCursor, int) ([]outbox.DeadLetter, bool, error) {
	return nil, false, nil
}
func (fakeService) InboxURL(id string) string {
	return "https://sandbox.example.com/v1/sandbox/inboxes/" + id
}

type fakeSecrets struct{ now time.Time }

func (f fakeSecrets) Get(context.Context, string) (secrets.Set, error) {
	return secrets.Set{Current: secrets.Secret{Value: "whsec_fake", CreatedAt: f.now}}, nil
}
func (f fakeSecrets) Rotate(ctx context.Context, owner string) (secrets.Set, error) {
	return f.Get(ctx, owner)
}
func (fakeSecrets) Grace() time.Duration { return time.Hour }

type fakeInboxes struct{ now time.Time }

func (f fakeInboxes) Create(_ context.Context, owner string) (inbox.Inbox, error) {
	return inbox.Inbox{ID: "inb_fake", Owner: owner, CreatedAt: f.now}, nil
}
func (f fakeInboxes) Get(ctx context.Context, owner, _ string) (inbox.Inbox, error) {
	return f.Create(ctx, owner)
}
func (f fakeInboxes) SetBehaviour(ctx context.Context, owner, _ string, _ inbox.Behaviour) (inbox.Inbox, error) {
	return f.Create(ctx, owner)
}
func (fakeInboxes) Receive(context.Context, string, http.Header, []byte) (inbox.Answer, error) {
	return inbox.Answer{Status: http.StatusNoContent}, nil
}
func (fakeInboxes) Deliveries(context.Context, string, string) ([]inbox.Delivery, error) {
	return nil, nil
}
func (fakeInboxes) Subscribe(context.Context, string, int) (<-chan inbox.Delivery, func(), error) {
	return nil, func() {}, nil
}
