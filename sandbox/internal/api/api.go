// Package api is the sandbox's HTTP API: the Huma operations under /v1 that
// start jobs with 202 Accepted, the status monitor that follows them, and the
// results they produce.
//
// Handlers translate between HTTP and the job engine; the engine knows nothing
// of HTTP. Domain errors become RFC 9457 problems in one place, problemFor.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
)

// Engine is what the API needs of the job engine.
type Engine interface {
	Submit(ctx context.Context, s jobs.Spec) (jobs.Job, error)
	Get(ctx context.Context, owner, id string) (jobs.Job, error)
	Cancel(ctx context.Context, owner, id string) (jobs.Job, error)
	Watch(ctx context.Context, owner, id string) (current jobs.Job, updates <-chan jobs.Job, stop func(), err error)
	QueueRetryAfter() time.Duration
	// List answers a page of an owner's jobs, newest first, and whether
	// more follow.
	List(ctx context.Context, q jobs.ListQuery) (page []jobs.Job, more bool, err error)
}

// Keys issues and checks API keys.
type Keys interface {
	// Issue mints a key for a client of network (see ratelimit.Network).
	Issue(ctx context.Context, network string) (string, keys.Key, error)
	Lookup(ctx context.Context, plain string) (keys.Key, error)
}

// Limiter decides whether a caller (an API key, or a client address for key
// creation) may make one more request under a named policy.
type Limiter interface {
	Allow(key, policy string) (ratelimit.Decision, error)
	Policy(name string) (ratelimit.Policy, bool)
	// AcquireStream takes one of the key's concurrent-stream slots,
	// counted against its network's share and the replica's too; a
	// refusal is a *ratelimit.StreamError naming the share.
	AcquireStream(key, network string) (release func(), err error)
}

// Deps are what the operations need.
type Deps struct {
	Engine  Engine
	Keys    Keys
	Catalog *problems.Catalog
	Clock   clock.Clock
	Logger  *slog.Logger
	// Scale is the time scale of simulated work (1 = real time).
	Scale float64
	// Limiter may be nil: no limits.
	Limiter Limiter
	// Retention is how long finished jobs stay readable (documented in the spec).
	Retention time.Duration
	// Webhooks serves imports' webhooks, signing secrets and the built-in
	// inbox (NewWebhooks); nil refuses them.
	Webhooks *Webhooks
	// Idempotency may be nil: Idempotency-Key is then ignored.
	Idempotency Idempotency
	// IdempotencyTTL is how long keys are kept (documented in the spec).
	IdempotencyTTL time.Duration
	// Fault, for tests only, injects a failure at a named point of a
	// request ("idempotency-link": in the job's transaction, before the
	// Idempotency-Key record names the job; "idempotency-complete": after
	// the job committed, before its answer is stored, as a crash would).
	Fault func(point string) error
}

// fault answers the error injected at point, if any.
func (h *handlers) fault(point string) error {
	if h.Fault == nil {
		return nil
	}
	return h.Fault(point)
}

type handlers struct {
	Deps
	views viewCache // the poll shortcut's encoded finished jobs
}

// Security scheme name used by every operation that needs a key.
const bearerScheme = "bearerAuth"

// ownerKey is the context key under which the authenticated key's id travels.
type ownerKey struct{}

func owner(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}

// networkKey is the context key of the network whose shares a request
// counts in: the authenticated key's (recorded when it was minted), or
// the client's for an operation without a key.
type networkKey struct{}

func network(ctx context.Context) string {
	s, _ := ctx.Value(networkKey{}).(string)
	return s
}

// sandboxKey marks a request the sandbox made to itself (a webhook to its
// own inbox): it is not a visitor's, so it counts in no visitor's share.
type sandboxKey struct{}

// FromSandbox marks ctx as the context of a request the sandbox makes to
// itself, such as delivering a webhook to one of its own inboxes.
func FromSandbox(ctx context.Context) context.Context {
	return context.WithValue(ctx, sandboxKey{}, true)
}

func fromSandbox(ctx context.Context) bool { b, _ := ctx.Value(sandboxKey{}).(bool); return b }

// Config returns the Huma configuration of the sandbox API: OpenAPI 3.1,
// the bearer security scheme, and no `$schema` field or `Link` header in
// responses (the one job body stays exactly as documented), and no docs page
// (Huma's loads its renderer from a CDN; the project renders its own).
func Config(title, version string) huma.Config {
	cfg := huma.DefaultConfig(title, version)
	cfg.CreateHooks = nil
	cfg.Transformers = append(cfg.Transformers, traceProblems)
	cfg.DocsPath = ""
	cfg.SchemasPath = ""
	cfg.Info.Description = "A live sandbox for asynchronous HTTP APIs built on `202 Accepted`. " +
		"Every flow starts with a POST that answers 202 with a status monitor in `Location`; " +
		"poll it (honouring `Retry-After`) until it answers 303 See Other to the result, or shows a failure from the error catalog."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		bearerScheme: {
			Type: "http", Scheme: "bearer",
			Description: "A sandbox key from `POST /v1/sandbox/keys`, sent as `Authorization: Bearer <key>`. Jobs belong to the key that started them.",
		},
	}
	cfg.Tags = []*huma.Tag{
		{Name: "Sandbox", Description: "Get a key to call the sandbox with."},
		{Name: "Jobs", Description: "The status monitor every flow shares: poll it, follow its 303, cancel through it."},
		{Name: "Reports", Description: "POST a report request, poll the job, follow the 303 to the finished report."},
		{Name: "Exports", Description: "POST an export, watch its progress, download the file."},
		{Name: "Imports", Description: "POST product rows, get per-row results, and a signed webhook when the import ends."},
		{Name: "Webhooks", Description: "Signed webhooks (Standard Webhooks 1.0): your signing secret, its rotation, and each import's delivery log."},
	}
	return cfg
}

// Register adds every operation to api. It also installs the catalog as
// Huma's error constructor, so that errors Huma raises itself (malformed
// JSON, validation, oversize bodies) are catalog problems too. Huma exposes
// that hook only as package variables, which every API in the process
// shares: they are set once (installErrorHooks), and each request carries
// its own API's catalog to them.
//
// It answers the status monitor's shortcut (see pollShortcut): a wrapper
// for the handler Huma's routes are on, which answers the common poll
// itself and hands everything else on.
func Register(api huma.API, d Deps) (shortcut func(http.Handler) http.Handler) {
	installErrorHooks(d.Catalog)
	h := &handlers{Deps: d}
	api.UseMiddleware(h.withCatalog, h.authenticate(api), h.rateLimit(api), h.idempotent(api))
	h.registerKeys(api)
	h.registerJobs(api)
	h.registerJobList(api)
	h.registerEvents(api)
	h.registerReports(api)
	h.registerExports(api)
	h.registerImports(api)
	h.registerWebhooks(api)
	h.registerDeadLetters(api)
	h.registerInbox(api)
	h.registerInboxEvents(api)
	h.addJobExamples(api)
	h.addRequestExamples(registered(api, http.MethodPost, "/v1/reports"), map[string]any{"title": "January sales", "from": "2026-01-01", "to": "2026-01-31"})
	h.addRequestExamples(registered(api, http.MethodPost, "/v1/exports"), map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-03-31"})
	h.finishSpec(api)
	return h.pollShortcut
}

// catalogKey carries the catalog of the API a request reached, for Huma's
// error hooks.
type catalogKey struct{}

var errorHooks sync.Once

// installErrorHooks points Huma's error constructors at the catalog, once
// per process: the catalog of the request's API when Huma names its
// request, else (at registration, where Huma only needs an example of the
// error's shape) the first API's.
func installErrorHooks(first *problems.Catalog) {
	errorHooks.Do(func() {
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			return problemFromHuma(first, status, msg, errs)
		}
		huma.NewErrorWithContext = func(ctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
			c := first
			if ctx != nil {
				if own, ok := ctx.Context().Value(catalogKey{}).(*problems.Catalog); ok {
					c = own
				}
			}
			return problemFromHuma(c, status, msg, errs)
		}
	})
}

// withCatalog puts the API's catalog in the request's context.
func (h *handlers) withCatalog(ctx huma.Context, next func(huma.Context)) {
	next(huma.WithValue(ctx, catalogKey{}, h.Catalog))
}

// authenticate checks the bearer key of every operation that declares security.
func (h *handlers) authenticate(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(huma.WithValue(ctx, networkKey{}, ratelimit.Network(ctx.RemoteAddr())))
			return
		}
		auth := ctx.Header("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		var msg string
		switch {
		case auth == "":
			msg = "This operation needs an API key: send `Authorization: Bearer <key>`. Get a key with POST /v1/sandbox/keys."
		case !ok || !strings.EqualFold(scheme, "Bearer"):
			msg = "The Authorization header must use the Bearer scheme: `Authorization: Bearer <key>`."
		}
		if msg == "" {
			k, err := h.Keys.Lookup(ctx.Context(), strings.TrimSpace(token))
			if err == nil {
				next(huma.WithValue(huma.WithValue(ctx, ownerKey{}, k.ID), networkKey{}, k.Network))
				return
			}
			if !errors.Is(err, keys.ErrUnknown) {
				writeProblem(api, ctx, h.problemFor(ctx.Context(), err, ctx.URL().Path))
				return
			}
			msg = "This API key is not known to the sandbox. Get a new one with POST /v1/sandbox/keys."
		}
		writeProblem(api, ctx, h.problemFor(ctx.Context(), unauthorizedError{msg}, ctx.URL().Path))
	}
}

// Rate-limit policies, named in an operation's metadata under policyKey.
const (
	policyKey = "ratelimit"
	// PolicyPoll limits reads of job status per API key.
	PolicyPoll = "poll"
	// PolicyStart limits starting jobs per API key.
	PolicyStart = "start"
	// PolicyKeys limits key creation per client network (its /24 or
	// /64: see ratelimit.Network).
	PolicyKeys = "keys"
	// PolicyInbox limits deliveries to one inbox, whoever sends them;
	// PolicyInboxNetwork, set beside it under inboxNetworkKey, limits the
	// deliveries one network sends to all inboxes. The sandbox's own
	// webhooks count in neither.
	PolicyInbox        = "inbox"
	PolicyInboxNetwork = "inbox-network"
	// inboxNetworkKey names an operation's second policy, per network.
	inboxNetworkKey = "ratelimit-network"
)

// rateLimit applies the operation's policies: per API key, per inbox
// (the id in the path) for PolicyInbox, or per client network for
// operations that need no key; an operation may add a per-network policy
// (inboxNetworkKey). The answer carries the RateLimit headers of the
// policy that refused it, or else of the one with the least left.
func (h *handlers) rateLimit(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		policy, _ := ctx.Operation().Metadata[policyKey].(string)
		if policy == "" || h.Limiter == nil || fromSandbox(ctx.Context()) {
			next(ctx)
			return
		}
		nw := network(ctx.Context())
		type check struct{ key, policy, scope string }
		checks := []check{{owner(ctx.Context()), policy, "API key"}}
		switch {
		case policy == PolicyInbox:
			checks[0] = check{"inbox " + ctx.Param("id"), policy, "inbox"}
		case checks[0].key == "":
			checks[0] = check{"net " + nw, policy, "network"}
		}
		if extra, _ := ctx.Operation().Metadata[inboxNetworkKey].(string); extra != "" {
			checks = append(checks, check{"net " + nw, extra, "network"})
		}
		var (
			shown ratelimit.Decision
			pol   ratelimit.Policy
			by    check
		)
		for _, c := range checks {
			d, err := h.allow(ctx.Context(), c.key, c.policy)
			p, known := h.Limiter.Policy(c.policy)
			if err != nil || !known {
				// A policy missing from the limiter's configuration is a wiring bug:
				// log it and serve the request rather than refuse everyone.
				h.Logger.ErrorContext(ctx.Context(), "rate limit policy unavailable", "policy", c.policy, "err", err)
				continue
			}
			if by.policy == "" || !d.Allowed || d.Remaining < shown.Remaining {
				shown, pol, by = d, p, c
			}
			if !d.Allowed {
				break // a refused request takes no token from the next bucket
			}
		}
		if by.policy == "" {
			next(ctx)
			return
		}
		for k, vs := range ratelimit.Headers(shown, pol) {
			for _, v := range vs {
				ctx.AppendHeader(k, v)
			}
		}
		if shown.Allowed {
			next(ctx)
			return
		}
		refusal := rateLimitedError{byKey: owner(ctx.Context()) != "", scope: by.scope, network: nw, policy: pol, wait: shown.RetryAfter}
		writeProblem(api, ctx, h.problemFor(ctx.Context(), refusal, ctx.URL().Path))
	}
}
