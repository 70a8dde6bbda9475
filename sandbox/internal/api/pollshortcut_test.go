package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/ratelimit"
)

// mapEngine answers Get from a fixed set of jobs, each visible to its owner
// only, and counts the calls.
type mapEngine struct {
	stubEngine
	jobs map[string]jobs.Job
	gets int
}

func (e *mapEngine) Get(_ context.Context, owner, id string) (jobs.Job, error) {
	e.gets++
	j, ok := e.jobs[id]
	if !ok || j.Owner != owner {
		return jobs.Job{}, jobs.ErrNotFound
	}
	if j.Status == jobs.StatusCanceled && j.Message == "expired" {
		return jobs.Job{}, jobs.ErrGone
	}
	return j, nil
}

// shortcutRig is one API answered two ways: by Huma alone (direct), and
// through the shortcut in front of it (fast), which notes whether it
// handed the request on.
type shortcutRig struct {
	direct, fast http.Handler
	handedOn     bool
	engine       *mapEngine
	limiter      *swapLimiter
	key, owner   string
	clk          *clock.Fake
	pattern      string // the route the last request was given, as metrics read it
}

func newShortcutRig(t *testing.T, burst int) *shortcutRig {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	reg, key := newKeys(t, newTestDB(t))
	k, err := reg.Lookup(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	lim := &swapLimiter{fresh: func() *ratelimit.Limiter {
		l, err := ratelimit.New(ratelimit.Config{Clock: clk, Policies: []ratelimit.Policy{{Name: PolicyPoll, Rate: 1, Burst: burst}}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}}
	lim.reset()
	rig := &shortcutRig{engine: &mapEngine{jobs: map[string]jobs.Job{}}, limiter: lim, key: key, owner: k.ID, clk: clk}
	_, hapi := humatest.New(t, Config("test", "1"))
	shortcut := Register(hapi, Deps{
		Engine: rig.engine, Keys: reg, Catalog: problems.New("https://docs.example"),
		Clock: clk, Logger: slog.New(slog.DiscardHandler), Scale: 1, Retention: 24 * time.Hour, Limiter: lim,
	})
	rig.direct = hapi.Adapter()
	rig.fast = shortcut(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.handedOn = true
		rig.direct.ServeHTTP(w, r)
	}))
	return rig
}

// swapLimiter is a limiter that can start again with full buckets, so
// that the shortcut and Huma each answer from the same state.
type swapLimiter struct {
	*ratelimit.Limiter
	fresh func() *ratelimit.Limiter
}

func (s *swapLimiter) reset() { s.Limiter = s.fresh() }

func (r *shortcutRig) do(h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	r.pattern = req.Pattern
	return w
}

// sameAnswer fails unless two answers have the same status, header fields
// and body.
func sameAnswer(t *testing.T, what string, fast, direct *httptest.ResponseRecorder) {
	t.Helper()
	if fast.Code != direct.Code {
		t.Errorf("%s: the shortcut answered %d, Huma %d", what, fast.Code, direct.Code)
	}
	fh, dh := fast.Header(), direct.Header()
	for name := range dh {
		if got, want := strings.Join(fh.Values(name), ", "), strings.Join(dh.Values(name), ", "); got != want {
			t.Errorf("%s: header %s: the shortcut sent %q, Huma %q", what, name, got, want)
		}
	}
	for name := range fh {
		if _, ok := dh[name]; !ok {
			t.Errorf("%s: the shortcut sent %s: %q, which Huma does not", what, name, fh.Get(name))
		}
	}
	if fast.Body.String() != direct.Body.String() {
		t.Errorf("%s: bodies differ\nshortcut: %s\nHuma:     %s", what, fast.Body, direct.Body)
	}
}

// TestPollShortcutAnswersAsHumaDoes holds the shortcut to the answer Huma
// gives for every state of a job, and checks that it answers those polls
// itself (a shortcut that always handed on would pass the comparison).
func TestPollShortcutAnswersAsHumaDoes(t *testing.T) {
	rig := newShortcutRig(t, 1000)
	now := rig.clk.Now()
	base := jobs.Job{Kind: jobs.Kind("report"), Owner: rig.owner, CreatedAt: now.Add(-time.Minute), UpdatedAt: now.Add(-time.Second),
		Expected: time.Minute, Trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	states := map[string]func(j *jobs.Job){
		"queued": func(j *jobs.Job) { j.Status = jobs.StatusQueued },
		"processing": func(j *jobs.Job) {
			j.Status, j.Percent, j.Message, j.StartedAt = jobs.StatusProcessing, 40, "counting <rows> & \"totals\"", now.Add(-30*time.Second)
		},
		"succeeded": func(j *jobs.Job) {
			j.Status, j.Percent, j.StartedAt, j.FinishedAt, j.ExpiresAt = jobs.StatusSucceeded, 100, now.Add(-50*time.Second), now.Add(-time.Second), now.Add(time.Hour)
			j.ResourceID = "rpt_" + strings.TrimPrefix(j.ID, "job_")
		},
		"failed": func(j *jobs.Job) {
			j.Status, j.StartedAt, j.FinishedAt, j.ExpiresAt = jobs.StatusFailed, now.Add(-50*time.Second), now.Add(-time.Second), now.Add(time.Hour)
			j.Failure = &jobs.Failure{Code: problems.UpstreamUnavailable, Detail: "The warehouse did not answer."}
		},
		"canceled": func(j *jobs.Job) {
			j.Status, j.FinishedAt, j.ExpiresAt = jobs.StatusCanceled, now.Add(-time.Second), now.Add(time.Hour)
			j.Failure = &jobs.Failure{Code: "canceled"}
		},
	}
	for state, set := range states {
		j := base
		j.ID = "job_" + state + "0"
		set(&j)
		rig.engine.jobs[j.ID] = j
		auth := []string{"Authorization", "Bearer " + rig.key}
		for _, accept := range []string{"", "*/*", "application/json"} {
			h := auth
			if accept != "" {
				h = append(h[:2:2], "Accept", accept)
			}
			rig.handedOn = false
			rig.limiter.reset()
			fast := rig.do(rig.fast, http.MethodGet, "/v1/jobs/"+j.ID, h...)
			if rig.handedOn {
				t.Errorf("%s job, Accept %q: the shortcut handed a plain poll on to Huma", state, accept)
			}
			if rig.pattern != pollRoute {
				t.Errorf("%s job: the shortcut named the route %q, want %q", state, rig.pattern, pollRoute)
			}
			rig.limiter.reset()
			direct := rig.do(rig.direct, http.MethodGet, "/v1/jobs/"+j.ID, h...)
			sameAnswer(t, state+" job", fast, direct)
		}
	}
	// A finished job's answer is kept; a new version of it replaces it.
	j := rig.engine.jobs["job_succeeded0"]
	j.Version++
	j.Message = "rendered again"
	rig.engine.jobs[j.ID] = j
	rig.limiter.reset()
	fast := rig.do(rig.fast, http.MethodGet, "/v1/jobs/"+j.ID, "Authorization", "Bearer "+rig.key)
	if !strings.Contains(fast.Body.String(), "rendered again") {
		t.Errorf("a finished job's new version was answered from the old one: %s", fast.Body)
	}
	rig.limiter.reset()
	sameAnswer(t, "succeeded job, new version", fast, rig.do(rig.direct, http.MethodGet, "/v1/jobs/"+j.ID, "Authorization", "Bearer "+rig.key))
}

// TestPollShortcutHandsOnTheRest checks that whatever is not a plain poll
// of one's own job reaches Huma, and is answered as Huma answers it.
func TestPollShortcutHandsOnTheRest(t *testing.T) {
	rig := newShortcutRig(t, 1000)
	rig.engine.jobs["job_mine"] = jobs.Job{ID: "job_mine", Kind: jobs.Kind("report"), Owner: rig.owner, Status: jobs.StatusQueued,
		CreatedAt: rig.clk.Now(), UpdatedAt: rig.clk.Now(), Expected: time.Minute}
	rig.engine.jobs["job_gone"] = jobs.Job{ID: "job_gone", Owner: rig.owner, Status: jobs.StatusCanceled, Message: "expired"}
	rig.engine.jobs["job_theirs"] = jobs.Job{ID: "job_theirs", Owner: "someone else", Status: jobs.StatusQueued}
	bearer := "Bearer " + rig.key
	cases := []struct {
		name, method, path string
		header             []string
	}{
		{"no key", http.MethodGet, "/v1/jobs/job_mine", nil},
		{"basic scheme", http.MethodGet, "/v1/jobs/job_mine", []string{"Authorization", "Basic Zm9vOmJhcg=="}},
		{"unknown key", http.MethodGet, "/v1/jobs/job_mine", []string{"Authorization", "Bearer sk_sandbox_nope"}},
		{"malformed id", http.MethodGet, "/v1/jobs/JOB_MINE", []string{"Authorization", bearer}},
		{"id too long", http.MethodGet, "/v1/jobs/job_" + strings.Repeat("a", 61), []string{"Authorization", bearer}},
		{"unknown job", http.MethodGet, "/v1/jobs/job_nobody", []string{"Authorization", bearer}},
		{"another key's job", http.MethodGet, "/v1/jobs/job_theirs", []string{"Authorization", bearer}},
		{"expired job", http.MethodGet, "/v1/jobs/job_gone", []string{"Authorization", bearer}},
		{"XML wanted", http.MethodGet, "/v1/jobs/job_mine", []string{"Authorization", bearer, "Accept", "application/xml"}},
		{"cancel", http.MethodDelete, "/v1/jobs/job_mine", []string{"Authorization", bearer}},
	}
	for _, c := range cases {
		rig.handedOn = false
		rig.limiter.reset()
		fast := rig.do(rig.fast, c.method, c.path, c.header...)
		if !rig.handedOn {
			t.Errorf("%s: the shortcut answered %d itself; Huma should have", c.name, fast.Code)
		}
		rig.limiter.reset()
		direct := rig.do(rig.direct, c.method, c.path, c.header...)
		if c.method == http.MethodGet {
			sameAnswer(t, c.name, fast, direct)
		}
	}
}

// TestPollShortcutTakesOneToken checks that a poll takes one token from the
// key's bucket whoever answers it, and that a refusal the shortcut met is
// the 429 Huma sends, with no second token taken.
func TestPollShortcutTakesOneToken(t *testing.T) {
	const burst = 3
	rig := newShortcutRig(t, burst)
	rig.engine.jobs["job_mine"] = jobs.Job{ID: "job_mine", Kind: jobs.Kind("report"), Owner: rig.owner, Status: jobs.StatusQueued,
		CreatedAt: rig.clk.Now(), UpdatedAt: rig.clk.Now(), Expected: time.Minute}
	auth := []string{"Authorization", "Bearer " + rig.key}
	for i := range burst - 1 {
		if w := rig.do(rig.fast, http.MethodGet, "/v1/jobs/job_mine", auth...); w.Code != http.StatusOK {
			t.Fatalf("poll %d of %d: %d %s", i+1, burst, w.Code, w.Body)
		}
	}
	// The last token goes to a poll of an unknown job, which Huma answers
	// (404) without taking another.
	rig.handedOn = false
	if w := rig.do(rig.fast, http.MethodGet, "/v1/jobs/job_nobody", auth...); w.Code != http.StatusNotFound || !rig.handedOn {
		t.Fatalf("unknown job: %d (handed on: %v) %s, want 404 from Huma", w.Code, rig.handedOn, w.Body)
	} else if got := w.Header().Get("RateLimit"); !strings.Contains(got, ";r=0;") {
		t.Errorf("unknown job: RateLimit %q, want the last token taken (r=0)", got)
	}
	gets := rig.engine.gets
	fast := rig.do(rig.fast, http.MethodGet, "/v1/jobs/job_mine", auth...)
	if fast.Code != http.StatusTooManyRequests {
		t.Fatalf("poll past the burst: %d %s, want 429", fast.Code, fast.Body)
	}
	if rig.engine.gets != gets {
		t.Errorf("a refused poll read the job (%d reads, want %d)", rig.engine.gets, gets)
	}
	direct := rig.do(rig.direct, http.MethodGet, "/v1/jobs/job_mine", auth...)
	sameAnswer(t, "refused poll", fast, direct)
	// A token a second later: one, not two refusals' worth.
	rig.clk.Advance(time.Second)
	if w := rig.do(rig.fast, http.MethodGet, "/v1/jobs/job_mine", auth...); w.Code != http.StatusOK {
		t.Fatalf("a second later: %d %s, want 200", w.Code, w.Body)
	}
	if w := rig.do(rig.fast, http.MethodGet, "/v1/jobs/job_mine", auth...); w.Code != http.StatusTooManyRequests {
		t.Fatalf("right after: %d, want 429", w.Code)
	}
}
