package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
)

// pollRoute is the status monitor's route, as the mux names it: the
// shortcut sets it on the requests it answers, so that metrics and traces
// count them under the same route as those Huma answers.
const pollRoute = "GET /v1/jobs/{id}"

// decidedKey carries a rate-limit decision the shortcut already took to the
// rateLimit middleware, when it hands a request on: a request takes at
// most one token, whoever answers it.
type decidedKey struct{}

type decided struct {
	key, policy string
	d           ratelimit.Decision
}

// allow is Limiter.Allow, unless the shortcut already decided for the same
// key and policy.
func (h *handlers) allow(ctx context.Context, key, policy string) (ratelimit.Decision, error) {
	if p, ok := ctx.Value(decidedKey{}).(decided); ok && p.key == key && p.policy == policy {
		return p.d, nil
	}
	return h.Limiter.Allow(key, policy)
}

// pollShortcut answers the request a client makes most often, polling a
// job it owns, without Huma's per-request pipeline: the same checks in the
// same order (the key, then the poll rate limit, then the job), the same
// headers and the same body as getJob, encoded by the same JSON settings.
// Anything else it hands to next unanswered, having taken nothing that
// next takes again: a malformed id, a missing or unknown key, a refusal, an
// unknown or expired job, a body in another format. Huma then answers it
// with the problem it documents. A test holds the two to the same bytes.
func (h *handlers) pollShortcut(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		id, ok := strings.CutPrefix(r.URL.Path, "/v1/jobs/")
		if !ok || !validJobID(id) || !acceptsJSON(r.Header.Values("Accept")) {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		k, err := h.Keys.Lookup(ctx, strings.TrimSpace(token))
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		// handOn passes the request on with the decision taken; the mux
		// names the route on the copy, and whoever wraps this handler reads
		// it from the original.
		handOn := func(d *decided) {
			r2 := r
			if d != nil {
				r2 = r.WithContext(context.WithValue(ctx, decidedKey{}, *d))
			}
			next.ServeHTTP(w, r2)
			r.Pattern = r2.Pattern
		}
		var (
			limit http.Header
			taken *decided
		)
		if h.Limiter != nil && !fromSandbox(ctx) {
			d, err := h.Limiter.Allow(k.ID, PolicyPoll)
			p, known := h.Limiter.Policy(PolicyPoll)
			if err != nil || !known {
				handOn(nil) // Huma logs the wiring error and serves it
				return
			}
			taken = &decided{k.ID, PolicyPoll, d}
			if !d.Allowed {
				handOn(taken) // Huma answers the refusal
				return
			}
			limit = ratelimit.Headers(d, p)
		}
		j, err := h.Engine.Get(ctx, k.ID, id)
		if err != nil {
			handOn(taken)
			return
		}
		body, err := h.views.encode(h, j)
		if err != nil {
			handOn(taken)
			return
		}
		r.Pattern = pollRoute
		hd := w.Header()
		for name, vs := range limit {
			hd[name] = vs
		}
		hd["Cache-Control"] = noStore
		hd["Content-Type"] = contentJSON
		status, location, retryAfter := h.pollAnswer(j)
		if location != "" {
			hd["Location"] = []string{location}
		}
		if retryAfter != "" {
			hd["Retry-After"] = []string{retryAfter}
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}

var (
	noStore     = []string{"no-store"}
	contentJSON = []string{"application/json"}
)

// validJobID is JobIDParam's pattern and length, ^job_[a-z0-9]+$ and at
// most 64 bytes, without a regular expression.
func validJobID(id string) bool {
	rest, ok := strings.CutPrefix(id, "job_")
	if !ok || rest == "" || len(id) > 64 {
		return false
	}
	for i := range len(rest) {
		if c := rest[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// acceptsJSON reports whether a request's Accept is one the shortcut may
// answer with JSON without negotiating: none, anything, or JSON by name.
func acceptsJSON(accept []string) bool {
	switch len(accept) {
	case 0:
		return true
	case 1:
		a := accept[0]
		return a == "" || a == "*/*" || a == "application/json"
	}
	return false
}

// viewCache keeps the encoded views of finished jobs, which never change:
// a finished job is polled until its client notices, sometimes by many
// clients at once, and encoding it was a seventh of a poll's time. It is
// bounded; when full, an arbitrary entry makes room (Go's map order).
type viewCache struct {
	mu      sync.Mutex
	entries map[string]encodedView
}

type encodedView struct {
	version int64
	body    []byte
}

// maxViews bounds the views kept: at about 700 bytes each, under 3 MB.
const maxViews = 4096

// encode answers the job's encoded view, from the cache when it is of the
// same version. The bytes answered must not be changed.
func (c *viewCache) encode(h *handlers, j jobs.Job) ([]byte, error) {
	if !j.Status.Terminal() {
		return h.encodeView(j)
	}
	c.mu.Lock()
	e, ok := c.entries[j.ID]
	c.mu.Unlock()
	if ok && e.version == j.Version {
		return e.body, nil
	}
	body, err := h.encodeView(j)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]encodedView)
	}
	if _, ok := c.entries[j.ID]; !ok && len(c.entries) >= maxViews {
		for id := range c.entries {
			delete(c.entries, id)
			break
		}
	}
	c.entries[j.ID] = encodedView{j.Version, body}
	return body, nil
}

// encodeView is the job's view as Huma's JSON format encodes it.
func (h *handlers) encodeView(j jobs.Job) ([]byte, error) {
	b := bufPool.Get().(*bytes.Buffer)
	defer func() { b.Reset(); bufPool.Put(b) }()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h.view(j)); err != nil {
		return nil, err
	}
	return bytes.Clone(b.Bytes()), nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
