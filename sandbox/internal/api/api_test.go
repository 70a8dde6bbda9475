package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/idempotency"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/sqlite"
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
func (s stubEngine) List(context.Context, jobs.ListQuery) ([]jobs.Job, bool, error) {
	return nil, false, s.err
}
func (s stubEngine) Watch(context.Context, string, string) (jobs.Job, <-chan jobs.Job, func(), error) {
	return jobs.Job{}, nil, func() {}, s.err
}

// newTestDB is a migrated throwaway database for the keys and the
// Idempotency-Key records.
func newTestDB(t *testing.T) sqldb.DB {
	t.Helper()
	db, err := sqlite.Memory(t.Context(), nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	return db
}

// newKeys is a key store holding one key, answered in plain text.
func newKeys(t *testing.T, db sqldb.DB) (*keys.Store, string) {
	t.Helper()
	reg := keys.New(db, 10, time.Now)
	t.Cleanup(func() { reg.Close(context.Background()) })
	key, _, err := reg.Issue(t.Context(), "192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	return reg, key
}

func newTestAPI(t *testing.T, engine Engine) (humatest.TestAPI, string) {
	t.Helper()
	_, api := humatest.New(t, Config("test", "1"))
	reg, key := newKeys(t, newTestDB(t))
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
		{jobs.ErrClosed, 503, problems.ShuttingDown, "30"},
		{jobs.ErrOwnerBusy, 429, problems.TooManyJobs, "7"},
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
			if (c.err == jobs.ErrFinished && call.method == "POST") || ((c.err == jobs.ErrClosed || c.err == jobs.ErrOwnerBusy) && call.method == "GET") {
				continue // only a POST submits; only GET and DELETE meet ErrFinished
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

// blockingEngine holds Submit until released, so a request can be kept in
// flight for as long as a test needs.
type blockingEngine struct {
	stubEngine
	entered, release chan struct{}
}

func (b blockingEngine) Submit(ctx context.Context, s jobs.Spec) (jobs.Job, error) {
	select {
	case b.entered <- struct{}{}:
	case <-time.After(10 * time.Second):
		return jobs.Job{}, errors.New("blockingEngine: the test never read entered")
	}
	select {
	case <-b.release:
	case <-time.After(10 * time.Second):
		return jobs.Job{}, errors.New("blockingEngine: the test never closed release")
	}
	now := time.Now()
	return jobs.Job{ID: "job_abc", Kind: s.Kind, Status: jobs.StatusQueued, CreatedAt: now, UpdatedAt: now}, nil
}

// TestIdempotencyInFlight is R19 made deterministic: while the first request
// with a key is inside the handler, a second one with the same key gets 409
// idempotency_key_in_use; once the first answered, the second replays it.
func TestIdempotencyInFlight(t *testing.T) {
	engine := blockingEngine{entered: make(chan struct{}), release: make(chan struct{})}
	_, hapi := humatest.New(t, Config("test", "1"))
	db := newTestDB(t)
	reg, key := newKeys(t, db)
	Register(hapi, Deps{
		Engine: engine, Keys: reg, Catalog: problems.New("https://docs.example"), Clock: clock.Real(),
		Logger: slog.New(slog.DiscardHandler), Scale: 1, Retention: time.Hour,
		Idempotency: idempotency.New(db, idempotency.Config{}), IdempotencyTTL: 24 * time.Hour,
	})
	body := `{"from":"2026-01-01","to":"2026-01-02"}`
	send := func() *httptest.ResponseRecorder {
		return hapi.Do("POST", "/v1/reports", "Authorization: Bearer "+key, "Idempotency-Key: k1", strings.NewReader(body))
	}
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- send() }()
	select {
	case <-engine.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the engine")
	}
	second := send()
	var p problems.Problem
	_ = json.Unmarshal(second.Body.Bytes(), &p)
	if second.Code != http.StatusConflict || p.Code != problems.IdempotencyKeyInUse || second.Header().Get("Retry-After") == "" {
		t.Errorf("while in flight: %d %s", second.Code, second.Body)
	}
	close(engine.release)
	var r1 *httptest.ResponseRecorder
	select {
	case r1 = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never answered")
	}
	r3 := send()
	if r1.Code != 202 || r3.Code != 202 || r1.Body.String() != r3.Body.String() || r3.Header().Get("Idempotent-Replayed") != "true" {
		t.Errorf("after: first %d, replay %d %q\n%s\n%s", r1.Code, r3.Code, r3.Header().Get("Idempotent-Replayed"), r1.Body, r3.Body)
	}
}
