package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// stubEngine answers every call with the error it is given, to check how
// each domain error becomes a problem.
type stubEngine struct{ err error }

func (s stubEngine) Submit(context.Context, jobs.Spec) (jobs.Job, error)   { return jobs.Job{}, s.err }
func (s stubEngine) Get(context.Context, string, string) (jobs.Job, error) { return jobs.Job{}, s.err }
func (s stubEngine) Cancel(context.Context, string, string) (jobs.Job, error) {
	return jobs.Job{}, s.err
}
func (s stubEngine) QueueRetryAfter() time.Duration { return 7 * time.Second }

func newTestAPI(t *testing.T, engine Engine) (humatest.TestAPI, string) {
	t.Helper()
	_, api := humatest.New(t, Config("test", "1"))
	reg := keys.NewRegistry(10, time.Now)
	key, _, err := reg.Issue()
	if err != nil {
		t.Fatal(err)
	}
	Register(api, Deps{
		Engine: engine, Keys: reg, Catalog: problems.New("https://docs.example"),
		Clock: clock.Real(), Logger: slog.New(slog.DiscardHandler), Scale: 1, Retention: 24 * time.Hour,
	})
	return api, key
}

// TestProblemFor checks the one place where domain errors become problems.
func TestProblemFor(t *testing.T) {
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{jobs.ErrNotFound, 404, problems.NotFound, ""},
		{fmt.Errorf("store: %w", jobs.ErrGone), 410, problems.JobExpired, ""},
		{jobs.ErrFinished, 409, problems.JobAlreadyFinished, ""},
		{jobs.ErrQueueFull, 503, problems.QueueFull, "7"},
		{jobs.ErrClosed, 503, problems.QueueFull, "7"},
		{errors.New("disk on fire"), 500, problems.InternalError, ""},
	}
	for _, c := range cases {
		api, key := newTestAPI(t, stubEngine{c.err})
		for _, call := range []struct{ method, path, body string }{
			{"GET", "/v1/jobs/job_abc", ""},
			{"POST", "/v1/reports", `{"from":"2026-01-01","to":"2026-01-02"}`},
		} {
			args := []any{"Authorization: Bearer " + key}
			if call.body != "" {
				args = append(args, strings.NewReader(call.body))
			}
			resp := api.Do(call.method, call.path, args...)
			if c.err == jobs.ErrFinished && call.method == "POST" {
				continue // a POST never meets ErrFinished
			}
			var p problems.Problem
			if err := json.Unmarshal(resp.Body.Bytes(), &p); err != nil {
				t.Fatalf("%v %s: %v", c.err, call.path, err)
			}
			if resp.Code != c.status || p.Code != c.code || p.Status != c.status || resp.Header().Get("Retry-After") != c.retryAfter {
				t.Errorf("%v on %s %s: %d %s Retry-After %q", c.err, call.method, call.path, resp.Code, p.Code, resp.Header().Get("Retry-After"))
			}
			if resp.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%v: content type %q", c.err, resp.Header().Get("Content-Type"))
			}
			if c.code == problems.InternalError && strings.Contains(p.Detail, "disk on fire") {
				t.Errorf("internal error leaked its cause to the client: %q", p.Detail)
			}
		}
	}
}

// TestAuthenticate checks the 401s and that a valid key reaches the handler.
func TestAuthenticate(t *testing.T) {
	api, key := newTestAPI(t, stubEngine{jobs.ErrNotFound})
	for _, c := range []struct {
		header string
		status int
		detail string
	}{
		{"", 401, "needs an API key"},
		{"Authorization: Token " + key, 401, "Bearer scheme"},
		{"Authorization: Bearer sk_sandbox_unknown", 401, "not known"},
		{"Authorization: bearer " + key, 404, ""},
	} {
		args := []any{}
		if c.header != "" {
			args = append(args, c.header)
		}
		r := api.Do("GET", "/v1/jobs/job_abc", args...)
		if r.Code != c.status {
			t.Errorf("%q: %d, want %d", c.header, r.Code, c.status)
		}
		if c.status == 401 {
			if !strings.Contains(r.Body.String(), c.detail) || !strings.HasPrefix(r.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%q: %s / %q", c.header, r.Body, r.Header().Get("WWW-Authenticate"))
			}
		}
	}
}
