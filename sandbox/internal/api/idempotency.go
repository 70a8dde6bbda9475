package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/idempotency"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Idempotency remembers Idempotency-Key requests (IETF draft, Stripe practice).
type Idempotency interface {
	Begin(ctx context.Context, owner, key string, fingerprint [32]byte) (idempotency.Outcome, error)
	// Link records, in the job's transaction, that the claim made the job.
	Link(ctx context.Context, tx sqldb.Tx, owner, key, jobID string) error
	Complete(ctx context.Context, owner, key string, resp idempotency.Response) error
	Abandon(ctx context.Context, owner, key string) error
}

// idempotentKey marks, in an operation's metadata, that it honours
// Idempotency-Key; replayKey holds, for an operation that starts jobs, how
// to answer from the job alone (a replayer).
const (
	idempotentKey = "idempotent"
	replayKey     = "replay"
)

// replayer answers a job-starting request from its job: the 202's headers,
// and the body to send.
type replayer func(h *handlers, j jobs.Job) (*AcceptedOutput, any)

// claim is an Idempotency-Key claimed by this request, for accept to link
// to the job it makes.
type claim struct{ owner, key string }

type claimKey struct{}

// maxIdempotentBody bounds the body read to fingerprint a request; the
// operation's own MaxBodyBytes is smaller, so nothing valid is cut.
const maxIdempotentBody = 1 << 20

// idempotencyParam documents the header on operations that honour it.
func idempotencyParam(keep string) *huma.Param {
	return &huma.Param{
		Name: idempotency.KeyHeader, In: "header",
		Description: "A key of your choosing (1 to 255 printable ASCII characters, such as a UUID) that makes retrying this POST safe: " +
			"the same key with the same body replays the first response (the same job, marked `Idempotent-Replayed: true`) instead of starting another job. " +
			"The same key with a different body is refused with 422 `idempotency_key_reused`; while the first request is still being handled, with 409 `idempotency_key_in_use`. " +
			"Keys belong to your API key and are kept for " + keep + ".",
		Schema:  &huma.Schema{Type: "string", MinLength: ptr(1), MaxLength: ptr(255)},
		Example: "4f0b6a4e-8d1c-4d8e-9b8a-2f3c5d6e7f80",
	}
}

// idempotent makes an operation honour Idempotency-Key: it replays stored
// answers, refuses reuse with another body and concurrent reuse, and stores
// the first 2xx answer. Error answers are not stored, so a client can retry
// a refused request (a full queue, a validation error) with the same key.
func (h *handlers) idempotent(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		raw := ctx.Header(idempotency.KeyHeader)
		if on, _ := ctx.Operation().Metadata[idempotentKey].(bool); !on || raw == "" || h.Idempotency == nil {
			next(ctx)
			return
		}
		instance := ctx.URL().Path
		key, err := idempotency.ParseKeyHeader(raw)
		if err != nil {
			writeProblem(api, ctx, h.problemFor(ctx.Context(), err, instance))
			return
		}
		body, err := io.ReadAll(io.LimitReader(ctx.BodyReader(), maxIdempotentBody+1))
		if err != nil {
			writeProblem(api, ctx, h.problemFor(ctx.Context(), bodyError{err: err}, instance))
			return
		}
		if len(body) > maxIdempotentBody {
			writeProblem(api, ctx, h.problemFor(ctx.Context(), bodyError{err: errors.New("too large"), tooLarge: true}, instance))
			return
		}
		who := owner(ctx.Context())
		out, err := h.Idempotency.Begin(ctx.Context(), who, key, idempotency.Fingerprint(ctx.Method(), instance, body))
		if err != nil {
			writeProblem(api, ctx, h.problemFor(ctx.Context(), err, instance))
			return
		}
		if out.Replayed {
			h.replay(api, ctx, who, out, instance)
			return
		}
		rec := &recordingContext{humaContext: ctx, body: bytes.NewReader(body), header: http.Header{}}
		completed := false
		defer func() {
			// Runs even if the handler panics, so the key is not left blocked.
			if !completed {
				_ = h.Idempotency.Abandon(context.WithoutCancel(ctx.Context()), who, key)
			}
		}()
		next(huma.WithValue(rec, claimKey{}, claim{who, key}))
		if rec.status >= 200 && rec.status < 300 && h.fault("idempotency-complete") != nil {
			completed = true // as if the process died here: neither stored nor abandoned
			return
		}
		if rec.status >= 200 && rec.status < 300 {
			resp := idempotency.Response{Status: rec.status, Header: rec.header, Body: rec.out.Bytes()}
			if err := h.Idempotency.Complete(context.WithoutCancel(ctx.Context()), who, key, resp); err != nil {
				h.Logger.WarnContext(ctx.Context(), "idempotent response not stored", "err", err)
			} else {
				completed = true
			}
		}
	}
}

// replay answers again what the first request with the key answered: the
// stored answer; or, when the process stopped between making the job and
// storing the answer, the 202 of that job as it is now.
func (h *handlers) replay(api huma.API, ctx huma.Context, who string, out idempotency.Outcome, instance string) {
	if out.Response.Status != 0 {
		for k, vs := range out.Response.Header {
			for _, v := range vs {
				ctx.AppendHeader(k, v)
			}
		}
		ctx.SetHeader(idempotency.ReplayedHeader, "true")
		ctx.SetStatus(out.Response.Status)
		_, _ = ctx.BodyWriter().Write(out.Response.Body)
		return
	}
	render, _ := ctx.Operation().Metadata[replayKey].(replayer)
	j, err := h.Engine.Get(ctx.Context(), who, out.JobID)
	if err == nil && render == nil {
		err = fmt.Errorf("operation %s stores no replayer", ctx.Operation().OperationID)
	}
	if err != nil {
		writeProblem(api, ctx, h.problemFor(ctx.Context(), err, instance))
		return
	}
	acc, body := render(h, j)
	ctx.SetHeader("Location", acc.Location)
	if acc.RetryAfter != "" {
		ctx.SetHeader("Retry-After", acc.RetryAfter)
	}
	ctx.SetHeader("Cache-Control", acc.CacheControl)
	ctx.SetHeader("Content-Type", "application/json")
	ctx.SetHeader(idempotency.ReplayedHeader, "true")
	ctx.SetStatus(http.StatusAccepted)
	_ = api.Marshal(ctx.BodyWriter(), "application/json", body)
}

// humaContext lets recordingContext embed huma.Context, whose Context
// method would clash with an embedded field of that name.
type humaContext = huma.Context

// recordingContext passes a request through while keeping a copy of the
// answer, and serves the already-read body again.
type recordingContext struct {
	humaContext
	body   io.Reader
	status int
	header http.Header
	out    bytes.Buffer
}

func (c *recordingContext) BodyReader() io.Reader { return c.body }

func (c *recordingContext) SetStatus(code int) {
	c.status = code
	c.humaContext.SetStatus(code)
}

func (c *recordingContext) SetHeader(name, value string) {
	c.header.Set(name, value)
	c.humaContext.SetHeader(name, value)
}

func (c *recordingContext) AppendHeader(name, value string) {
	c.header.Add(name, value)
	c.humaContext.AppendHeader(name, value)
}

func (c *recordingContext) BodyWriter() io.Writer {
	return io.MultiWriter(c.humaContext.BodyWriter(), &c.out)
}
