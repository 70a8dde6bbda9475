package jobs_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// TestConformance holds the engine-level checks of the rows of
// shared/ASYNC-CONFORMANCE.md; the HTTP layer checks the same rows on the
// wire. Every check that touches a database runs on every backend.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		f    func(t *testing.T)
	}{
		{"R7_status_vocabulary", testStatusVocabulary},
		{"R7_forward_only_transitions", testForwardOnly},
		{"R7_many_jobs_only_move_forward", each(testManyJobs)},
		{"R8_progress_monotonic_and_timestamps", each(testProgress)},
		{"R11_cancel_queued", each(testCancelQueued)},
		{"R11_cancel_processing", each(testCancelProcessing)},
		{"R11_cancel_finished_is_ErrFinished", each(testCancelFinished)},
		{"R12_expiry_after_retention", each(testExpiry)},
		{"R13_dead_mans_switch", each(testDeadMansSwitch)},
		{"R13_periodic_watchdog", each(testPeriodicWatchdog)},
		{"R14_other_owner_not_found", each(testOtherOwner)},
		{"R14_ids_are_128_random_bits", testIDs},
		{"R23_queue_full_accepts_nothing", each(testQueueFull)},
		{"R23_queue_full_under_a_burst", each(testQueueFullBurst)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.f(t)
		})
	}
}

// each makes a test of one backend a test of every backend.
func each(f func(t *testing.T, b dbtest.Backend)) func(t *testing.T) {
	return func(t *testing.T) { dbtest.Each(t, f) }
}

func rank(s jobs.Status) int {
	switch s {
	case jobs.StatusQueued:
		return 0
	case jobs.StatusProcessing:
		return 1
	}
	return 2
}

func testStatusVocabulary(t *testing.T) {
	want := []jobs.Status{"queued", "processing", "succeeded", "failed", "canceled"}
	got := jobs.Statuses()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Statuses() = %v, want %v", got, want)
	}
	for _, s := range got {
		if s.Terminal() != (rank(s) == 2) {
			t.Errorf("%s.Terminal() = %v", s, s.Terminal())
		}
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
	}
	for _, s := range []jobs.Status{"running", "", "Queued", "cancelled"} {
		if s.Valid() {
			t.Errorf("%q is valid, want a closed set", s)
		}
	}
}

func testForwardOnly(t *testing.T) {
	allowed := map[[2]jobs.Status]bool{
		{"queued", "processing"}: true, {"queued", "failed"}: true, {"queued", "canceled"}: true,
		{"processing", "succeeded"}: true, {"processing", "failed"}: true, {"processing", "canceled"}: true,
	}
	for _, from := range jobs.Statuses() {
		for _, to := range jobs.Statuses() {
			if got := from.CanMoveTo(to); got != allowed[[2]jobs.Status{from, to}] {
				t.Errorf("%s.CanMoveTo(%s) = %v", from, to, got)
			}
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	all := jobs.Statuses()
	for range 10000 {
		cur := jobs.StatusQueued
		for range 8 {
			next := all[r.IntN(len(all))]
			if !cur.CanMoveTo(next) {
				continue
			}
			if cur.Terminal() || rank(next) <= rank(cur) {
				t.Fatalf("allowed %s -> %s", cur, next)
			}
			cur = next
		}
	}
}

// testManyJobs runs many jobs at once with every kind of ending, cancels
// some of them at random moments, and checks what a watcher of each saw:
// forward-only statuses, rising versions and percentages, terminal states
// that never change, and the ending each plan asked for.
func testManyJobs(t *testing.T, b dbtest.Backend) {
	v := newEnv(t, b, setup{workers: 8})
	type outcome int
	const (
		succeed outcome = iota
		planFailure
		crash
		workFailure
		silent
		outcomes
	)
	type planned struct {
		id      string
		out     outcome
		failAt  int
		cancel  bool
		delay   time.Duration
		steps   int
		canceld error // what Cancel answered
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 16
	var ps []*planned
	for range n {
		p := &planned{out: outcome(r.IntN(int(outcomes))), steps: 1 + r.IntN(4), cancel: r.IntN(3) == 0, delay: time.Duration(r.IntN(30)) * time.Millisecond}
		pl := plan(p.steps, time.Duration(r.IntN(15))*time.Millisecond)
		kind := kindOK
		switch p.out {
		case planFailure:
			p.failAt = r.IntN(p.steps + 1)
			pl.FailAt, pl.Failure = p.failAt, &jobs.Failure{Code: "planned_failure", Detail: "as planned"}
		case crash:
			p.failAt = r.IntN(p.steps + 1)
			pl.FailAt = p.failAt
		case workFailure:
			kind = kindFail
		case silent:
			pl.Silent, p.steps = true, max(p.steps, 2)
			pl.Steps = p.steps
			p.cancel = true // else only the dead-man's switch would end it
		}
		p.id = v.submit(ownerA, kind, pl).ID
		ps = append(ps, p)
	}
	var wg sync.WaitGroup
	for _, p := range ps {
		if p.cancel {
			wg.Go(func() {
				time.Sleep(p.delay)
				_, p.canceld = v.e.Cancel(context.Background(), ownerA, p.id)
			})
		}
	}
	seen := make([][]jobs.Job, len(ps))
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() { seen[i], errs[i] = watchToEnd(v.e, ownerA, p.id) })
	}
	wg.Wait()
	for i, p := range ps {
		if errs[i] != nil {
			t.Error(errs[i])
			continue
		}
		if err := checkSequence(seen[i]); err != nil {
			t.Errorf("job %s (%+v): %v", p.id, *p, err)
		}
		last := seen[i][len(seen[i])-1]
		got, err := v.e.Get(context.Background(), ownerA, p.id)
		if err != nil || got.Status != last.Status || got.Version != last.Version {
			t.Errorf("job %s: terminal %s v%d, then Get answered %s v%d (%v)", p.id, last.Status, last.Version, got.Status, got.Version, err)
		}
		if (last.Status == jobs.StatusSucceeded) != (last.Failure == nil) || (last.Output != nil) != (last.Status == jobs.StatusSucceeded) {
			t.Errorf("job %s: %s with failure %+v and output %q", p.id, last.Status, last.Failure, last.Output)
		}
		if p.cancel {
			switch {
			case p.canceld == nil:
				if last.Status != jobs.StatusCanceled || last.Failure.Code != jobs.CodeCanceled {
					t.Errorf("job %s: Cancel succeeded, then the job ended %s", p.id, describe(last))
				}
				continue
			case errors.Is(p.canceld, jobs.ErrFinished):
				// It ended first: its plan's end is checked below.
			default:
				t.Errorf("Cancel %s: %v", p.id, p.canceld)
				continue
			}
		}
		var wantStatus jobs.Status
		var wantCode string
		switch p.out {
		case succeed:
			wantStatus = jobs.StatusSucceeded
		case planFailure:
			wantStatus, wantCode = jobs.StatusFailed, "planned_failure"
		case crash:
			wantStatus, wantCode = jobs.StatusFailed, jobs.CodeInternal
		case workFailure:
			wantStatus, wantCode = jobs.StatusFailed, codeFromWork
		}
		if last.Status != wantStatus || wantCode != "" && last.Failure.Code != wantCode {
			t.Errorf("job %s (%+v) ended %s, want %s %s", p.id, *p, describe(last), wantStatus, wantCode)
		}
		if (p.out == planFailure || p.out == crash) && last.Step != p.failAt {
			t.Errorf("job %s failed after %d steps, want %d", p.id, last.Step, p.failAt)
		}
	}
	if n := unfinished(t, v.db, ownerA); n != 0 {
		t.Errorf("owner %s has %d unfinished jobs counted after every job ended", ownerA, n)
	}
}

// testProgress follows one job through its steps on a fake clock: each
// step raises the percentage and stamps updated_at and the heartbeat; 100
// comes only with success; the timestamps are in order and survive an RFC
// 3339 round trip; the estimate of time left falls with the clock.
func testProgress(t *testing.T, b dbtest.Backend) {
	clk := fake()
	v := newEnv(t, b, setup{clk: clk, idle: true})
	const steps, interval = 4, time.Minute
	expected := steps * interval
	j := v.submit(ownerA, kindOK, plan(steps, interval))
	if j.Status != jobs.StatusQueued || j.Percent != 0 || !j.CreatedAt.Equal(epoch) || !j.UpdatedAt.Equal(epoch) || j.Expected != expected {
		t.Fatalf("Submit answered %s, created %v, expected %v", describe(j), j.CreatedAt, j.Expected)
	}
	if got := j.Remaining(clk.Now()); got != expected {
		t.Errorf("queued: Remaining = %v, want %v", got, expected)
	}
	// Watch before the queue starts: the snapshot is queued, and every
	// change after it arrives as an update.
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	defer cancel()
	cur, updates, stop, err := v.e.Watch(ctx, ownerA, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if cur.Status != jobs.StatusQueued {
		t.Fatalf("snapshot %s, want queued", describe(cur))
	}
	next := func(what string) jobs.Job {
		t.Helper()
		select {
		case u, ok := <-updates:
			if !ok {
				t.Fatalf("updates closed while waiting for %s", what)
			}
			return u
		case <-ctx.Done():
			t.Fatalf("waited %v for %s", waitMax, what)
		}
		return jobs.Job{}
	}
	v.startQueue()
	started := next("the job to start")
	if started.Status != jobs.StatusProcessing || !started.StartedAt.Equal(epoch) || !started.LastBeat.Equal(epoch) || started.Percent != 0 {
		t.Fatalf("first update %s started %v, want processing at %v", describe(started), started.StartedAt, epoch)
	}
	seen := []jobs.Job{cur, started}
	for i := 1; i < steps; i++ {
		clk.Advance(interval)
		got := next(fmt.Sprintf("step %d", i))
		seen = append(seen, got)
		now := clk.Now()
		if want := i * 100 / steps; got.Status != jobs.StatusProcessing || got.Percent != want || got.Step != i {
			t.Errorf("after step %d: %s, want processing at %d%%", i, describe(got), want)
		}
		if want := fmt.Sprintf("step %d of %d", i, steps); got.Message != want {
			t.Errorf("after step %d: message %q, want %q", i, got.Message, want)
		}
		if !got.UpdatedAt.Equal(now) || !got.LastBeat.Equal(now) || !got.StartedAt.Equal(epoch) {
			t.Errorf("after step %d at %v: updated %v, last beat %v, started %v", i, now, got.UpdatedAt, got.LastBeat, got.StartedAt)
		}
		if rem, want := got.Remaining(now), expected-now.Sub(epoch); rem != want {
			t.Errorf("after step %d: Remaining = %v, want %v", i, rem, want)
		}
	}
	if rem := seen[len(seen)-1].Remaining(clk.Now().Add(time.Hour)); rem != 0 {
		t.Errorf("overdue Remaining = %v, want 0", rem)
	}
	clk.Advance(interval)
	done := next("success")
	seen = append(seen, done)
	if _, ok := <-updates; ok {
		t.Error("an update after the terminal state")
	}
	if err := checkSequence(seen); err != nil {
		t.Error(err)
	}
	if done.Status != jobs.StatusSucceeded || done.Percent != 100 || string(done.Output) != okOutput || done.Failure != nil || done.Remaining(clk.Now()) != 0 {
		t.Fatalf("final %s output %q", describe(done), done.Output)
	}
	end := epoch.Add(expected)
	if !done.FinishedAt.Equal(end) || !done.UpdatedAt.Equal(end) || !done.ExpiresAt.Equal(end.Add(jobs.DefaultRetention)) ||
		!(done.CreatedAt.Compare(done.StartedAt) <= 0 && done.StartedAt.Before(done.FinishedAt)) {
		t.Errorf("timestamps: created %v started %v finished %v updated %v expires %v", done.CreatedAt, done.StartedAt, done.FinishedAt, done.UpdatedAt, done.ExpiresAt)
	}
	for _, ts := range []time.Time{done.CreatedAt, done.UpdatedAt, done.StartedAt, done.FinishedAt, done.ExpiresAt} {
		back, err := time.Parse(time.RFC3339Nano, ts.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(ts) {
			t.Errorf("timestamp %v does not survive RFC 3339: %v %v", ts, back, err)
		}
	}
	// What Get reads from the database is what the watcher was handed.
	got, err := v.e.Get(context.Background(), ownerA, j.ID)
	if err != nil || got.Version != done.Version || got.Percent != 100 || !got.FinishedAt.Equal(done.FinishedAt) || string(got.Input) != `{"in":1}` {
		t.Errorf("Get after the end: %s input %q (%v)", describe(got), got.Input, err)
	}
}

// testCancelQueued cancels a job before any worker took it: it ends
// canceled, its River job is cancelled, its owner's slot is free, and it
// never runs once the queue starts.
func testCancelQueued(t *testing.T, b dbtest.Backend) {
	v := newEnv(t, b, setup{idle: true})
	ctx := context.Background()
	j := v.submit(ownerA, kindOK, plan(2, 0))
	rid := riverID(t, v.db, j.ID)
	if s := riverState(t, v.db, rid); s != "available" {
		t.Fatalf("River job of a queued job is %q, want available", s)
	}
	got, err := v.e.Cancel(ctx, ownerA, j.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got.Status != jobs.StatusCanceled || got.Failure == nil || got.Failure.Code != jobs.CodeCanceled || got.FinishedAt.IsZero() ||
		!got.StartedAt.IsZero() || got.Version <= j.Version || got.Percent != 0 {
		t.Fatalf("Cancel answered %s started %v finished %v", describe(got), got.StartedAt, got.FinishedAt)
	}
	if s := riverState(t, v.db, rid); s != "cancelled" {
		t.Errorf("River job after Cancel: %q, want cancelled", s)
	}
	if n := unfinished(t, v.db, ownerA); n != 0 {
		t.Errorf("owner's unfinished count after Cancel: %d, want 0", n)
	}
	// A job submitted after it runs once the queue starts; River takes
	// jobs in order, so had the canceled one run, it would have by then.
	after := v.submit(ownerA, kindOK, plan(1, 0))
	v.startQueue()
	if final := v.terminal(ownerA, after.ID); final.Status != jobs.StatusSucceeded {
		t.Fatalf("job after the canceled one ended %s", describe(final))
	}
	if final, err := v.e.Get(ctx, ownerA, j.ID); err != nil || final.Version != got.Version || final.Status != jobs.StatusCanceled || !final.StartedAt.IsZero() {
		t.Errorf("canceled job changed to %s (%v)", describe(final), err)
	}
	if s := riverState(t, v.db, rid); s != "cancelled" {
		t.Errorf("River job of the canceled job: %q, want cancelled", s)
	}
}

// testCancelProcessing cancels a job between two steps: it ends canceled,
// and its River job (snoozed until the next step) is cancelled, so no
// worker looks at it again.
func testCancelProcessing(t *testing.T, b dbtest.Backend) {
	clk := fake()
	// A long snooze keeps the River job out of "running" while the test
	// cancels it, so that River cancels it at once.
	v := newEnv(t, b, setup{clk: clk, config: func(c *jobs.Config) { c.MaxSnooze = 3 * time.Second }})
	ctx := context.Background()
	j := v.submit(ownerA, kindOK, plan(3, time.Minute))
	at := v.waitJob(ownerA, j.ID, "processing", isProcessing)
	rid := riverID(t, v.db, j.ID)
	v.waitRiverState(rid, "snoozed (not running)", in("available", "scheduled"))
	got, err := v.e.Cancel(ctx, ownerA, j.ID)
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if got.Status != jobs.StatusCanceled || got.Failure.Code != jobs.CodeCanceled || !got.StartedAt.Equal(at.StartedAt) ||
		!got.FinishedAt.Equal(epoch) || got.Output != nil || got.Version <= at.Version {
		t.Fatalf("Cancel answered %s, finished %v, after %s", describe(got), got.FinishedAt, describe(at))
	}
	if s := riverState(t, v.db, rid); s != "cancelled" {
		t.Errorf("River job after Cancel: %q, want cancelled", s)
	}
	if n := unfinished(t, v.db, ownerA); n != 0 {
		t.Errorf("owner's unfinished count after Cancel: %d, want 0", n)
	}
	seen := v.watchToEnd(ownerA, j.ID)
	if len(seen) != 1 || seen[0].Version != got.Version {
		t.Errorf("Watch after Cancel saw %d states, the first %s", len(seen), describe(seen[0]))
	}
	// Time passes beyond the plan: nothing drives the job any more.
	clk.Advance(time.Hour)
	if err := v.e.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if final, err := v.e.Get(ctx, ownerA, j.ID); err != nil || final.Version != got.Version {
		t.Errorf("canceled job changed to %s (%v)", describe(final), err)
	}
}

func testCancelFinished(t *testing.T, b dbtest.Backend) {
	v := newEnv(t, b, setup{})
	ctx := context.Background()
	j := v.submit(ownerA, kindOK, plan(1, 0))
	done := v.terminal(ownerA, j.ID)
	got, err := v.e.Cancel(ctx, ownerA, j.ID)
	if !errors.Is(err, jobs.ErrFinished) {
		t.Fatalf("Cancel of a finished job: %v, want ErrFinished", err)
	}
	if got.Status != jobs.StatusSucceeded || got.Version != done.Version || string(got.Output) != okOutput {
		t.Fatalf("Cancel answered %s, want the unchanged succeeded job v%d", describe(got), done.Version)
	}
	if _, err := v.e.Cancel(ctx, ownerB, j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Cancel by another owner: %v, want ErrNotFound", err)
	}
	if after, _ := v.e.Get(ctx, ownerA, j.ID); after.Version != done.Version || after.Status != jobs.StatusSucceeded {
		t.Errorf("after the refused Cancel: %s", describe(after))
	}
}

// testExpiry: a finished job stays readable for its retention, then
// answers ErrGone to its owner (before and after the janitor made it a
// tombstone) and ErrNotFound to anyone else, and is forgotten after
// TombstoneFor.
func testExpiry(t *testing.T, b dbtest.Backend) {
	for _, tt := range []struct {
		name      string
		retention time.Duration
		readable  time.Duration // still readable this long after finishing
	}{
		{"default_24h", 0, 23 * time.Hour},
		{"configured_1h", time.Hour, 59 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := fake()
			const tombstoneFor = 48 * time.Hour
			v := newEnv(t, b, setup{clk: clk, config: func(c *jobs.Config) { c.Retention, c.TombstoneFor = tt.retention, tombstoneFor }})
			retention := cmpOr(tt.retention, jobs.DefaultRetention)
			ctx := context.Background()
			j := v.submit(ownerA, kindOK, plan(1, 0))
			done := v.terminal(ownerA, j.ID)
			if !done.ExpiresAt.Equal(done.FinishedAt.Add(retention)) {
				t.Errorf("expires %v, want finished %v + %v", done.ExpiresAt, done.FinishedAt, retention)
			}

			clk.Advance(tt.readable)
			if err := v.e.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := v.e.Get(ctx, ownerA, j.ID); err != nil || got.Version != done.Version || string(got.Output) != okOutput {
				t.Fatalf("Get at +%v: %s %v, want the job readable", tt.readable, describe(got), err)
			}
			clk.Advance(retention - tt.readable)
			if _, err := v.e.Get(ctx, ownerA, j.ID); !errors.Is(err, jobs.ErrGone) {
				t.Fatalf("Get at the end of retention, before a sweep: %v, want ErrGone", err)
			}
			if err := v.e.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if n := count(t, v.db, `SELECT COUNT(*) FROM jobs WHERE id = ? AND tombstone = 1 AND input IS NULL AND output IS NULL`, j.ID); n != 1 {
				t.Errorf("after the janitor the job is not a tombstone without input and output")
			}
			for _, c := range []struct {
				owner string
				want  error
			}{{ownerA, jobs.ErrGone}, {ownerB, jobs.ErrNotFound}} {
				if _, err := v.e.Get(ctx, c.owner, j.ID); !errors.Is(err, c.want) {
					t.Errorf("Get by %s of a tombstone: %v, want %v", c.owner, err, c.want)
				}
				if _, err := v.e.Cancel(ctx, c.owner, j.ID); !errors.Is(err, c.want) {
					t.Errorf("Cancel by %s of a tombstone: %v, want %v", c.owner, err, c.want)
				}
				if _, _, _, err := v.e.Watch(ctx, c.owner, j.ID); !errors.Is(err, c.want) {
					t.Errorf("Watch by %s of a tombstone: %v, want %v", c.owner, err, c.want)
				}
			}

			clk.Advance(tombstoneFor)
			if err := v.e.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if n := count(t, v.db, `SELECT COUNT(*) FROM jobs WHERE id = ?`, j.ID); n != 0 {
				t.Errorf("tombstone still stored %v after expiry", tombstoneFor)
			}
			if _, err := v.e.Get(ctx, ownerA, j.ID); !errors.Is(err, jobs.ErrNotFound) {
				t.Errorf("Get of a forgotten job: %v, want ErrNotFound", err)
			}
		})
	}
}

// testDeadMansSwitch: a job whose worker stops reporting is failed with
// job_stalled once it has been silent longer than StallFactor × its
// expected run time (never less than StallFloor), not a moment before; a
// job that keeps reporting is never failed; a restart is not a silence.
func testDeadMansSwitch(t *testing.T, b dbtest.Backend) {
	ctx := context.Background()
	sweep := func(t *testing.T, v *env) {
		t.Helper()
		if err := v.e.Sweep(ctx); err != nil {
			t.Fatalf("Sweep: %v", err)
		}
	}
	processingAfterSweep := func(t *testing.T, v *env, id, when string) jobs.Job {
		t.Helper()
		sweep(t, v)
		got, err := v.e.Get(ctx, ownerA, id)
		if err != nil || got.Status != jobs.StatusProcessing {
			t.Fatalf("%s: %s (%v), want still processing", when, describe(got), err)
		}
		return got
	}
	stalledAfterSweep := func(t *testing.T, v *env, id string) jobs.Job {
		t.Helper()
		sweep(t, v)
		final := v.terminal(ownerA, id)
		if final.Status != jobs.StatusFailed || final.Failure == nil || final.Failure.Code != jobs.CodeStalled || final.Output != nil {
			t.Fatalf("stalled job ended %s, want failed %s", describe(final), jobs.CodeStalled)
		}
		return final
	}

	// Three silent workers on one clock, each failed at its own deadline
	// (its last report plus its window) by the same watchdog, not a
	// millisecond before.
	t.Run("silent_workers", func(t *testing.T) {
		t.Parallel()
		clk := fake()
		v := newEnv(t, b, setup{clk: clk})
		type silent struct {
			name     string
			plan     jobs.Plan
			lastBeat time.Duration // when the worker reports, once, before it goes silent
			window   time.Duration // silence allowed
			id       string
			beat     jobs.Job
		}
		cases := []*silent{
			// An instant job: the floor keeps the switch from firing at once.
			{name: "instant job", plan: jobs.Plan{Steps: 2, FailAt: -1, Silent: true}, window: jobs.StallFloor},
			// A plan of one step: it reports once and goes silent like any other.
			{name: "single step", plan: jobs.Plan{Steps: 1, Interval: 10 * time.Second, FailAt: -1, Silent: true}, lastBeat: 10 * time.Second, window: 20 * time.Second},
			// 3 steps of 10 s: expected 30 s, so 60 s of silence are allowed.
			{name: "three steps", plan: jobs.Plan{Steps: 3, Interval: 10 * time.Second, FailAt: -1, Silent: true}, lastBeat: 10 * time.Second, window: 60 * time.Second},
		}
		for _, c := range cases {
			c.id = v.submit(ownerA, kindOK, c.plan).ID
			v.waitJob(ownerA, c.id, c.name+" processing", isProcessing)
		}
		at := time.Duration(0) // how far the clock moved
		moveTo := func(d time.Duration) { clk.Advance(d - at); at = d }
		report := func(c *silent) {
			moveTo(c.lastBeat)
			c.beat = v.waitJob(ownerA, c.id, c.name+": its one report", atStep(1))
			if c.beat.Status != jobs.StatusProcessing || !c.beat.LastBeat.Equal(epoch.Add(c.lastBeat)) {
				t.Fatalf("%s after its report: %s last beat %v, want processing, beat at +%v", c.name, describe(c.beat), c.beat.LastBeat, c.lastBeat)
			}
			// Nothing drives a silent job: its River job is done.
			v.waitRiverState(riverID(t, v.db, c.id), c.name+" completed", in("completed"))
		}
		// The instant job reports at once and stalls a second later, before
		// the others report at +10s.
		report(cases[0])
		for i, c := range cases {
			if i == 1 {
				report(cases[1])
				report(cases[2]) // at the same moment
			}
			moveTo(c.lastBeat + c.window)
			processingAfterSweep(t, v, c.id, fmt.Sprintf("%s after %v of silence", c.name, c.window))
			moveTo(c.lastBeat + c.window + time.Millisecond)
			final := stalledAfterSweep(t, v, c.id)
			if final.Step != 1 || final.Percent != c.beat.Percent {
				t.Errorf("%s stalled at step %d %d%%, want the progress of its one report (%s)", c.name, final.Step, final.Percent, describe(c.beat))
			}
			for _, later := range cases[i+1:] {
				if got, _ := v.e.Get(ctx, ownerA, later.id); got.Status != jobs.StatusProcessing {
					t.Fatalf("%s ended before its window: %s", later.name, describe(got))
				}
			}
		}
		if n := unfinished(t, v.db, ownerA); n != 0 {
			t.Errorf("owner's unfinished count after the stalls: %d, want 0", n)
		}
	})

	t.Run("stopped_worker", func(t *testing.T) {
		t.Parallel()
		clk := fake()
		v := newEnv(t, b, setup{clk: clk})
		j := v.submit(ownerA, kindOK, plan(2, time.Hour)) // expected 2 h: 4 h of silence allowed
		v.waitJob(ownerA, j.ID, "processing", isProcessing)
		rid := riverID(t, v.db, j.ID)
		v.waitRiverState(rid, "snoozed", in("available", "scheduled"))
		v.stop() // no worker will ever report again; the engine is closed but its Sweep still works
		clk.Advance(4 * time.Hour)
		processingAfterSweep(t, v, j.ID, "after 4h of silence")
		clk.Advance(time.Millisecond)
		sweep(t, v)
		got, err := v.e.Get(ctx, ownerA, j.ID)
		if err != nil || got.Status != jobs.StatusFailed || got.Failure.Code != jobs.CodeStalled {
			t.Fatalf("after 4h+1ms of silence: %s (%v), want failed %s", describe(got), err, jobs.CodeStalled)
		}
		if s := riverState(t, v.db, rid); s != "cancelled" {
			t.Errorf("River job of the stalled job: %q, want cancelled", s)
		}
	})

	t.Run("reporting_worker_is_not_stalled", func(t *testing.T) {
		t.Parallel()
		clk := fake()
		// Expected 40 s, window 20 s: the job runs twice its window but is
		// never silent for more than 10 s.
		v := newEnv(t, b, setup{clk: clk, config: func(c *jobs.Config) { c.StallFactor = 0.5 }})
		const steps = 4
		j := v.submit(ownerA, kindOK, plan(steps, 10*time.Second))
		v.waitJob(ownerA, j.ID, "processing", isProcessing)
		for i := 1; i < steps; i++ {
			clk.Advance(10 * time.Second)
			v.waitJob(ownerA, j.ID, fmt.Sprintf("step %d", i), atStep(i))
			sweep(t, v)
		}
		clk.Advance(10 * time.Second)
		if final := v.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("reporting job ended %s", describe(final))
		}
	})

	t.Run("restart_is_not_a_stall", func(t *testing.T) {
		t.Parallel()
		clk := fake()
		log := newTestLog(t)
		db := b.Open(t, log.log)
		v1 := newEnvOn(t, db, log, setup{clk: clk})
		j := v1.submit(ownerA, kindOK, plan(2, time.Hour)) // window 4 h
		v1.waitJob(ownerA, j.ID, "processing", isProcessing)
		v1.waitRiverState(riverID(t, db, j.ID), "snoozed", in("available", "scheduled"))
		v1.stop()
		clk.Advance(5 * time.Hour) // the service was down longer than the window
		v2 := newEnvOn(t, db, log, setup{clk: clk, idle: true})
		processingAfterSweep(t, v2, j.ID, "right after a restart")
		clk.Advance(4 * time.Hour)
		processingAfterSweep(t, v2, j.ID, "4h after a restart")
		// Its River job survived the restart: a worker resumes the job.
		v2.startQueue()
		if final := v2.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded || final.Step != 2 {
			t.Fatalf("job after the restart ended %s", describe(final))
		}
	})
}

// testPeriodicWatchdog: without anyone calling Sweep, River's periodic job
// runs the watchdog and fails a silent job.
func testPeriodicWatchdog(t *testing.T, b dbtest.Backend) {
	v := newEnv(t, b, setup{maintenance: true, config: func(c *jobs.Config) { c.SweepEvery = 100 * time.Millisecond }})
	j := v.submit(ownerA, kindOK, jobs.Plan{Steps: 2, FailAt: -1, Silent: true}) // window: StallFloor
	final := v.terminal(ownerA, j.ID)
	if final.Status != jobs.StatusFailed || final.Failure.Code != jobs.CodeStalled {
		t.Fatalf("silent job ended %s, want failed %s", describe(final), jobs.CodeStalled)
	}
	if silent := final.FinishedAt.Sub(final.LastBeat); silent <= jobs.StallFloor {
		t.Errorf("failed after %v of silence, want more than %v", silent, jobs.StallFloor)
	}
}

// testOtherOwner: another owner's job does not exist for anyone else,
// whatever they try; unknown ids are not found either.
func testOtherOwner(t *testing.T, b dbtest.Backend) {
	clk := fake()
	v := newEnv(t, b, setup{clk: clk})
	ctx := context.Background()
	j := v.submit(ownerA, kindOK, plan(2, time.Hour))
	before := v.waitJob(ownerA, j.ID, "processing", isProcessing)
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := v.e.Get(ctx, ownerB, j.ID); return err }},
		{"Cancel", func() error { _, err := v.e.Cancel(ctx, ownerB, j.ID); return err }},
		{"Watch", func() error { _, _, _, err := v.e.Watch(ctx, ownerB, j.ID); return err }},
		{"Get_unknown_id", func() error { _, err := v.e.Get(ctx, ownerA, jobs.NewID()); return err }},
		{"Cancel_unknown_id", func() error { _, err := v.e.Cancel(ctx, ownerA, jobs.NewID()); return err }},
		{"Watch_unknown_id", func() error { _, _, _, err := v.e.Watch(ctx, ownerA, jobs.NewID()); return err }},
	} {
		if err := tt.call(); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tt.name, err)
		}
	}
	if got, err := v.e.Get(ctx, ownerA, j.ID); err != nil || got.Version != before.Version || got.Status != jobs.StatusProcessing {
		t.Fatalf("another owner's calls changed the job to %s (%v)", describe(got), err)
	}
}

func testIDs(t *testing.T) {
	re := regexp.MustCompile(`^job_[a-z2-7]{26}$`)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	seen := map[string]bool{}
	var ones int
	const n = 2000
	for range n {
		id := jobs.NewID()
		if !re.MatchString(id) || !jobs.ValidID(id) {
			t.Fatalf("id %q has the wrong shape", id)
		}
		b, err := enc.DecodeString(strings.ToUpper(strings.TrimPrefix(id, "job_")))
		if err != nil || len(b) != 16 {
			t.Fatalf("id %q decodes to %d bytes (%v), want 16", id, len(b), err)
		}
		for _, x := range b {
			for ; x != 0; x &= x - 1 {
				ones++
			}
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	// 128 fair random bits per id: about half are ones (a stuck byte or a
	// counter would be far off).
	if frac := float64(ones) / (n * 128); frac < 0.49 || frac > 0.51 {
		t.Errorf("fraction of one bits = %.3f, want about 0.5", frac)
	}
	for _, bad := range []string{"", "job_", "JOB_" + strings.Repeat("a", 26), "job_" + strings.Repeat("a", 25), "job_" + strings.Repeat("1", 26), "job_" + strings.Repeat("a", 27)} {
		if jobs.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// riverRuns counts the River jobs that run jobs (not maintenance).
func riverRuns(t testing.TB, v *env) int {
	t.Helper()
	return count(t, v.db, `SELECT COUNT(*) FROM river_job WHERE kind = ?`, riverRunKind)
}

// testQueueFull: at QueueSize unfinished jobs Submit answers ErrQueueFull
// and creates nothing; the accepted jobs all finish; then it accepts again.
func testQueueFull(t *testing.T, b dbtest.Backend) {
	const queue = 3
	v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) { c.QueueSize = queue }})
	ctx := context.Background()
	var accepted []jobs.Job
	for range queue {
		accepted = append(accepted, v.submit(ownerA, kindOK, plan(1, 0)))
	}
	for _, owner := range []string{ownerA, ownerB} {
		if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: owner, Plan: plan(1, 0)}); !errors.Is(err, jobs.ErrQueueFull) {
			t.Fatalf("Submit by %s to a full queue: %v, want ErrQueueFull", owner, err)
		}
	}
	if n, r, u := count(t, v.db, `SELECT COUNT(*) FROM jobs`), riverRuns(t, v), unfinished(t, v.db, ownerA)+unfinished(t, v.db, ownerB); n != queue || r != queue || u != queue {
		t.Fatalf("after refusals: %d jobs, %d River jobs, %d slots taken; want %d of each", n, r, u, queue)
	}
	waitFor(t, "Stats to count the queued jobs", func() (bool, string) {
		st, err := v.e.Stats(ctx)
		return err == nil && st.Queued == queue && st.Running == 0 && st.QueueSize == queue, fmt.Sprintf("%+v %v", st, err)
	})
	if ra := v.e.QueueRetryAfter(); ra < time.Second || ra > time.Minute || ra%time.Second != 0 {
		t.Errorf("QueueRetryAfter = %v, want whole seconds in [1s, 60s]", ra)
	}
	v.startQueue()
	for _, j := range accepted {
		if final := v.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded {
			t.Errorf("accepted job %s ended %s", j.ID, describe(final))
		}
	}
	waitFor(t, "the emptied queue to accept a job", func() (bool, string) {
		_, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)})
		return err == nil, fmt.Sprint(err)
	})
}

// testQueueFullBurst: many Submits at once never take the queue past
// QueueSize, and every refusal is ErrQueueFull.
func testQueueFullBurst(t *testing.T, b dbtest.Backend) {
	const queue, burst = 5, 32
	v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) { c.QueueSize = queue }})
	ctx := context.Background()
	var (
		mu       sync.Mutex
		accepted int
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	for i := range burst {
		wg.Go(func() {
			<-start
			_, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: fmt.Sprintf("key_%d", i), Plan: plan(1, 0)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case !errors.Is(err, jobs.ErrQueueFull):
				t.Errorf("Submit: %v, want nil or ErrQueueFull", err)
			}
		})
	}
	close(start)
	wg.Wait()
	n := count(t, v.db, `SELECT COUNT(*) FROM jobs`)
	if accepted < 1 || accepted > queue || n != accepted || riverRuns(t, v) != accepted {
		t.Fatalf("%d Submits at once to a queue of %d: %d accepted, %d jobs stored; want between 1 and %d, all stored",
			burst, queue, accepted, n, queue)
	}
	// Topped up one at a time, it fills to exactly QueueSize.
	waitFor(t, "the queue to fill up", func() (bool, string) {
		_, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)})
		if err != nil && !errors.Is(err, jobs.ErrQueueFull) {
			t.Fatalf("Submit: %v", err)
		}
		n := count(t, v.db, `SELECT COUNT(*) FROM jobs`)
		return n >= queue, fmt.Sprintf("%d jobs (%v)", n, err)
	})
	if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)}); !errors.Is(err, jobs.ErrQueueFull) {
		t.Errorf("Submit to the full queue: %v, want ErrQueueFull", err)
	}
	if n := count(t, v.db, `SELECT COUNT(*) FROM jobs`); n != queue {
		t.Errorf("%d jobs stored, want %d", n, queue)
	}
}
