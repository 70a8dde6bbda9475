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
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
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
}

// Keys issues and checks API keys.
type Keys interface {
	Issue() (string, keys.Key, error)
	Lookup(plain string) (keys.Key, error)
}

// Limiter decides whether a caller (an API key, or a client address for key
// creation) may make one more request under a named policy.
type Limiter interface {
	Allow(key, policy string) (ratelimit.Decision, error)
	Policy(name string) (ratelimit.Policy, bool)
	// Acquire takes one of the key's concurrent-stream slots.
	Acquire(key string) (release func(), ok bool)
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
}

type handlers struct {
	Deps
}

// Security scheme name used by every operation that needs a key.
const bearerScheme = "sandboxKey"

// ownerKey is the context key under which the authenticated key's id travels.
type ownerKey struct{}

func owner(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}

// Config returns the Huma configuration of the sandbox API: OpenAPI 3.1,
// the bearer security scheme, and no `$schema` field or `Link` header in
// responses (the one job body stays exactly as documented), and no docs page
// (Huma's loads its renderer from a CDN; the project renders its own).
func Config(title, version string) huma.Config {
	cfg := huma.DefaultConfig(title, version)
	cfg.CreateHooks = nil
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
// JSON, validation, oversize bodies) are catalog problems too; Huma exposes
// that hook only as a package variable.
func Register(api huma.API, d Deps) {
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		return problemFromHuma(d.Catalog, status, msg, errs)
	}
	h := &handlers{d}
	api.UseMiddleware(h.authenticate(api), h.rateLimit(api), h.idempotent(api))
	h.registerKeys(api)
	h.registerJobs(api)
	h.registerEvents(api)
	h.registerReports(api)
	h.registerExports(api)
	h.registerImports(api)
	h.registerWebhooks(api)
	h.registerInbox(api)
	h.registerInboxEvents(api)
	h.addJobExamples(api)
	h.addRequestExamples(registered(api, http.MethodPost, "/v1/reports"), map[string]any{"title": "January sales", "from": "2026-01-01", "to": "2026-01-31"})
	h.addRequestExamples(registered(api, http.MethodPost, "/v1/exports"), map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-03-31"})
}

// authenticate checks the bearer key of every operation that declares security.
func (h *handlers) authenticate(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
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
			k, err := h.Keys.Lookup(strings.TrimSpace(token))
			if err == nil {
				next(huma.WithValue(ctx, ownerKey{}, k.ID))
				return
			}
			msg = "This API key is not known to the sandbox (keys live in memory and vanish when it restarts). Get a new one with POST /v1/sandbox/keys."
		}
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="accepted-sandbox"`)
		p := h.Catalog.New(problems.Unauthorized, msg).WithInstance(ctx.URL().Path)
		_ = writeProblem(api, ctx, p)
	}
}

// writeProblem writes p outside a handler (in middleware).
func writeProblem(api huma.API, ctx huma.Context, p *problems.Problem) error {
	for k, vs := range p.GetHeaders() {
		for _, v := range vs {
			ctx.AppendHeader(k, v)
		}
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	return api.Marshal(ctx.BodyWriter(), "application/json", p)
}

// Rate-limit policies, named in an operation's metadata under policyKey.
const (
	policyKey = "ratelimit"
	// PolicyPoll limits reads of job status per API key.
	PolicyPoll = "poll"
	// PolicyStart limits starting jobs per API key.
	PolicyStart = "start"
	// PolicyKeys limits key creation per client address.
	PolicyKeys = "keys"
)

// rateLimit applies the operation's policy: per API key, or per client
// address for operations that need no key.
func (h *handlers) rateLimit(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		policy, _ := ctx.Operation().Metadata[policyKey].(string)
		if policy == "" || h.Limiter == nil {
			next(ctx)
			return
		}
		key := owner(ctx.Context())
		if key == "" {
			key = clientAddr(ctx.RemoteAddr())
		}
		d, err := h.Limiter.Allow(key, policy)
		pol, known := h.Limiter.Policy(policy)
		if err != nil || !known {
			// A policy missing from the limiter's configuration is a wiring bug:
			// log it and serve the request rather than refuse everyone.
			h.Logger.ErrorContext(ctx.Context(), "rate limit policy unavailable", "policy", policy, "err", err)
			next(ctx)
			return
		}
		for k, vs := range ratelimit.Headers(d, pol) {
			for _, v := range vs {
				ctx.AppendHeader(k, v)
			}
		}
		if d.Allowed {
			next(ctx)
			return
		}
		wait := seconds(d.RetryAfter)
		p := h.Catalog.New(problems.RateLimited, fmt.Sprintf("This %s allows %d requests per %d s under policy %q; retry in %d s.",
			map[bool]string{true: "API key", false: "client address"}[owner(ctx.Context()) != ""], pol.Burst, pol.Window(), policy, wait)).
			WithHeader("Retry-After", strconv.Itoa(wait)).WithInstance(ctx.URL().Path)
		_ = writeProblem(api, ctx, p)
	}
}

// clientAddr is the host part of a remote address.
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// problemFor maps a domain error to its problem: the one place where that
// happens. Errors it does not know become internal_error and are logged.
func (h *handlers) problemFor(ctx context.Context, err error, instance string) error {
	var p *problems.Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, jobs.ErrNotFound):
		return h.Catalog.New(problems.NotFound, "Nothing exists at "+instance+" for this API key. Jobs and results are visible only to the key that started them.").WithInstance(instance)
	case errors.Is(err, jobs.ErrGone):
		return h.Catalog.New(problems.JobExpired, fmt.Sprintf("This job finished more than %s ago, so it was deleted. Start a new one.", h.Retention)).WithInstance(instance)
	case errors.Is(err, jobs.ErrFinished):
		return h.Catalog.New(problems.JobAlreadyFinished, "The job already reached a terminal state, which never changes; GET its status URL for the outcome.").WithInstance(instance)
	case errors.Is(err, jobs.ErrQueueFull):
		wait := seconds(h.Engine.QueueRetryAfter())
		return h.Catalog.New(problems.QueueFull, fmt.Sprintf("The work queue is full, so nothing was created. Retry in %d s.", wait)).
			WithHeader("Retry-After", strconv.Itoa(wait)).WithInstance(instance)
	case errors.Is(err, jobs.ErrClosed):
		return h.Catalog.New(problems.ShuttingDown, "The sandbox is shutting down and accepts no new jobs; nothing was created. Retry in 30 s.").
			WithHeader("Retry-After", "30").WithInstance(instance)
	case errors.Is(err, jobs.ErrOwnerBusy):
		wait := seconds(h.Engine.QueueRetryAfter())
		return h.Catalog.New(problems.TooManyJobs, fmt.Sprintf("This API key has as many unfinished jobs as one key may; nothing was created. Retry in %d s, or cancel jobs you no longer need.", wait)).
			WithHeader("Retry-After", strconv.Itoa(wait)).WithInstance(instance)
	}
	h.Logger.ErrorContext(ctx, "unexpected error", "instance", instance, "err", err)
	return h.Catalog.New(problems.InternalError, "The sandbox hit an unexpected error; nothing you sent was wrong.").WithInstance(instance)
}

// problemFromHuma turns the errors Huma raises itself into catalog problems.
func problemFromHuma(c *problems.Catalog, status int, msg string, errs []error) *problems.Problem {
	code := problems.InternalError
	switch status {
	case http.StatusBadRequest:
		code = problems.MalformedRequest
	case http.StatusUnauthorized:
		code = problems.Unauthorized
	case http.StatusNotFound:
		code = problems.NotFound
	case http.StatusMethodNotAllowed:
		code = problems.MethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		code = problems.RequestTooLarge
	case http.StatusUnsupportedMediaType:
		code = problems.UnsupportedMediaType
	case http.StatusUnprocessableEntity:
		code = problems.ValidationFailed
	case http.StatusTooManyRequests:
		code = problems.RateLimited
	}
	p := c.New(code, msg)
	if status != 0 && code == problems.InternalError && status != http.StatusInternalServerError {
		p.Detail = msg
	}
	for _, err := range errs {
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			ed := d.ErrorDetail()
			fe := &problems.FieldError{Location: ed.Location, Message: ed.Message}
			if s, ok := ed.Value.(string); ok && len(s) > 200 {
				fe.Value = s[:200] + "…"
			} else {
				fe.Value = ed.Value
			}
			p.Errors = append(p.Errors, fe)
			continue
		}
		if err != nil {
			p.Errors = append(p.Errors, &problems.FieldError{Message: err.Error()})
		}
	}
	if code == problems.MalformedRequest || code == problems.UnsupportedMediaType {
		// Huma runs our cross-field checks even when the body did not parse;
		// their complaints about empty fields would only hide the real cause.
		var parse []*problems.FieldError
		for _, fe := range p.Errors {
			if fe.Location == "body" {
				parse = append(parse, fe)
			}
		}
		if len(parse) > 0 {
			p.Errors = parse
		}
	}
	if code == problems.UnsupportedMediaType {
		p.Detail = "Send the body as JSON with the header Content-Type: application/json (with curl: -H 'Content-Type: application/json')."
	} else if len(p.Errors) == 1 && p.Errors[0].Location != "" {
		p.Detail = fmt.Sprintf("%s: %s", p.Errors[0].Location, p.Errors[0].Message)
	} else if len(p.Errors) > 1 {
		p.Detail = fmt.Sprintf("%d problems with the request; see errors.", len(p.Errors))
	}
	return p
}

// seconds rounds d up to whole seconds, at least 1: the delay-seconds form
// of Retry-After (RFC 9110 §10.2.3).
func seconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
