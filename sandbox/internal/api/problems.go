package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/idempotency"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/inbox"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/sse"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// This file is the one place where errors become RFC 9457 problems.
// Handlers and middleware return domain errors (the sentinels of jobs,
// idempotency, inbox, keys and webhooks, or the request errors below) and
// problemFor picks the catalog entry, the words and the headers. Huma's own
// errors come through problemFromHuma, and a job's stored failure through
// jobProblem. A test checks that nothing else in the package calls
// Catalog.New.

// ErrDatabaseUnavailable wraps a failed check of the database (readiness).
var ErrDatabaseUnavailable = errors.New("database unavailable")

// Request errors: why a request could not be served, with what the answer
// needs to say.
type (
	// unauthorizedError: no usable API key.
	unauthorizedError struct{ reason string }
	// rateLimitedError: a rate-limit policy refused the request. The
	// limiter's headers (RateLimit, RateLimit-Policy, Retry-After) are
	// already on the response, so the problem adds none of its own.
	rateLimitedError struct {
		byKey   bool   // per API key, or per client network
		scope   string // what the policy counts per: "API key", "network" or "inbox" ("" by byKey)
		network string // the client's network, for "network"
		policy  ratelimit.Policy
		wait    time.Duration
	}
	// streamLimitError: the key, its network or this replica holds as
	// many event streams as it may (err is a *ratelimit.StreamError).
	streamLimitError struct {
		alternative string
		err         error
	}
	// notReadyError: a result was asked for before its job succeeded.
	notReadyError struct{ job jobs.Job }
	// notSentError: an import has no webhook to redeliver.
	notSentError struct{ importID, jobID, why string }
	// pendingError: an import's webhook is still being delivered.
	pendingError struct{ jobID, messageID string }
	// callbackError: a callback URL that cannot be used.
	callbackError struct{ err error }
	// bodyError: the body could not be read, or is larger than allowed.
	bodyError struct {
		err      error
		tooLarge bool
	}
	// simulatedFailure: an inbox told to answer a delivery with status.
	simulatedFailure struct{ status, retryAfter int }
	// RouteError: no operation at this path (Allow empty) or not for this
	// method (Allow lists the methods that are).
	RouteError struct {
		Method, Path string
		Allow        []string
	}
)

func (e unauthorizedError) Error() string { return "unauthorized: " + e.reason }
func (e rateLimitedError) Error() string  { return "rate limited by policy " + e.policy.Name }
func (e streamLimitError) Error() string  { return "too many event streams" }
func (e notReadyError) Error() string     { return "result of " + e.job.ID + " not ready" }
func (e notSentError) Error() string      { return "no webhook sent for " + e.importID }
func (e pendingError) Error() string      { return "webhook " + e.messageID + " still pending" }
func (e callbackError) Error() string     { return "callback URL refused: " + e.err.Error() }
func (e callbackError) Unwrap() error     { return e.err }
func (e bodyError) Error() string         { return "request body: " + e.err.Error() }
func (e bodyError) Unwrap() error         { return e.err }
func (e simulatedFailure) Error() string  { return "inbox told to answer " + strconv.Itoa(e.status) }
func (e RouteError) Error() string        { return "no route for " + e.Method + " " + e.Path }

// problemFor maps err to its problem about instance (the request path).
// Errors it does not know become internal_error and are logged.
func (h *handlers) problemFor(ctx context.Context, err error, instance string) *problems.Problem {
	p := ProblemFor(h.Catalog, err, instance)
	if p != nil {
		return p
	}
	c := h.Catalog
	var (
		rl  rateLimitedError
		nr  notReadyError
		ns  notSentError
		pe  pendingError
		ce  callbackError
		sf  simulatedFailure
		ua  unauthorizedError
		sl  streamLimitError
		be  bodyError
		tr  tooManyRowsError
		pt  pageTokenError
		lt  listTokenError
		ret = func(p *problems.Problem) *problems.Problem { return p.WithInstance(instance) }
	)
	switch {
	case errors.As(err, &ua):
		return ret(c.New(problems.Unauthorized, ua.reason).WithHeader("WWW-Authenticate", `Bearer realm="accepted-sandbox"`))
	case errors.As(err, &rl):
		who := "This client network"
		switch {
		case rl.scope == "inbox":
			who = "This inbox"
		case rl.scope == "network" && rl.network != "":
			who = "Your network (" + rl.network + ")"
		case rl.scope == "API key", rl.scope == "" && rl.byKey:
			who = "This API key"
		}
		return ret(c.New(problems.RateLimited, fmt.Sprintf("%s allows %d requests per %d s under policy %q; retry in %d s.",
			who, rl.policy.Burst, rl.policy.Window(), rl.policy.Name, seconds(rl.wait))))
	case errors.As(err, &sl):
		var se *ratelimit.StreamError
		who := "This API key has as many event streams open as one key may"
		if errors.As(sl.err, &se) {
			switch se.Scope {
			case ratelimit.ScopeKey:
				who = fmt.Sprintf("This API key has as many event streams open as one key may (%d)", se.Limit)
			case ratelimit.ScopeNetwork:
				who = fmt.Sprintf("The API keys of your network have as many event streams open as one network may (%d)", se.Limit)
			case ratelimit.ScopeReplica:
				who = fmt.Sprintf("This copy of the sandbox has as many event streams open as it serves (%d)", se.Limit)
			}
		}
		return ret(c.New(problems.RateLimited, who+". Close one, or "+sl.alternative+" instead.").
			WithHeader("Retry-After", "5"))
	case errors.As(err, &be):
		if be.tooLarge {
			return ret(c.New(problems.RequestTooLarge, "The request body is larger than this operation accepts."))
		}
		return ret(c.New(problems.MalformedRequest, "The request body could not be read: "+be.err.Error()))
	case errors.As(err, &tr):
		p := c.New(problems.ValidationFailed, fmt.Sprintf("body.rows: an import takes at most %d rows and this one has %d; split it into imports of up to %d rows.",
			imports.MaxRows, tr.rows, imports.MaxRows))
		p.ListErrors([]*problems.FieldError{{Location: "body.rows", Message: fmt.Sprintf("expected array length <= %d", imports.MaxRows),
			Value: fmt.Sprintf("array of %d items", tr.rows)}})
		return ret(p)
	case errors.As(err, &pt):
		p := c.New(problems.ValidationFailed, "query.page_token: "+pt.Error()+"; pass a next_page_token this import gave, or leave page_token out for the first page.")
		p.ListErrors([]*problems.FieldError{{Location: "query.page_token", Message: pt.Error()}})
		return ret(p)
	case errors.As(err, &lt):
		p := c.New(problems.ValidationFailed, "query.page_token: this "+lt.Error()+". Pass the next_page_token of the previous page unchanged, "+
			"with the same API key and filters, or leave page_token out to start again from the first page.")
		p.ListErrors([]*problems.FieldError{{Location: "query.page_token", Message: lt.Error()}})
		return ret(p)
	case errors.As(err, &nr):
		return ret(c.New(problems.ResultNotReady, "The job "+nr.job.ID+" is "+string(nr.job.Status)+", so there is no result here; poll "+statusURL(nr.job.ID)+".").
			WithJob(nr.job.ID))
	case errors.As(err, &ns):
		return ret(c.New(problems.WebhookNotSent, "Import "+ns.importID+" has no webhook to redeliver: "+ns.why+".").WithJob(ns.jobID))
	case errors.As(err, &pe):
		return ret(c.New(problems.WebhookDeliveryPending, "Message "+pe.messageID+" is still being delivered (an attempt is under way or a retry is scheduled); "+
			"watch "+instance+" and redeliver once its outcome is final.").WithJob(pe.jobID))
	case errors.As(err, &ce):
		code := problems.ValidationFailed
		if errors.Is(ce.err, safedial.ErrBlockedAddress) {
			code = problems.CallbackURLBlocked
		}
		p := c.New(code, "body.callback_url: "+ce.err.Error())
		p.Errors = []*problems.FieldError{{Location: "body.callback_url", Message: ce.err.Error()}}
		return ret(p)
	case errors.As(err, &sf):
		p := c.New(problems.InboxSimulatedFailure, "This inbox was told (PUT "+instance+"/behaviour) to answer "+
			strconv.Itoa(sf.status)+" "+http.StatusText(sf.status)+"; the delivery was stored anyway.")
		p.Status = sf.status
		if sf.retryAfter > 0 {
			p = p.WithHeader("Retry-After", strconv.Itoa(sf.retryAfter))
		}
		return ret(p)
	case errors.Is(err, jobs.ErrGone):
		return ret(c.New(problems.JobExpired, fmt.Sprintf("This job finished more than %s ago, so it was deleted. Start a new one.", h.Retention)))
	case errors.Is(err, jobs.ErrQueueFull):
		wait := seconds(h.Engine.QueueRetryAfter())
		detail := fmt.Sprintf("The work queue is full, so nothing was created. Retry in %d s.", wait)
		var se *jobs.ShareError
		if errors.As(err, &se) && se.Guaranteed > 0 {
			detail = fmt.Sprintf("The work queue is full (%d unfinished jobs), so nothing was created. A key with fewer than %d unfinished jobs is still served; "+
				"this one has more, or the queue's reserve for them is used up too. Retry in %d s, or cancel jobs you no longer need.", se.Limit, se.Guaranteed, wait)
		}
		return ret(c.New(problems.QueueFull, detail).WithHeader("Retry-After", strconv.Itoa(wait)))
	case errors.Is(err, jobs.ErrOwnerBusy):
		wait := seconds(h.Engine.QueueRetryAfter())
		limit := ""
		if se := (*jobs.ShareError)(nil); errors.As(err, &se) {
			limit = fmt.Sprintf(" (%d)", se.Limit)
		}
		return ret(c.New(problems.TooManyJobs, fmt.Sprintf("This API key has as many unfinished jobs as one key may%s; nothing was created. Retry in %d s, or cancel jobs you no longer need.", limit, wait)).
			WithHeader("Retry-After", strconv.Itoa(wait)))
	case errors.Is(err, jobs.ErrNetworkBusy):
		wait := seconds(h.Engine.QueueRetryAfter())
		share := "as many unfinished jobs as one network may"
		if se := (*jobs.ShareError)(nil); errors.As(err, &se) {
			share = fmt.Sprintf("%d unfinished jobs, as many as one network may", se.Limit)
			if se.Network != "" {
				share = fmt.Sprintf("%d unfinished jobs, as many as one network may (yours is %s)", se.Limit, se.Network)
			}
		}
		return ret(c.New(problems.TooManyJobs, fmt.Sprintf("The API keys of your network have %s: the sandbox is shared, and one network gets a share of its queue. "+
			"Nothing was created. Retry in %d s, or cancel jobs you no longer need; another key from the same network does not help.", share, wait)).
			WithHeader("Retry-After", strconv.Itoa(wait)))
	}
	h.Logger.ErrorContext(ctx, "unexpected error", "instance", instance, "err", err)
	return ret(c.New(problems.InternalError, "The sandbox hit an unexpected error; nothing you sent was wrong."))
}

// ProblemFor maps the errors whose problem needs nothing but the catalog,
// and answers nil for any other error. The app uses it for requests that
// reach no operation (RouteError).
func ProblemFor(c *problems.Catalog, err error, instance string) *problems.Problem {
	var (
		p  *problems.Problem
		re RouteError
	)
	ret := func(p *problems.Problem) *problems.Problem { return p.WithInstance(instance) }
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &re) && len(re.Allow) > 0:
		return ret(c.New(problems.MethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; use %s.", re.Method, re.Path, strings.Join(re.Allow, " or "))).
			WithHeader("Allow", strings.Join(re.Allow, ", ")))
	case errors.As(err, &re):
		return ret(c.New(problems.NotFound, "No API operation at "+re.Path+". The reference lists them all; the spec is at /openapi.json."))
	case errors.Is(err, inbox.ErrNotFound):
		return ret(c.New(problems.NotFound, "No inbox at "+instance+": it never existed, it was dropped (each API key keeps its 20 newest, and an inbox that received nothing for a day expires), or it belongs to another API key."))
	case errors.Is(err, jobs.ErrNotFound):
		return ret(c.New(problems.NotFound, "Nothing exists at "+instance+" for this API key. Jobs and results are visible only to the key that started them."))
	case errors.Is(err, jobs.ErrFinished):
		return ret(c.New(problems.JobAlreadyFinished, "The job already reached a terminal state, which never changes; GET its status URL for the outcome."))
	case errors.Is(err, ErrDatabaseUnavailable):
		return ret(c.New(problems.DatabaseUnavailable, "This copy of the sandbox cannot reach its database right now; retry in 5 s.").WithHeader("Retry-After", "5"))
	case errors.Is(err, jobs.ErrClosed):
		return ret(c.New(problems.ShuttingDown, "The sandbox is shutting down and accepts no new jobs; nothing was created. Retry in 30 s.").
			WithHeader("Retry-After", "30"))
	case errors.Is(err, sse.ErrBadLastEventID):
		return ret(c.New(problems.MalformedRequest, err.Error()))
	case errors.Is(err, idempotency.ErrKeyInvalid):
		return ret(c.New(problems.IdempotencyKeyInvalid, err.Error()))
	case errors.Is(err, idempotency.ErrInFlight):
		return ret(c.New(problems.IdempotencyKeyInUse, "A request with this Idempotency-Key is still being handled. Wait for its answer, then retry with the same key to get it again.").
			WithHeader("Retry-After", "1"))
	case errors.Is(err, idempotency.ErrMismatch):
		return ret(c.New(problems.IdempotencyKeyReused, "This Idempotency-Key was already used with a different request body or URL. Use a new key for a new request."))
	case errors.Is(err, idempotency.ErrOwnerFull):
		return ret(c.New(problems.RateLimited, "This API key holds as many Idempotency-Keys as it may; they expire after 24 h.").WithHeader("Retry-After", "60"))
	case errors.Is(err, keys.ErrNetworkFull), errors.Is(err, keys.ErrFull):
		wait, limit := time.Minute, 0
		var fe *keys.FullError
		if errors.As(err, &fe) {
			wait, limit = fe.RetryAfter, fe.Limit
		}
		ra := strconv.Itoa(seconds(wait))
		if errors.Is(err, keys.ErrNetworkFull) {
			return ret(c.New(problems.RateLimited, fmt.Sprintf("Your network holds %d API keys, as many as one network may, and each has unfinished work "+
				"(a key without any would have made room). Use one of your keys, or retry in %s s, when some of that work is due to end.", limit, ra)).WithHeader("Retry-After", ra))
		}
		return ret(c.New(problems.QueueFull, fmt.Sprintf("The sandbox holds %d API keys, as many as it may, and each has unfinished work "+
			"(a key without any would have made room). Retry in %s s, when some of that work is due to end.", limit, ra)).WithHeader("Retry-After", ra))
	case errors.Is(err, webhooks.ErrQueueFull), errors.Is(err, webhooks.ErrClosed):
		return ret(c.New(problems.QueueFull, "The webhook queue is full, so nothing was sent. Retry in 5 s.").WithHeader("Retry-After", "5"))
	}
	return nil
}

// jobProblem is the `error` of a failed job: its stored failure as a
// catalog problem.
func jobProblem(c *problems.Catalog, j jobs.Job, fallback string) *problems.Problem {
	code, detail := problems.InternalError, fallback
	if j.Failure != nil {
		code, detail = j.Failure.Code, j.Failure.Detail
	}
	return c.New(code, detail).WithJob(j.ID).WithInstance(statusURL(j.ID))
}

// writeProblem writes p outside a handler (in middleware).
func writeProblem(api huma.API, ctx huma.Context, p *problems.Problem) {
	p = withTrace(ctx.Context(), p)
	for k, vs := range p.GetHeaders() {
		for _, v := range vs {
			ctx.AppendHeader(k, v)
		}
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	// The status line is out: a client that stopped reading is all that
	// can make this fail, and there is nobody left to tell.
	_ = api.Marshal(ctx.BodyWriter(), "application/json", p)
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
	// Only the errors a problem lists are kept (problems.MaxErrors); the
	// others are counted. Huma's own value for an unknown property is the
	// whole object it sits in, so nothing of a value is copied before
	// ListErrors summarises it.
	var all, parse []*problems.FieldError
	nAll, nParse := 0, 0
	for _, err := range errs {
		var fe *problems.FieldError
		var d huma.ErrorDetailer
		switch {
		case errors.As(err, &d):
			ed := d.ErrorDetail()
			fe = &problems.FieldError{Location: ed.Location, Message: ed.Message, Value: ed.Value}
		case err != nil:
			fe = &problems.FieldError{Message: err.Error()}
		default:
			continue
		}
		if nAll++; len(all) < problems.MaxErrors {
			all = append(all, fe)
		}
		if fe.Location == "body" {
			if nParse++; len(parse) < problems.MaxErrors {
				parse = append(parse, fe)
			}
		}
	}
	total := nAll
	if (code == problems.MalformedRequest || code == problems.UnsupportedMediaType) && nParse > 0 {
		// Huma runs our cross-field checks even when the body did not parse;
		// their complaints about empty fields would only hide the real cause.
		all, total = parse, nParse
	}
	if total > 0 {
		p.ListErrors(all)
		p.ErrorsOmitted = total - len(p.Errors)
	}
	if code == problems.UnsupportedMediaType {
		p.Detail = "Send the body as JSON with the header Content-Type: application/json (with curl: -H 'Content-Type: application/json')."
	} else if total == 1 && p.Errors[0].Location != "" {
		p.Detail = fmt.Sprintf("%s: %s", p.Errors[0].Location, p.Errors[0].Message)
	} else if total > 1 {
		p.Detail = problems.ErrorsDetail(total, len(p.Errors))
	}
	return p
}

// seconds rounds d up to whole seconds, at least 1: the delay-seconds form
// of Retry-After (RFC 9110 §10.2.3).
func seconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
