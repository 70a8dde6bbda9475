package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// KeyOutput is a freshly issued sandbox key.
type KeyOutput struct {
	Body SandboxKey
}

// SandboxKey is a freshly issued key.
type SandboxKey struct {
	Key       string    `json:"key" maxLength:"128" doc:"The API key. It is shown once: the sandbox keeps only a digest. Send it as Authorization: Bearer <key>." example:"sk_sandbox_mfrggzdfmztwq2lknnwg23tpobyxe43u"`
	KeyID     string    `json:"key_id" maxLength:"64" doc:"A name for the key that is safe to log." example:"key_5c1f0e8a2b3d4f60"`
	CreatedAt time.Time `json:"created_at" maxLength:"35" doc:"When the key was issued (RFC 3339)."`
	Note      string    `json:"note" maxLength:"256" doc:"What the key is good for."`
}

func (h *handlers) registerKeys(api huma.API) {
	op := huma.Operation{
		OperationID: "createSandboxKey",
		Method:      http.MethodPost,
		Path:        "/v1/sandbox/keys",
		Tags:        []string{"Sandbox"},
		Summary:     "Get a sandbox API key",
		Description: "Issues a new API key for the sandbox; no sign-up. Every other operation needs it as `Authorization: Bearer <key>`, and the jobs you start belong to it: another key cannot see them. Keys are kept in the sandbox's database, so a restart does not lose them.\n\n" +
			"The sandbox is shared, so each visitor gets a fair share of it. A visitor is its network: the /24 of an IPv4 address, the /64 of an IPv6 one. " +
			"Key creation is rate limited per network; a key unused for a week (the operator can change that) is deleted with its inboxes and secrets; " +
			"and when the sandbox, or your network, holds as many keys as it may, the least recently used key without unfinished work makes room. " +
			"Only when every such key has work in progress is the answer 503 (for the sandbox) or 429 (for your network), with a `Retry-After` of when some work is due to end.",
		DefaultStatus: http.StatusCreated,
		Metadata:      map[string]any{policyKey: PolicyKeys},
	}
	h.documentProblems(api, &op, problems.RateLimited, problems.QueueFull)
	huma.Register(api, op, func(ctx context.Context, _ *struct{}) (*KeyOutput, error) {
		plain, k, err := h.Keys.Issue(ctx, network(ctx))
		if err != nil {
			return nil, h.problemFor(ctx, err, op.Path)
		}
		out := &KeyOutput{}
		out.Body.Key, out.Body.KeyID, out.Body.CreatedAt = plain, k.ID, k.CreatedAt.UTC()
		out.Body.Note = "Sandbox key: send it as Authorization: Bearer <key>. Jobs you start belong to this key only."
		h.Logger.InfoContext(ctx, "sandbox key issued", "key_id", k.ID, "network", k.Network)
		return out, nil
	})
}
