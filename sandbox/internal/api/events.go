package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/sse"
)

// Event stream timing. The retry hint tells a browser how long to wait
// before reconnecting; streams end after streamLifetime so that no
// connection lives forever (the client resumes with Last-Event-ID).
const (
	streamRetry     = 2 * time.Second
	streamLifetime  = 5 * time.Minute
	streamHeartbeat = sse.DefaultHeartbeat
)

// JobEventsInput names the job and where a reconnecting client left off.
type JobEventsInput struct {
	JobIDParam
	LastEventID      string `header:"Last-Event-ID" maxLength:"19" doc:"The id of the last event received; the stream resumes after it. Browsers' EventSource sends it by itself when it reconnects."`
	LastEventIDQuery string `query:"last_event_id" maxLength:"19" doc:"The same as Last-Event-ID, for clients that cannot set headers."`
}

// jobEvent turns a job state into the event that announces it: its id is
// the job's version, which rises with every change, so Last-Event-ID says
// exactly which state a client saw.
func (h *handlers) jobEvent(j jobs.Job) (sse.Event, error) {
	data, err := json.Marshal(h.view(j))
	if err != nil {
		return sse.Event{}, fmt.Errorf("encoding job event: %w", err)
	}
	ev := sse.Event{ID: strconv.FormatInt(j.Version, 10), Event: "progress", Data: string(data)}
	if j.Status.Terminal() {
		ev.Event, ev.Terminal = string(j.Status), true
	}
	return ev, nil
}

func (h *handlers) registerEvents(api huma.API) {
	op := huma.Operation{
		OperationID: "streamJobEvents",
		Method:      http.MethodGet,
		Path:        "/v1/jobs/{id}/events",
		Tags:        []string{"Jobs"},
		Summary:     "Follow a job live (server-sent events)",
		Description: "The status monitor as a stream of server-sent events, for live progress without polling. " +
			"The headers and the job's current state arrive at once; then one event per change; then one terminal event, and the stream ends.\n\n" +
			"- `event: progress` while the job is queued or processing; `event: succeeded`, `failed` or `canceled` at the end.\n" +
			"- `data:` is the same job object the status monitor returns.\n" +
			"- `id:` rises with every change; reconnect with `Last-Event-ID` (EventSource does this by itself) to resume after it.\n" +
			"- A comment line (`: keep-alive`) every 15 s keeps idle connections open through proxies; `retry:` suggests 2 s between reconnects.\n\n" +
			"Subscribing to a finished job sends its terminal event and ends; if `Last-Event-ID` shows you already have it, the answer is 204 No Content, which stops a browser from reconnecting. " +
			"Streams last at most 5 minutes (reconnect to go on), and an API key may hold 5 open at once, the keys of one network 100 and every copy of the sandbox 5,000 (the operator can change these).",
		Security: []map[string][]string{{bearerScheme: {}}},
		Metadata: map[string]any{policyKey: PolicyPoll},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "The event stream.",
				Content: map[string]*huma.MediaType{"text/event-stream": {
					Schema:  &huma.Schema{Type: "string", Description: "Server-sent events (WHATWG HTML §9.2)."},
					Example: "retry: 2000\nid: 3\nevent: progress\ndata: {\"id\":\"" + exampleJobID + "\",\"status\":\"processing\",\"percent_complete\":40,…}\n\n: keep-alive\n\nid: 7\nevent: succeeded\ndata: {\"id\":\"" + exampleJobID + "\",\"status\":\"succeeded\",\"percent_complete\":100,…}\n\n",
				}},
			},
			"204": {Description: "The job is finished and Last-Event-ID shows its terminal event was already received: nothing more will come."},
		},
	}
	h.documentProblems(api, &op, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.RateLimited, problems.MalformedRequest, problems.ValidationFailed)
	huma.Register(api, op, h.streamJobEvents)
}

func (h *handlers) streamJobEvents(ctx context.Context, in *JobEventsInput) (*huma.StreamResponse, error) {
	instance := statusURL(in.ID) + "/events"
	seen, resumed, err := sse.LastEventID(&http.Request{
		Header: http.Header{"Last-Event-Id": {in.LastEventID}},
		URL:    &url.URL{RawQuery: url.Values{"last_event_id": {in.LastEventIDQuery}}.Encode()},
	})
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	who := owner(ctx)
	release := func() {}
	if h.Limiter != nil {
		var refused error
		if release, refused = h.Limiter.AcquireStream(who, network(ctx)); refused != nil {
			return nil, h.problemFor(ctx, streamLimitError{alternative: "poll the status monitor", err: refused}, instance)
		}
	}
	// The stream outlives this function, so the watch is tied to the
	// server-side request context the stream body runs with.
	watchCtx, cancel := context.WithCancel(ctx)
	current, updates, stop, err := h.Engine.Watch(watchCtx, who, in.ID)
	if err != nil {
		cancel()
		release()
		return nil, h.problemFor(ctx, err, instance)
	}
	first, err := h.jobEvent(current)
	if err != nil {
		stop()
		cancel()
		release()
		return nil, h.problemFor(ctx, err, instance)
	}
	return &huma.StreamResponse{Body: func(hc huma.Context) {
		defer release()
		defer cancel()
		defer stop()
		w := &contextWriter{ctx: hc, header: http.Header{}}
		if current.Status.Terminal() {
			// R36: no waiting on a finished job.
			if resumed && seen >= current.Version {
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if sw, err := sse.NewWriter(w); err == nil {
				first.Retry = streamRetry
				_ = sw.Send(first)
			}
			return
		}
		sw, err := sse.NewWriter(w)
		if err != nil {
			h.Logger.WarnContext(ctx, "event stream not started", "job", in.ID, "err", err)
			return
		}
		if err := h.pump(hc.Context(), sw, first, !resumed || seen < current.Version, updates); err != nil && !errors.Is(err, context.Canceled) {
			h.Logger.DebugContext(ctx, "event stream ended", "job", in.ID, "err", err)
		}
	}}, nil
}

// pump sends the current state (unless the client has it), then follows
// the job's updates until its terminal event.
func (h *handlers) pump(ctx context.Context, sw *sse.Writer, first sse.Event, sendFirst bool, updates <-chan jobs.Job) error {
	retry := streamRetry
	if sendFirst {
		first.Retry, retry = retry, 0
		if err := sw.Send(first); err != nil {
			return err
		}
	} else if err := sw.Comment("resumed after event " + first.ID); err != nil {
		return err
	}
	return follow(ctx, h.Clock, sw, retry, updates, h.jobEvent)
}

// follow sends an event for each update, with heartbeat comments while
// nothing happens; it returns after a terminal event, when updates closes,
// when the client leaves, or at the stream's lifetime. retry, when set, is
// sent with the first event.
func follow[T any](ctx context.Context, clk clock.Clock, sw *sse.Writer, retry time.Duration, updates <-chan T, event func(T) (sse.Event, error)) error {
	ticker := clk.NewTicker(streamHeartbeat)
	defer ticker.Stop()
	lifetime := clk.After(streamLifetime)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lifetime:
			return sse.ErrMaxLifetime
		case <-ticker.C():
			if err := sw.Comment(sse.DefaultHeartbeatText); err != nil {
				return err
			}
		case u, ok := <-updates:
			if !ok {
				return nil
			}
			ev, err := event(u)
			if err != nil {
				return err
			}
			ev.Retry, retry = retry, 0
			if err := sw.Send(ev); err != nil {
				return err
			}
			if ev.Terminal {
				return nil
			}
		}
	}
}

// contextWriter lets the sse package, written for net/http, write through a
// Huma context whatever adapter sits underneath.
type contextWriter struct {
	ctx    huma.Context
	header http.Header
}

func (c *contextWriter) Header() http.Header { return c.header }

func (c *contextWriter) WriteHeader(code int) {
	for k, vs := range c.header {
		for _, v := range vs {
			c.ctx.AppendHeader(k, v)
		}
	}
	c.ctx.SetStatus(code)
}

func (c *contextWriter) Write(b []byte) (int, error) { return c.ctx.BodyWriter().Write(b) }

func (c *contextWriter) Flush() {
	if f, ok := c.ctx.BodyWriter().(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying ResponseWriter to http.ResponseController
// (for write deadlines), when the adapter has one.
func (c *contextWriter) Unwrap() http.ResponseWriter {
	rw, _ := c.ctx.BodyWriter().(http.ResponseWriter)
	return rw
}
