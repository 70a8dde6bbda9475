package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// TestConformance checks the rows of ASYNC-CONFORMANCE.md that the report
// and export flows cover, over a real listener. Subtests share one problem
// log so that R16, last, can compare the catalog with what was really sent.
func TestConformance(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testConformance(t, backend) })
	}
}

// testConformance is the conformance suite on one database backend.
func testConformance(t *testing.T, backend string) {
	seen := newProblemLog()
	ts := newSandbox(t, seen, withBackend(backend))
	// A real-time sandbox, for jobs that must still be running when checked.
	slow := newSandbox(t, seen, withScale(1), withBackend(backend))

	t.Run("R1_instant_job_still_gets_202", func(t *testing.T) {
		key := ts.key(t)
		for _, path := range []string{"/v1/reports", "/v1/exports"} {
			body := reportBody(map[string]any{"duration_seconds": 0})
			if path == "/v1/exports" {
				body = map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-01", "simulate": map[string]any{"duration_seconds": 0}}
			}
			r := ts.do(t, http.MethodPost, path, key, body)
			if r.StatusCode != http.StatusAccepted {
				t.Errorf("POST %s with a zero-length job: %d, want 202", path, r.StatusCode)
			}
		}
	})

	t.Run("R2_body_has_id_status_and_status_url_equal_to_Location", func(t *testing.T) {
		key := slow.key(t)
		r := slow.mustStart(t, key, "/v1/reports", reportBody(nil))
		b := r.json(t)
		if id, _ := b["id"].(string); !strings.HasPrefix(id, "job_") {
			t.Errorf("id = %v", b["id"])
		}
		if st := b["status"]; st != "queued" && st != "processing" {
			t.Errorf("status = %v, want a non-terminal status", st)
		}
		if b["status_url"] != r.Header.Get("Location") || r.Header.Get("Location") == "" {
			t.Errorf("status_url %v != Location %q", b["status_url"], r.Header.Get("Location"))
		}
		if _, ok := b["estimated_seconds_remaining"].(float64); !ok {
			t.Errorf("no estimated_seconds_remaining in %s", r.body)
		}
		slow.do(t, http.MethodDelete, r.Header.Get("Location"), key, nil)
	})

	t.Run("R3_Location_and_Retry_After_and_the_monitor_answers", func(t *testing.T) {
		key := slow.key(t)
		r := slow.mustStart(t, key, "/v1/reports", reportBody(nil))
		if r.Header.Get("Retry-After") == "" {
			t.Error("202 without Retry-After")
		}
		poll := slow.do(t, http.MethodGet, r.Header.Get("Location"), key, nil)
		if poll.StatusCode != http.StatusOK {
			t.Errorf("GET Location: %d, want 200", poll.StatusCode)
		}
		slow.do(t, http.MethodDelete, r.Header.Get("Location"), key, nil)
	})

	t.Run("R4_Retry_After_is_delay_seconds", func(t *testing.T) {
		digits := regexp.MustCompile(`^[0-9]+$`)
		key := slow.key(t)
		for _, d := range []float64{0.2, 5, 90, 600} {
			r := slow.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": d}))
			if ra := r.Header.Get("Retry-After"); !digits.MatchString(ra) {
				t.Errorf("duration %v: Retry-After %q is not delay-seconds", d, ra)
			}
			poll := slow.do(t, http.MethodGet, r.Header.Get("Location"), key, nil)
			if ra := poll.Header.Get("Retry-After"); poll.StatusCode == 200 && !digits.MatchString(ra) {
				t.Errorf("duration %v: poll Retry-After %q is not delay-seconds", d, ra)
			}
			slow.do(t, http.MethodDelete, r.Header.Get("Location"), key, nil)
		}
	})

	t.Run("R5_bad_request_refused_and_no_job_created", func(t *testing.T) {
		key := ts.key(t)
		before, _ := ts.s.JobCount(context.Background())
		cases := []struct {
			name, path string
			body       any
			headers    []string
			status     int
			code       string
		}{
			{"malformed JSON", "/v1/reports", `{"from": "2026-01-01",`, nil, 400, problems.MalformedRequest},
			{"not JSON at all", "/v1/exports", `format=csv`, nil, 400, problems.MalformedRequest},
			{"wrong content type", "/v1/reports", `{"from":"2026-01-01","to":"2026-01-02"}`, []string{"Content-Type", "text/plain"}, 415, problems.UnsupportedMediaType},
			{"missing field", "/v1/reports", map[string]any{"from": "2026-01-01"}, nil, 422, problems.ValidationFailed},
			{"unknown field", "/v1/reports", map[string]any{"from": "2026-01-01", "to": "2026-01-02", "colour": "red"}, nil, 422, problems.ValidationFailed},
			{"wrong type", "/v1/reports", map[string]any{"from": 20260101, "to": "2026-01-02"}, nil, 422, problems.ValidationFailed},
			{"bad date", "/v1/reports", map[string]any{"from": "2026-02-30", "to": "2026-03-02"}, nil, 422, problems.ValidationFailed},
			{"bad month", "/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-13-01"}, nil, 422, problems.ValidationFailed},
			{"to before from", "/v1/reports", map[string]any{"from": "2026-03-01", "to": "2026-02-01"}, nil, 422, problems.ValidationFailed},
			{"range too long", "/v1/exports", map[string]any{"format": "csv", "from": "2024-01-01", "to": "2026-01-01"}, nil, 422, problems.ValidationFailed},
			{"bad enum", "/v1/exports", map[string]any{"format": "xml", "from": "2026-01-01", "to": "2026-01-02"}, nil, 422, problems.ValidationFailed},
			{"duration out of range", "/v1/reports", reportBody(map[string]any{"duration_seconds": 601}), nil, 422, problems.ValidationFailed},
			{"duration far out of range", "/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-02", "simulate": map[string]any{"duration_seconds": 3600}}, nil, 422, problems.ValidationFailed},
			{"negative duration", "/v1/imports", map[string]any{"rows": []any{map[string]any{"sku": "A", "name": "a", "quantity": 1, "price_cents": 1}}, "simulate": map[string]any{"duration_seconds": -1}}, nil, 422, problems.ValidationFailed},
			{"fail without code", "/v1/reports", reportBody(map[string]any{"outcome": "fail"}), nil, 422, problems.ValidationFailed},
			{"code without fail", "/v1/reports", reportBody(map[string]any{"fail_code": "upstream_unavailable"}), nil, 422, problems.ValidationFailed},
			{"unknown fail code", "/v1/reports", reportBody(map[string]any{"outcome": "fail", "fail_code": "not_a_code"}), nil, 422, problems.ValidationFailed},
			{"oversize body", "/v1/reports", `{"title":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, problems.RequestTooLarge},
		}
		for _, c := range cases {
			r := ts.do(t, http.MethodPost, c.path, key, c.body, c.headers...)
			if r.StatusCode != c.status {
				t.Errorf("%s: %d, want %d\n%s", c.name, r.StatusCode, c.status, r.body)
				continue
			}
			p := r.json(t)
			if p["code"] != c.code {
				t.Errorf("%s: code %v, want %s", c.name, p["code"], c.code)
			}
			if d, _ := p["detail"].(string); d == "" {
				t.Errorf("%s: problem without a detail a person can act on: %s", c.name, r.body)
			}
			// Each case has one fault: one entry for it, not one per checker
			// (a duration over the maximum was once reported by the schema
			// and again, under another location, by the scenario's check).
			if errs := asSlice(p["errors"]); len(errs) > 1 {
				t.Errorf("%s: one fault reported %d times: %s", c.name, len(errs), r.body)
			}
		}
		if after, _ := ts.s.JobCount(context.Background()); after != before {
			t.Errorf("job count went from %d to %d after refused requests", before, after)
		}
	})

	t.Run("R6_running_job_answers_200_with_Retry_After", func(t *testing.T) {
		key := slow.key(t)
		r := slow.mustStart(t, key, "/v1/exports", map[string]any{"format": "ndjson", "from": "2026-01-01", "to": "2026-01-31", "simulate": map[string]any{"duration_seconds": 30}})
		time.Sleep(50 * time.Millisecond)
		poll := slow.do(t, http.MethodGet, r.Header.Get("Location"), key, nil)
		if poll.StatusCode != 200 || poll.Header.Get("Retry-After") == "" {
			t.Errorf("mid-job poll: %d Retry-After %q", poll.StatusCode, poll.Header.Get("Retry-After"))
		}
		if cc := poll.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		slow.do(t, http.MethodDelete, r.Header.Get("Location"), key, nil)
	})

	t.Run("R7_one_closed_status_vocabulary_moving_forward", func(t *testing.T) {
		spec := ts.s.API().OpenAPI()
		job := spec.Components.Schemas.Map()["Job"]
		var want []any
		for _, s := range jobs.Statuses() {
			want = append(want, string(s))
		}
		if got := job.Properties["status"].Enum; !reflect.DeepEqual(got, want) {
			t.Errorf("spec enum %v, want %v", got, want)
		}
		// Many jobs with every outcome, polled to the end: statuses only move forward.
		rank := map[string]int{"queued": 0, "processing": 1, "succeeded": 2, "failed": 2, "canceled": 2}
		key := ts.key(t)
		sims := []map[string]any{nil, {"outcome": "fail", "fail_code": "upstream_unavailable", "fail_at_percent": 60}, {"outcome": "crash"}, {"duration_seconds": 0}}
		for i := range 12 {
			r := ts.mustStart(t, key, "/v1/reports", reportBody(sims[i%len(sims)]))
			last := -1
			for _, p := range ts.mustFollow(t, key, r.Header.Get("Location")) {
				st := p.json(t)["status"].(string)
				if rank[st] < last {
					t.Errorf("job went back to %s", st)
				}
				last = rank[st]
			}
		}
	})

	t.Run("R8_timestamps_progress_and_estimate", func(t *testing.T) {
		key := ts.key(t)
		r := ts.mustStart(t, key, "/v1/exports", map[string]any{"format": "csv", "from": "2025-01-01", "to": "2025-12-31", "simulate": map[string]any{"duration_seconds": 60}})
		prev := -1.0
		for _, p := range ts.mustFollow(t, key, r.Header.Get("Location")) {
			b := p.json(t)
			for _, f := range []string{"created_at", "updated_at"} {
				if _, err := time.Parse(time.RFC3339Nano, b[f].(string)); err != nil {
					t.Errorf("%s %v: %v", f, b[f], err)
				}
			}
			pc := b["percent_complete"].(float64)
			if pc < prev || pc < 0 || pc > 100 {
				t.Errorf("percent_complete went from %v to %v", prev, pc)
			}
			prev = pc
			if est, ok := b["estimated_seconds_remaining"].(float64); !ok || est < 0 {
				t.Errorf("estimated_seconds_remaining = %v", b["estimated_seconds_remaining"])
			}
		}
		if prev != 100 {
			t.Errorf("final percent_complete %v, want 100", prev)
		}
	})

	t.Run("R9_success_is_303_to_a_result_that_answers_200", func(t *testing.T) {
		key := ts.key(t)
		for _, start := range []struct {
			path        string
			body        any
			contentType string
		}{
			{"/v1/reports", reportBody(nil), "application/json"},
			{"/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-10"}, "text/csv; charset=utf-8"},
		} {
			r := ts.mustStart(t, key, start.path, start.body)
			polls := ts.mustFollow(t, key, r.Header.Get("Location"))
			last := polls[len(polls)-1]
			if last.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s: final poll %d, want 303", start.path, last.StatusCode)
			}
			loc := last.Header.Get("Location")
			if loc == "" || loc != last.json(t)["result_url"] {
				t.Errorf("303 Location %q, result_url %v", loc, last.json(t)["result_url"])
			}
			res := ts.do(t, http.MethodGet, loc, key, nil)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != start.contentType {
				t.Errorf("GET %s: %d %q", loc, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("R10_failed_job_has_a_catalog_problem", func(t *testing.T) {
		key := ts.key(t)
		for _, code := range ts.s.Catalog().Deferred() {
			e, _ := ts.s.Catalog().Entry(code)
			if e.Scenario == nil {
				continue // not a scenario: job_interrupted comes from a shutdown (shutdown_drains_then_interrupts)
			}
			r := ts.mustStart(t, key, "/v1/reports", reportBody(e.Scenario))
			if code == problems.JobStalled {
				continue // needs the clock moved: TestStalledJob
			}
			polls := ts.mustFollow(t, key, r.Header.Get("Location"))
			b := polls[len(polls)-1].json(t)
			if b["status"] != "failed" {
				t.Errorf("%s: status %v, want failed", code, b["status"])
				continue
			}
			p, _ := b["error"].(map[string]any)
			if p == nil || p["code"] != code || p["title"] == "" || p["status"] == nil || p["job_id"] != b["id"] {
				t.Errorf("%s: error = %v", code, b["error"])
				continue
			}
			ts.checkCatalogProblem(t, p)
		}
	})

	t.Run("R11_cancel_with_DELETE", func(t *testing.T) {
		key := slow.key(t)
		r := slow.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 60}))
		loc := r.Header.Get("Location")
		del := slow.do(t, http.MethodDelete, loc, key, nil)
		if del.StatusCode != 200 || del.json(t)["status"] != "canceled" {
			t.Fatalf("DELETE: %d %s", del.StatusCode, del.body)
		}
		if get := slow.do(t, http.MethodGet, loc, key, nil); get.json(t)["status"] != "canceled" {
			t.Errorf("GET after cancel: %s", get.body)
		}
		again := slow.do(t, http.MethodDelete, loc, key, nil)
		if again.StatusCode != http.StatusConflict || again.json(t)["code"] != problems.JobAlreadyFinished {
			t.Errorf("second DELETE: %d %s", again.StatusCode, again.body)
		}
		// The result of a job that never succeeded is not there.
		id := strings.TrimPrefix(del.json(t)["id"].(string), "job_")
		if res := slow.do(t, http.MethodGet, "/v1/reports/rpt_"+id, key, nil); res.StatusCode != http.StatusConflict {
			t.Errorf("GET result of cancelled job: %d, want 409 result_not_ready", res.StatusCode)
		}
	})

	t.Run("R12_monitor_lives_through_retention_then_410", func(t *testing.T) {
		fake := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		fs := newSandbox(t, seen, withFakeClock(fake))
		key := fs.key(t)
		r := fs.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 0}))
		loc := r.Header.Get("Location")
		waitFor(t, "the job to succeed (303)", func() bool { return fs.do(t, http.MethodGet, loc, key, nil).StatusCode == http.StatusSeeOther })
		fake.Advance(23 * time.Hour)
		if err := fs.s.Engine().Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := fs.do(t, http.MethodGet, loc, key, nil); got.StatusCode != http.StatusSeeOther {
			t.Errorf("after 23 h: %d, want the job still there", got.StatusCode)
		}
		fake.Advance(time.Hour + time.Second)
		if err := fs.s.Engine().Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := fs.do(t, http.MethodGet, loc, key, nil)
		if got.StatusCode != http.StatusGone || got.json(t)["code"] != problems.JobExpired {
			t.Errorf("after 24 h: %d %s, want 410 job_expired", got.StatusCode, got.body)
		}
	})

	t.Run("R13_stalled_job_is_failed_by_the_server", func(t *testing.T) {
		fake := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		fs := newSandbox(t, seen, withFakeClock(fake), withScale(1))
		key := fs.key(t)
		r := fs.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"outcome": "stall", "duration_seconds": 10}))
		loc := r.Header.Get("Location")
		// The worker reports its first step (due 2 s in), then goes silent.
		waitFor(t, "the job to start processing", func() bool { return fs.do(t, http.MethodGet, loc, key, nil).json(t)["status"] == "processing" })
		fake.Advance(2 * time.Second)
		waitFor(t, "the job's first step (percent_complete > 0)", func() bool {
			got := fs.do(t, http.MethodGet, loc, key, nil)
			pc, ok := got.json(t)["percent_complete"].(float64)
			if !ok {
				t.Fatalf("GET %s: %d %s, want a job with percent_complete", loc, got.StatusCode, got.body)
			}
			return pc > 0
		})
		fake.Advance(15 * time.Second)
		if err := fs.s.Engine().Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := fs.do(t, http.MethodGet, loc, key, nil).json(t)["status"]; st != "processing" {
			t.Fatalf("before twice the expected duration: %v, want processing", st)
		}
		fake.Advance(10 * time.Second)
		if err := fs.s.Engine().Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		b := fs.do(t, http.MethodGet, loc, key, nil).json(t)
		p, _ := b["error"].(map[string]any)
		if b["status"] != "failed" || p == nil || p["code"] != problems.JobStalled {
			t.Fatalf("after the switch: %v", b)
		}
		fs.checkCatalogProblem(t, p)
	})

	t.Run("R14_other_key_gets_404_and_ids_are_unguessable", func(t *testing.T) {
		a, b := ts.key(t), ts.key(t)
		r := ts.mustStart(t, a, "/v1/reports", reportBody(nil))
		loc := r.Header.Get("Location")
		polls := ts.mustFollow(t, a, loc)
		result := polls[len(polls)-1].Header.Get("Location")
		for _, c := range []struct{ method, path string }{{"GET", loc}, {"DELETE", loc}, {"GET", result}} {
			if got := ts.do(t, c.method, c.path, b, nil); got.StatusCode != http.StatusNotFound {
				t.Errorf("key B %s %s: %d, want 404", c.method, c.path, got.StatusCode)
			}
		}
		if got := ts.do(t, "GET", "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa", a, nil); got.StatusCode != http.StatusNotFound {
			t.Errorf("unknown id: %d", got.StatusCode)
		}
		id := strings.TrimPrefix(r.json(t)["id"].(string), "job_")
		if bits := len(id) * 5; bits < 128 {
			t.Errorf("job id has %d bits of base32, want ≥128", bits)
		}
		if !jobs.ValidID("job_" + id) {
			t.Errorf("id %q not valid", id)
		}
		for _, c := range []struct{ auth string }{{""}, {"Basic abc"}, {"Bearer sk_sandbox_nope"}} {
			req := ts.do(t, "GET", loc, "", nil, "Authorization", c.auth)
			if req.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(req.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("auth %q: %d WWW-Authenticate %q", c.auth, req.StatusCode, req.Header.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("R15_every_error_is_a_problem", func(t *testing.T) {
		// do checks every error response of the suite; these are the ones
		// the standard mux would otherwise answer in plain text.
		key := ts.key(t)
		if r := ts.do(t, http.MethodGet, "/v1/no-such-thing", key, nil); r.StatusCode != 404 {
			t.Errorf("unknown path: %d", r.StatusCode)
		}
		r := ts.do(t, http.MethodPut, "/v1/reports", key, "{}")
		if r.StatusCode != 405 || r.Header.Get("Allow") != "POST" {
			t.Errorf("PUT /v1/reports: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
		}
		if r := ts.do(t, http.MethodGet, "/v1/jobs/not-an-id", key, nil); r.StatusCode != 422 {
			t.Errorf("malformed id: %d", r.StatusCode)
		}
		// Polling far faster than allowed.
		var limited response
		for range 40 {
			if limited = ts.do(t, http.MethodGet, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa", key, nil); limited.StatusCode == 429 {
				break
			}
		}
		if limited.StatusCode != 429 || !regexp.MustCompile(`^[0-9]+$`).MatchString(limited.Header.Get("Retry-After")) {
			t.Errorf("burst of polls: %d Retry-After %q, want 429 with delay-seconds", limited.StatusCode, limited.Header.Get("Retry-After"))
		}
	})

	t.Run("R17_same_key_same_body_replays_one_job", func(t *testing.T) {
		key := ts.key(t)
		before, _ := ts.s.JobCount(context.Background())
		body := reportBody(map[string]any{"duration_seconds": 0})
		first := ts.do(t, http.MethodPost, "/v1/reports", key, body, "Idempotency-Key", "order-42")
		time.Sleep(30 * time.Millisecond) // the job finishes; the replay must still show the first answer
		// The same JSON written another way is the same request.
		again := ts.do(t, http.MethodPost, "/v1/reports", key, `{ "to":"2026-01-31", "from":"2026-01-01", "simulate":{"duration_seconds":0}, "title":"Test" }`, "Idempotency-Key", "order-42")
		if first.StatusCode != 202 || again.StatusCode != 202 {
			t.Fatalf("statuses %d, %d", first.StatusCode, again.StatusCode)
		}
		if string(first.body) != string(again.body) || first.Header.Get("Location") != again.Header.Get("Location") {
			t.Errorf("replay differs:\n%s\n%s", first.body, again.body)
		}
		if again.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("Idempotent-Replayed: first %q, replay %q", first.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"))
		}
		if after, _ := ts.s.JobCount(context.Background()); after != before+1 {
			t.Errorf("%d jobs created, want 1", after-before)
		}
	})

	t.Run("R18_same_key_different_body_is_422_of_its_own", func(t *testing.T) {
		key := ts.key(t)
		ts.mustStartWith(t, key, "/v1/reports", reportBody(nil), "Idempotency-Key", "k-18")
		r := ts.do(t, http.MethodPost, "/v1/reports", key, map[string]any{"from": "2026-02-01", "to": "2026-02-02"}, "Idempotency-Key", "k-18")
		if r.StatusCode != 422 || r.json(t)["code"] != problems.IdempotencyKeyReused {
			t.Errorf("%d %s, want 422 idempotency_key_reused (not validation_failed)", r.StatusCode, r.body)
		}
		// A refused request does not use up the key: the error is not stored.
		bad := ts.do(t, http.MethodPost, "/v1/exports", key, map[string]any{"format": "xml", "from": "2026-01-01", "to": "2026-01-02"}, "Idempotency-Key", "k-18b")
		good := ts.do(t, http.MethodPost, "/v1/exports", key, map[string]any{"format": "xml", "from": "2026-01-01", "to": "2026-01-02"}, "Idempotency-Key", "k-18b")
		if bad.StatusCode != 422 || good.StatusCode != 422 || good.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("validation errors with a key: %d then %d (replayed %q)", bad.StatusCode, good.StatusCode, good.Header.Get("Idempotent-Replayed"))
		}
	})

	t.Run("R19_same_key_in_flight_is_409", func(t *testing.T) {
		// Concurrent POSTs with one key at a barrier: every answer is the one
		// job (202, first or replayed) or 409 while it is being handled; never
		// a second job. Rounds repeat until a 409 is seen (the deterministic
		// check is TestIdempotencyInFlight in package api).
		seen409 := false
		for round := 0; round < 50 && !seen409; round++ {
			key := ts.key(t) // a fresh key per round keeps the start policy out of the way
			before, _ := ts.s.JobCount(context.Background())
			ik := fmt.Sprintf("race-%d", round)
			start := make(chan struct{})
			results := make(chan response, 16)
			for range 16 {
				go func() {
					<-start
					results <- ts.do(t, http.MethodPost, "/v1/reports", key, reportBody(nil), "Idempotency-Key", ik)
				}()
			}
			close(start)
			var jobIDs []string
			for range 16 {
				r := <-results
				switch r.StatusCode {
				case 202:
					jobIDs = append(jobIDs, r.json(t)["id"].(string))
				case 409:
					seen409 = r.json(t)["code"] == problems.IdempotencyKeyInUse
				default:
					t.Fatalf("round %d: %d %s", round, r.StatusCode, r.body)
				}
			}
			for _, id := range jobIDs {
				if id != jobIDs[0] {
					t.Fatalf("round %d: two jobs for one key: %s, %s", round, jobIDs[0], id)
				}
			}
			if after, _ := ts.s.JobCount(context.Background()); after != before+1 {
				t.Fatalf("round %d: %d jobs created", round, after-before)
			}
		}
		if !seen409 {
			t.Error("no request ever met the key in flight")
		}
	})

	t.Run("R20_keys_scoped_per_API_key_and_at_most_255", func(t *testing.T) {
		a, b := ts.key(t), ts.key(t)
		ra := ts.mustStartWith(t, a, "/v1/reports", reportBody(nil), "Idempotency-Key", "shared")
		rb := ts.mustStartWith(t, b, "/v1/reports", reportBody(nil), "Idempotency-Key", "shared")
		if ra.json(t)["id"] == rb.json(t)["id"] {
			t.Error("two API keys with one Idempotency-Key got the same job")
		}
		if r := ts.do(t, http.MethodPost, "/v1/reports", a, reportBody(nil), "Idempotency-Key", strings.Repeat("k", 255)); r.StatusCode != 202 {
			t.Errorf("255-character key: %d", r.StatusCode)
		}
		for _, bad := range []string{strings.Repeat("k", 256), "caf\u00e9", "\"unterminated"} {
			r := ts.do(t, http.MethodPost, "/v1/reports", a, reportBody(nil), "Idempotency-Key", bad)
			if r.StatusCode != 400 || r.json(t)["code"] != problems.IdempotencyKeyInvalid {
				t.Errorf("key %.20q: %d %s", bad, r.StatusCode, r.body)
			}
		}
		spec := ts.s.API().OpenAPI().Paths["/v1/reports"].Post
		documented := false
		for _, p := range spec.Parameters {
			documented = documented || (p.Name == "Idempotency-Key" && strings.Contains(p.Description, "24 hours"))
		}
		if !documented {
			t.Error("Idempotency-Key and its 24 h retention are not documented on createReport")
		}
	})

	t.Run("R21_R22_polling_limits_per_key_with_RateLimit_fields", func(t *testing.T) {
		a, b := ts.key(t), ts.key(t)
		var last response
		for range 60 {
			if last = ts.do(t, http.MethodGet, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa", a, nil); last.StatusCode == 429 {
				break
			}
		}
		if last.StatusCode != 429 || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(last.Header.Get("Retry-After")) {
			t.Fatalf("R21: burst of polls ended with %d Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
		}
		// Another key is not affected.
		if r := ts.do(t, http.MethodGet, "/v1/jobs/job_aaaaaaaaaaaaaaaaaaaaaaaaaa", b, nil); r.StatusCode != 404 {
			t.Errorf("R21: key B after key A's burst: %d", r.StatusCode)
		}
		// R22: both fields are Structured Field lists with the draft's parameters.
		pol, err := httpsfv.UnmarshalList(last.Header.Values("RateLimit-Policy"))
		if err != nil || len(pol) != 1 {
			t.Fatalf("R22: RateLimit-Policy %q: %v", last.Header.Values("RateLimit-Policy"), err)
		}
		q, _ := pol[0].(httpsfv.Item).Params.Get("q")
		w, _ := pol[0].(httpsfv.Item).Params.Get("w")
		if pol[0].(httpsfv.Item).Value != "poll" || q == nil || w == nil {
			t.Errorf("R22: RateLimit-Policy %q lacks name, q or w", last.Header.Get("RateLimit-Policy"))
		}
		rl, err := httpsfv.UnmarshalList(last.Header.Values("RateLimit"))
		if err != nil || len(rl) != 1 {
			t.Fatalf("R22: RateLimit %q: %v", last.Header.Values("RateLimit"), err)
		}
		r, _ := rl[0].(httpsfv.Item).Params.Get("r")
		tt, _ := rl[0].(httpsfv.Item).Params.Get("t")
		if r != int64(0) || tt == nil {
			t.Errorf("R22: RateLimit %q: want r=0 and a t when refused", last.Header.Get("RateLimit"))
		}
	})

	t.Run("R23_full_queue_answers_503_and_accepts_nothing", func(t *testing.T) {
		full := newSandbox(t, seen, withScale(1), func(c *Config, _ *Deps) { c.Workers, c.QueueSize = 1, 2 })
		key := full.key(t)
		var accepted []string
		var refused response
		for range 6 {
			r := full.do(t, http.MethodPost, "/v1/reports", key, reportBody(map[string]any{"duration_seconds": 300}))
			if r.StatusCode == http.StatusAccepted {
				accepted = append(accepted, r.Header.Get("Location"))
				continue
			}
			refused = r
			break
		}
		if refused.Response == nil || refused.StatusCode != http.StatusServiceUnavailable || refused.Header.Get("Retry-After") == "" {
			t.Fatalf("after %d accepted: %v, want 503 with Retry-After", len(accepted), refused.Response)
		}
		if n, _ := full.s.JobCount(context.Background()); n != len(accepted) {
			t.Errorf("%d jobs stored, %d accepted: the refused request created something", n, len(accepted))
		}
		// Everything accepted is still there and can be finished.
		for _, loc := range accepted {
			if r := full.do(t, http.MethodDelete, loc, key, nil); r.StatusCode != 200 {
				t.Errorf("cancel %s: %d", loc, r.StatusCode)
			}
		}
	})

	// The problems of imports, webhooks and the inbox (webhooks_test.go).
	t.Run("R31_webhook_problems", func(t *testing.T) { webhookProblems(t, ts) })

	t.Run("shutdown_drains_and_keeps_unfinished_jobs", func(t *testing.T) {
		cfg := testConfig()
		// The drain lasts long enough for the short job to be followed to
		// its end on a loaded machine (the race detector, parallel
		// packages); the long one outlasts drain and shutdown together.
		cfg.TimeScale, cfg.ShutdownTimeout, cfg.DrainPeriod = 1, 2*time.Second, 8*time.Second
		sd := runServing(t, cfg, seen, backend)
		s, sigterm, stopped := sd.s, sd.sigterm, sd.stopped
		kr := sd.do(t, http.MethodPost, "/v1/sandbox/keys", "", nil)
		key, keyID := kr.json(t)["key"].(string), kr.json(t)["key_id"].(string)
		short := sd.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 0.2}))
		long := sd.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 12}))
		sigterm()
		// New jobs are refused, with a way back.
		var refused response
		waitFor(t, "a draining sandbox to refuse new jobs", func() bool {
			refused = sd.do(t, http.MethodPost, "/v1/reports", key, reportBody(nil))
			return refused.StatusCode == http.StatusServiceUnavailable
		})
		if refused.json(t)["code"] != problems.ShuttingDown || refused.Header.Get("Retry-After") == "" {
			t.Errorf("during drain: %s Retry-After %q", refused.body, refused.Header.Get("Retry-After"))
		}
		if ready := sd.do(t, http.MethodGet, "/readyz", "", nil); ready.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz during drain: %d %s, want 503", ready.StatusCode, ready.body)
		}
		// Running work goes on, and its owner can still follow it.
		polls := sd.mustFollow(t, key, short.Header.Get("Location"))
		if polls[len(polls)-1].StatusCode != http.StatusSeeOther {
			t.Errorf("short job during drain: %d", polls[len(polls)-1].StatusCode)
		}
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the server did not stop")
		}
		// What was not finished stays in the database, unfinished: the next
		// start (here, a sandbox on the same database) takes it to its end.
		id := long.json(t)["id"].(string)
		j, err := s.Engine().Get(context.Background(), keyID, id)
		if err != nil || j.Status.Terminal() {
			t.Fatalf("long job after shutdown: %+v %v, want it unfinished", j, err)
		}
		next := newSandbox(t, seen, withScale(1), func(_ *Config, d *Deps) { d.DB = s.DB() })
		after := next.mustFollow(t, key, long.Header.Get("Location"))
		if last := after[len(after)-1]; last.StatusCode != http.StatusSeeOther {
			t.Errorf("the long job after the restart ended %d %s, want 303", last.StatusCode, last.body)
		}
	})

	t.Run("R38_a_worker_that_keeps_dying_ends_job_interrupted", func(t *testing.T) {
		key := slow.key(t)
		r := slow.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 60}))
		id := r.json(t)["id"].(string)
		// As River leaves a job after its attempts ran out; Recover (at
		// start, and every 30 s on the leader) settles the job.
		err := slow.s.DB().Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = CURRENT_TIMESTAMP
				WHERE id = (SELECT river_id FROM jobs WHERE id = ?)`, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := slow.s.Engine().Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		b := slow.do(t, http.MethodGet, r.Header.Get("Location"), key, nil).json(t)
		p, _ := b["error"].(map[string]any)
		if b["status"] != "failed" || p == nil || p["code"] != problems.JobInterrupted {
			t.Fatalf("after River gave up on its worker: %v, want failed with job_interrupted", b)
		}
		slow.checkCatalogProblem(t, p)
	})

	t.Run("readyz_answers_for_the_database", func(t *testing.T) {
		if r := ts.do(t, http.MethodGet, "/readyz", "", nil); r.StatusCode != http.StatusOK || r.json(t)["status"] != "ready" {
			t.Errorf("/readyz: %d %s, want 200 ready", r.StatusCode, r.body)
		}
		db := &unreachable{DB: newTestDB(t, backend)}
		down := newSandbox(t, seen, func(_ *Config, d *Deps) { d.DB = db })
		db.down.Store(true)
		r := down.do(t, http.MethodGet, "/readyz", "", nil)
		if r.StatusCode != http.StatusServiceUnavailable || r.json(t)["code"] != problems.DatabaseUnavailable || r.Header.Get("Retry-After") == "" {
			t.Errorf("/readyz with the database closed: %d %s, want 503 database_unavailable with Retry-After", r.StatusCode, r.body)
		}
		if r := down.do(t, http.MethodGet, "/healthz", "", nil); r.StatusCode != http.StatusOK {
			t.Errorf("/healthz with the database closed: %d, want 200 (liveness asks nothing of the database)", r.StatusCode)
		}
	})

	t.Run("too_many_unfinished_jobs_per_key", func(t *testing.T) {
		few := newSandbox(t, seen, withScale(1), func(c *Config, _ *Deps) { c.MaxJobsPerKey = 2 })
		a, b := few.key(t), few.key(t)
		first := few.mustStart(t, a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 60}))
		few.mustStart(t, a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 60}))
		r := few.do(t, http.MethodPost, "/v1/reports", a, reportBody(nil))
		if r.StatusCode != 429 || r.json(t)["code"] != problems.TooManyJobs || r.Header.Get("Retry-After") == "" {
			t.Errorf("third job: %d %s", r.StatusCode, r.body)
		}
		few.mustStart(t, b, "/v1/reports", reportBody(map[string]any{"duration_seconds": 60}))
		few.do(t, http.MethodDelete, first.Header.Get("Location"), a, nil)
		few.mustStart(t, a, "/v1/reports", reportBody(map[string]any{"duration_seconds": 60}))
	})

	t.Run("R16_catalog_and_problems_sent_match", func(t *testing.T) {
		if len(seen.codes) == 0 {
			t.Skip("R16 compares the catalog with the problems the other subtests saw: run the whole TestConformance")
		}
		for _, e := range ts.s.Catalog().Entries() {
			if !seen.codes[e.Code] {
				t.Errorf("catalog entry %q was never triggered by a test", e.Code)
			}
		}
		var types []string
		for typ := range seen.types {
			types = append(types, typ)
		}
		slices.Sort(types)
		for _, typ := range types {
			if !strings.HasPrefix(typ, "http://localhost:8080/errors#") {
				t.Errorf("problem type %q is not a catalog URI", typ)
			}
		}
	})
}

// waitFor polls cond for up to 10 s of real time, and fails saying what
// it waited for. It backs off from 10 ms to 250 ms between polls: under a
// fake clock the rate limiter's budget never refills, and twenty quick
// polls would spend it before a slow machine finished the job.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	pause := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// asSlice is v as a JSON array, or nil.
func asSlice(v any) []any {
	a, _ := v.([]any)
	return a
}

// unreachable is a database whose Ping fails once down is set, as a
// database a replica lost its connection to would.
type unreachable struct {
	sqldb.DB
	down atomic.Bool
}

func (u *unreachable) Ping(ctx context.Context) error {
	if u.down.Load() {
		return errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	}
	return u.DB.Ping(ctx)
}
