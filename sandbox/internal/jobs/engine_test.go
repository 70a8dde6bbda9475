package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// TestOutcomes: how each way a plan or a kind's Work can end becomes the
// job's end, and what its owner sees of it. Plain errors and panics are
// internal_error, logged and never shown; a panic is recovered, and River
// sees a job that completed, not one that failed.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	planned := &jobs.Failure{Code: "planned_failure", Detail: "The simulated job failed, as its scenario asked."}
	failAt := func(steps, at int, f *jobs.Failure) jobs.Plan {
		return jobs.Plan{Steps: steps, FailAt: at, Failure: f}
	}
	cases := []struct {
		name        string
		kind        jobs.Kind
		plan        jobs.Plan
		wantStatus  jobs.Status
		wantCode    string
		wantStep    int
		wantPercent int
		wantLog     string // in the log, never in the owner's detail
	}{
		{"success", kindOK, plan(3, 0), jobs.StatusSucceeded, "", 3, 100, ""},
		{"failure_at_start", kindOK, failAt(3, 0, planned), jobs.StatusFailed, "planned_failure", 0, 0, ""},
		{"failure_midway", kindOK, failAt(3, 1, planned), jobs.StatusFailed, "planned_failure", 1, 33, ""},
		{"failure_after_last_step", kindOK, failAt(3, 3, planned), jobs.StatusFailed, "planned_failure", 3, 99, ""},
		{"crash_at_start", kindOK, failAt(3, 0, nil), jobs.StatusFailed, jobs.CodeInternal, 0, 0, "simulated crash"},
		{"crash_midway", kindOK, failAt(3, 2, nil), jobs.StatusFailed, jobs.CodeInternal, 2, 66, "simulated crash"},
		{"crash_after_last_step", kindOK, failAt(3, 3, nil), jobs.StatusFailed, jobs.CodeInternal, 3, 99, "simulated crash"},
		{"work_failure_keeps_its_code", kindFail, plan(2, 0), jobs.StatusFailed, codeFromWork, 2, 99, ""},
		{"work_error_is_internal", kindError, plan(2, 0), jobs.StatusFailed, jobs.CodeInternal, 2, 99, secretText},
		{"work_panic_is_internal", kindPanic, plan(2, 0), jobs.StatusFailed, jobs.CodeInternal, 2, 99, panicText},
		{"message_panic_is_internal", kindMsgPanic, plan(2, 0), jobs.StatusFailed, jobs.CodeInternal, 0, 0, panicText},
	}
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{})
		ids := make([]string, len(cases))
		for i, c := range cases {
			ids[i] = v.submit(ownerA, c.kind, c.plan).ID
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				seen := v.watchToEnd(ownerA, ids[i])
				if err := checkSequence(seen); err != nil {
					t.Error(err)
				}
				got := seen[len(seen)-1]
				if got.Status != c.wantStatus || got.Step != c.wantStep || got.Percent != c.wantPercent || got.FinishedAt.IsZero() || got.StartedAt.IsZero() {
					t.Errorf("ended %s started %v finished %v; want %s after %d steps at %d%%",
						describe(got), got.StartedAt, got.FinishedAt, c.wantStatus, c.wantStep, c.wantPercent)
				}
				if c.wantCode == "" {
					if got.Failure != nil || string(got.Output) != okOutput {
						t.Errorf("success with failure %+v and output %q", got.Failure, got.Output)
					}
				} else if got.Failure == nil || got.Failure.Code != c.wantCode || got.Output != nil {
					t.Errorf("failure %+v output %q, want code %s and no output", got.Failure, got.Output, c.wantCode)
				}
				if c.wantLog != "" {
					if strings.Contains(got.Failure.Detail, c.wantLog) {
						t.Errorf("the internal detail reached the owner: %q", got.Failure.Detail)
					}
					if logs := v.log.String(); !strings.Contains(logs, c.wantLog) {
						t.Errorf("log lacks %q", c.wantLog)
					}
				}
				// The engine handled the end: River's job completed.
				v.waitRiverState(riverID(t, v.db, ids[i]), "completed", in("completed"))
			})
		}
		if logs := v.log.String(); !strings.Contains(logs, "job work panicked") {
			t.Errorf("no panic was logged")
		}
		if n := unfinished(t, v.db, ownerA); n != 0 {
			t.Errorf("owner's unfinished count after every job ended: %d, want 0", n)
		}
	})
}

// TestSubmitRefusals: a bad spec, or a draining or closed engine, is
// refused and creates nothing: no job, no River job, no slot.
func TestSubmitRefusals(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true})
		ctx := context.Background()
		for _, tt := range []struct {
			name string
			spec jobs.Spec
			want error // nil: any error
		}{
			{"unknown_kind", jobs.Spec{Kind: "nope", Owner: ownerA, Plan: plan(1, 0)}, jobs.ErrUnknownKind},
			{"no_owner", jobs.Spec{Kind: kindOK, Plan: plan(1, 0)}, nil},
			{"no_steps", jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(0, 0)}, nil},
			{"negative_interval", jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, -time.Second)}, nil},
			{"fail_after_the_end", jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: jobs.Plan{Steps: 2, FailAt: 3}}, nil},
		} {
			_, err := v.e.Submit(ctx, tt.spec)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("%s: Submit answered %v, want an error (%v)", tt.name, err, tt.want)
			}
		}
		v.e.Drain()
		if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)}); !errors.Is(err, jobs.ErrClosed) {
			t.Errorf("Submit while draining: %v, want ErrClosed", err)
		}
		for table, n := range map[string]int{
			"jobs":       count(t, v.db, `SELECT COUNT(*) FROM jobs`),
			"river_job":  riverRuns(t, v),
			"job_owners": count(t, v.db, `SELECT COUNT(*) FROM job_owners`),
		} {
			if n != 0 {
				t.Errorf("refused Submits left %d rows in %s", n, table)
			}
		}
	})
}

// dialectOnly is a database that only knows its dialect.
type dialectOnly struct{ sqldb.DB }

func (dialectOnly) Dialect() sqldb.Dialect { return sqldb.SQLite }

// TestNewRejectsBadConfig: New refuses what would make the engine misbehave
// later.
func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	db := dialectOnly{} // New reads nothing from the database
	good := func() jobs.Config { return jobs.Config{DB: db, Kinds: kinds()} }
	if _, err := jobs.New(good()); err != nil {
		t.Fatalf("New of a good config: %v", err)
	}
	for name, change := range map[string]func(*jobs.Config){
		"no_db":                  func(c *jobs.Config) { c.DB = nil },
		"no_kinds":               func(c *jobs.Config) { c.Kinds = nil },
		"kind_without_message":   func(c *jobs.Config) { c.Kinds = map[jobs.Kind]jobs.Work{"x": {Result: kinds()[kindOK].Result}} },
		"kind_without_result":    func(c *jobs.Config) { c.Kinds = map[jobs.Kind]jobs.Work{"x": {Message: kinds()[kindOK].Message}} },
		"negative_queue_size":    func(c *jobs.Config) { c.QueueSize = -1 },
		"negative_owner_cap":     func(c *jobs.Config) { c.MaxUnfinishedPerOwner = -1 },
		"negative_workers":       func(c *jobs.Config) { c.Workers = -1 },
		"negative_retention":     func(c *jobs.Config) { c.Retention = -time.Hour },
		"negative_stall_factor":  func(c *jobs.Config) { c.StallFactor = -1 },
		"negative_sweep_every":   func(c *jobs.Config) { c.SweepEvery = -time.Second },
		"negative_tombstone_for": func(c *jobs.Config) { c.TombstoneFor = -time.Hour },
		"negative_max_snooze":    func(c *jobs.Config) { c.MaxSnooze = -time.Second },
		"negative_inline_wait":   func(c *jobs.Config) { c.InlineWait = -time.Millisecond },
		"negative_max_attempts":  func(c *jobs.Config) { c.MaxAttempts = -1 },
	} {
		cfg := good()
		change(&cfg)
		if _, err := jobs.New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

// TestSubmitThen: what Then writes commits in the transaction that
// creates the job; when Then fails, nothing is created: no job, no River
// job, no slot of the owner's share, nothing Then wrote.
func TestSubmitThen(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) { c.MaxUnfinishedPerOwner = 2 }})
		ctx := context.Background()
		errThen := errors.New("then failed")
		var calls int
		then := func(key string, fail bool) func(context.Context, sqldb.Tx, jobs.Job) error {
			return func(ctx context.Context, tx sqldb.Tx, j jobs.Job) error {
				calls++
				if !jobs.ValidID(j.ID) || j.Status != jobs.StatusQueued || j.Owner != ownerA {
					return fmt.Errorf("Then was handed %s", describe(j))
				}
				// Like an idempotency record naming its job.
				if _, err := tx.Exec(ctx, `INSERT INTO idempotency (owner, key, fingerprint, started_at, expires_at, job_id) VALUES (?, ?, ?, ?, ?, ?)`,
					j.Owner, key, []byte("fp"), sqldb.Nanos(j.CreatedAt), sqldb.Nanos(j.CreatedAt.Add(24*time.Hour)), j.ID); err != nil {
					return err
				}
				if fail {
					return errThen
				}
				return nil
			}
		}
		submit := func(key string, fail bool) (jobs.Job, error) {
			return v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0), Then: then(key, fail)})
		}
		rows := func() string {
			return fmt.Sprintf("%d jobs, %d River jobs, %d slots, %d records",
				count(t, v.db, `SELECT COUNT(*) FROM jobs`), riverRuns(t, v), unfinished(t, v.db, ownerA), count(t, v.db, `SELECT COUNT(*) FROM idempotency`))
		}

		j, err := submit("k1", false)
		if err != nil {
			t.Fatalf("Submit with Then: %v", err)
		}
		var named string
		if err := v.db.Read().QueryRow(ctx, `SELECT job_id FROM idempotency WHERE owner = ? AND key = ?`, ownerA, "k1").Scan(&named); err != nil || named != j.ID {
			t.Fatalf("the record Then wrote names %q (%v), want %s", named, err, j.ID)
		}
		want := "1 jobs, 1 River jobs, 1 slots, 1 records"
		if got := rows(); got != want {
			t.Fatalf("after a Submit: %s, want %s", got, want)
		}

		if _, err := submit("k2", true); !errors.Is(err, errThen) {
			t.Fatalf("Submit with a failing Then: %v, want its error", err)
		}
		if got := rows(); got != want {
			t.Fatalf("after a failing Then: %s, want what was there before (%s)", got, want)
		}
		// The failed Submit took no slot: the owner's second one is free.
		if _, err := submit("k3", false); err != nil {
			t.Fatalf("Submit after a failing Then: %v", err)
		}
		calls = 0
		if _, err := submit("k4", false); !errors.Is(err, jobs.ErrOwnerBusy) || calls != 0 {
			t.Fatalf("Submit beyond the owner's cap: %v after %d calls of Then, want ErrOwnerBusy and none", err, calls)
		}
		v.startQueue()
		if final := v.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded {
			t.Errorf("job of the record ended %s", describe(final))
		}
	})
}

// TestOwnerCap: one owner's unfinished jobs are bounded, exactly, even
// when Submits race; an end (cancel or finish) frees a place; other owners
// are not affected.
func TestOwnerCap(t *testing.T) {
	t.Parallel()
	t.Run("sequential", each(func(t *testing.T, b dbtest.Backend) {
		clk := fake()
		v := newEnv(t, b, setup{clk: clk, config: func(c *jobs.Config) { c.MaxUnfinishedPerOwner = 2 }})
		ctx := context.Background()
		busy := func(what string) {
			t.Helper()
			if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, time.Hour)}); !errors.Is(err, jobs.ErrOwnerBusy) {
				t.Fatalf("%s: %v, want ErrOwnerBusy", what, err)
			}
		}
		first := v.submit(ownerA, kindOK, plan(1, 2*time.Hour))
		second := v.submit(ownerA, kindOK, plan(1, time.Hour))
		busy("third job of owner A")
		v.submit(ownerB, kindOK, plan(1, 3*time.Hour))
		if _, err := v.e.Cancel(ctx, ownerA, first.ID); err != nil {
			t.Fatal(err)
		}
		v.submit(ownerA, kindOK, plan(1, 2*time.Hour))
		busy("owner A at the cap again")
		v.waitJob(ownerA, second.ID, "processing", isProcessing)
		clk.Advance(time.Hour)
		if final := v.terminal(ownerA, second.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("job ended %s", describe(final))
		}
		v.submit(ownerA, kindOK, plan(1, time.Hour))
		busy("owner A at the cap once more")
		if a, b := unfinished(t, v.db, ownerA), unfinished(t, v.db, ownerB); a != 2 || b != 1 {
			t.Errorf("unfinished counts: A %d, B %d; want 2 and 1", a, b)
		}
	}))

	t.Run("concurrent", each(func(t *testing.T, b dbtest.Backend) {
		const limit, burst = 5, 32
		v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) { c.MaxUnfinishedPerOwner = limit }})
		ctx := context.Background()
		var (
			mu             sync.Mutex
			accepted, busy int
			wg             sync.WaitGroup
			start          = make(chan struct{})
		)
		for range burst {
			wg.Go(func() {
				<-start
				_, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, jobs.ErrOwnerBusy):
					busy++
				default:
					t.Errorf("Submit: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if accepted != limit || busy != burst-limit {
			t.Fatalf("%d Submits at once with a cap of %d: %d accepted, %d refused; want %d and %d", burst, limit, accepted, busy, limit, burst-limit)
		}
		if n, r, u := count(t, v.db, `SELECT COUNT(*) FROM jobs`), riverRuns(t, v), unfinished(t, v.db, ownerA); n != limit || r != limit || u != limit {
			t.Errorf("%d jobs, %d River jobs, %d slots taken; want %d of each", n, r, u, limit)
		}
	}))
}

// TestLongJobsHoldNoWorker: a job waiting for its next step snoozes instead
// of holding a River worker, so 20 jobs waiting an hour each all start, and
// all finish, on 2 workers.
func TestLongJobsHoldNoWorker(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		clk := fake()
		// Each job looks at the clock again every MaxSnooze: the default
		// (2s) here, for 20 jobs on 2 workers.
		v := newEnv(t, b, setup{clk: clk, workers: 2, config: func(c *jobs.Config) { c.MaxSnooze = jobs.DefaultMaxSnooze }})
		const n = 20
		for range n {
			v.submit(ownerA, kindOK, plan(1, time.Hour))
		}
		waitAll := func(what, where string) {
			t.Helper()
			waitFor(t, fmt.Sprintf("all %d jobs %s", n, what), func() (bool, string) {
				got := count(t, v.db, `SELECT COUNT(*) FROM jobs WHERE `+where)
				return got == n, fmt.Sprintf("%d of them", got)
			})
		}
		waitAll("to start", `status = 'processing'`)
		clk.Advance(time.Hour)
		waitAll("to succeed", `status = 'succeeded'`)
	})
}

// snoozes answers how many times River snoozed a River job.
func snoozes(t testing.TB, db sqldb.DB, rid int64) int {
	t.Helper()
	q := `SELECT metadata::text FROM river_job WHERE id = ?`
	if db.Dialect() == sqldb.SQLite {
		q = `SELECT json(metadata) FROM river_job WHERE id = ?`
	}
	var raw string
	if err := db.Read().QueryRow(context.Background(), q, rid).Scan(&raw); err != nil {
		t.Fatalf("metadata of River job %d: %v", rid, err)
	}
	var md struct{ Snoozes int }
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		t.Fatalf("metadata of River job %d: %v: %s", rid, err, raw)
	}
	return md.Snoozes
}

// TestInlineWaitAndSnooze: a wait up to InlineWait is slept through in the
// worker (on the engine's clock); a longer one is snoozed for at most
// MaxSnooze and looked at again and again until the step is due.
func TestInlineWaitAndSnooze(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		clk := fake()
		v := newEnv(t, b, setup{clk: clk, config: func(c *jobs.Config) { c.InlineWait, c.MaxSnooze = 20*time.Millisecond, 10*time.Millisecond }})
		const steps, short = 3, 5 * time.Millisecond
		inline := v.submit(ownerA, kindOK, plan(steps, short))
		snoozed := v.submit(ownerA, kindOK, plan(1, time.Minute))
		for i := range steps {
			// The worker waits on the clock: nothing else does.
			waitFor(t, fmt.Sprintf("the worker to wait for step %d on the clock", i+1), func() (bool, string) {
				n := clk.Waiters()
				return n == 1, fmt.Sprintf("%d waiting", n)
			})
			clk.Advance(short)
			v.waitJob(ownerA, inline.ID, fmt.Sprintf("step %d", i+1), atStep(i+1))
		}
		if final := v.terminal(ownerA, inline.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("job ended %s", describe(final))
		}
		if n := snoozes(t, v.db, riverID(t, v.db, inline.ID)); n != 0 {
			t.Errorf("a job with %v between steps was snoozed %d times, want 0 (InlineWait is 20ms)", short, n)
		}
		rid := riverID(t, v.db, snoozed.ID)
		waitFor(t, "the job waiting a minute to be snoozed and looked at again, 3 times", func() (bool, string) {
			n := snoozes(t, v.db, rid)
			return n >= 3, fmt.Sprintf("%d snoozes", n)
		})
		if got, err := v.e.Get(context.Background(), ownerA, snoozed.ID); err != nil || got.Status != jobs.StatusProcessing || got.Step != 0 {
			t.Fatalf("before its step is due: %s (%v)", describe(got), err)
		}
		clk.Advance(time.Minute)
		if final := v.terminal(ownerA, snoozed.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("job ended %s", describe(final))
		}
	})
}

// TestRecover: Recover rebuilds every owner's count of unfinished jobs and
// gives a new River job to an unfinished job whose River job is gone.
func TestRecover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("rebuilds_owner_counts", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) { c.MaxUnfinishedPerOwner = 3 }})
		v.submit(ownerA, kindOK, plan(1, 0))
		v.submit(ownerA, kindOK, plan(1, 0))
		gone := v.submit(ownerB, kindOK, plan(1, 0))
		if _, err := v.e.Cancel(ctx, ownerB, gone.ID); err != nil {
			t.Fatal(err)
		}
		// Counts gone wrong both ways: A's lost, B's too high.
		exec(t, v.db, `DELETE FROM job_owners WHERE owner = ?`, ownerA)
		exec(t, v.db, `UPDATE job_owners SET unfinished = 3 WHERE owner = ?`, ownerB)
		if err := v.e.Recover(ctx); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if a, b := unfinished(t, v.db, ownerA), unfinished(t, v.db, ownerB); a != 2 || b != 0 {
			t.Fatalf("after Recover: A %d, B %d unfinished; want 2 and 0", a, b)
		}
		v.submit(ownerA, kindOK, plan(1, 0))
		if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)}); !errors.Is(err, jobs.ErrOwnerBusy) {
			t.Errorf("owner A's fourth job: %v, want ErrOwnerBusy", err)
		}
		for range 3 {
			v.submit(ownerB, kindOK, plan(1, 0))
		}
	}))

	t.Run("fails_a_job_river_gave_up_on", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true})
		j := v.submit(ownerA, kindOK, plan(2, 0))
		// As River leaves a job after MaxAttempts errors in a row.
		if n := exec(t, v.db, `UPDATE river_job SET state = 'discarded', finalized_at = CURRENT_TIMESTAMP WHERE id = ?`, riverID(t, v.db, j.ID)); n != 1 {
			t.Fatalf("discarded %d River jobs", n)
		}
		if err := v.e.Recover(ctx); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		got, err := v.e.Get(ctx, ownerA, j.ID)
		if err != nil || got.Status != jobs.StatusFailed || got.Failure == nil || got.Failure.Code != jobs.CodeInterrupted {
			t.Fatalf("after Recover: %s %v, want failed with %s", describe(got), err, jobs.CodeInterrupted)
		}
		if n := unfinished(t, v.db, ownerA); n != 0 {
			t.Errorf("owner A holds %d slots after its only job failed", n)
		}
	}))

	t.Run("requeues_a_queued_job", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true})
		j := v.submit(ownerA, kindOK, plan(2, 0))
		old := riverID(t, v.db, j.ID)
		if n := exec(t, v.db, `DELETE FROM river_job WHERE id = ?`, old); n != 1 {
			t.Fatalf("deleted %d River jobs", n)
		}
		if err := v.e.Recover(ctx); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		rid := riverID(t, v.db, j.ID)
		if rid == old || riverState(t, v.db, rid) != "available" {
			t.Fatalf("after Recover the job's River job is %d (%q), was %d", rid, riverState(t, v.db, rid), old)
		}
		v.startQueue()
		if final := v.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("requeued job ended %s", describe(final))
		}
	}))

	t.Run("requeues_a_processing_job", each(func(t *testing.T, b dbtest.Backend) {
		clk := fake()
		v := newEnv(t, b, setup{clk: clk})
		j := v.submit(ownerA, kindOK, plan(2, time.Hour))
		v.waitJob(ownerA, j.ID, "processing", isProcessing)
		old := riverID(t, v.db, j.ID)
		waitFor(t, "the River job to be deleted between two runs", func() (bool, string) {
			n := exec(t, v.db, `DELETE FROM river_job WHERE id = ? AND state <> 'running'`, old)
			return n == 1, "it was running"
		})
		if err := v.e.Recover(ctx); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if rid := riverID(t, v.db, j.ID); rid == old {
			t.Fatalf("after Recover the job still names the deleted River job %d", old)
		}
		clk.Advance(time.Hour)
		v.waitJob(ownerA, j.ID, "step 1", atStep(1))
		clk.Advance(time.Hour)
		if final := v.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded || final.Step != 2 {
			t.Fatalf("requeued job ended %s", describe(final))
		}
	}))
}

// TestRestart: jobs accepted by one process finish after it stopped and
// another started on the same database: one that was running, and one
// accepted after the first process's queue had stopped.
func TestRestart(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		clk := fake()
		open := b.Database(t)
		log := newTestLog(t)
		db1 := open(t, log.log)
		v1 := newEnvOn(t, db1, log, setup{clk: clk})
		running := v1.submit(ownerA, kindOK, plan(3, time.Minute))
		v1.waitJob(ownerA, running.ID, "processing", isProcessing)
		clk.Advance(time.Minute)
		v1.waitJob(ownerA, running.ID, "step 1", atStep(1))
		v1.stopQueue()
		queued := v1.submit(ownerA, kindOK, plan(2, time.Minute))
		before, err := v1.e.Get(context.Background(), ownerA, running.ID)
		if err != nil || before.Status != jobs.StatusProcessing || before.Step != 1 {
			t.Fatalf("before the restart: %s (%v), want processing after step 1", describe(before), err)
		}
		v1.stop()
		if err := db1.Close(); err != nil {
			t.Fatal(err)
		}

		v2 := newEnvOn(t, open(t, log.log), log, setup{clk: clk})
		v2.waitJob(ownerA, queued.ID, "the job accepted before the restart to start", isProcessing)
		clk.Advance(time.Minute)
		v2.waitJob(ownerA, running.ID, "step 2", atStep(2))
		v2.waitJob(ownerA, queued.ID, "step 1", atStep(1))
		clk.Advance(time.Minute)
		for _, j := range []jobs.Job{running, queued} {
			seen := v2.watchToEnd(ownerA, j.ID)
			if final := seen[len(seen)-1]; final.Status != jobs.StatusSucceeded || final.Step != j.Plan.Steps {
				t.Errorf("job %s after the restart ended %s", j.ID, describe(final))
			}
		}
		after, _ := v2.e.Get(context.Background(), ownerA, running.ID)
		if err := checkSequence([]jobs.Job{before, after}); err != nil || after.Step != 3 {
			t.Errorf("job %s across the restart, from %s to %s: %v", running.ID, describe(before), describe(after), err)
		}
		if n := unfinished(t, v2.db, ownerA); n != 0 {
			t.Errorf("owner's unfinished count at the end: %d, want 0", n)
		}
	})
}

// TestWatch: a watcher gets the current state, then every change, and
// always the terminal state, however slow it is; the channel closes after
// the terminal state, on stop, when ctx ends and when the engine closes.
func TestWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("slow_watcher_gets_terminal_state", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{idle: true})
		const steps = 12
		j := v.submit(ownerA, kindOK, plan(steps, 0))
		cur, updates, stop, err := v.e.Watch(ctx, ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		v.startQueue()
		v.waitJob(ownerA, j.ID, "the end, before the watcher reads anything", isTerminal)
		wctx, cancel := context.WithTimeout(ctx, waitMax)
		defer cancel()
		seen, err := collect(wctx, cur, updates)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkSequence(seen); err != nil {
			t.Error(err)
		}
		if last := seen[len(seen)-1]; last.Status != jobs.StatusSucceeded {
			t.Fatalf("last update %s, want succeeded", describe(last))
		}
		t.Logf("%d states delivered of %d (coalesced)", len(seen), steps+2)
	}))

	t.Run("terminal_snapshot_closes_at_once", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{})
		j := v.submit(ownerA, kindOK, plan(1, 0))
		done := v.terminal(ownerA, j.ID)
		cur, updates, stop, err := v.e.Watch(ctx, ownerA, j.ID)
		if err != nil || cur.Version != done.Version {
			t.Fatalf("Watch = %s, %v", describe(cur), err)
		}
		defer stop()
		select {
		case u, ok := <-updates:
			if ok {
				t.Fatalf("an update after a terminal snapshot: %s", describe(u))
			}
		default:
			t.Fatal("the channel of a terminal snapshot is open")
		}
	}))

	t.Run("stop_and_ctx_close_the_channel", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{clk: fake()})
		j := v.submit(ownerA, kindOK, plan(2, time.Hour))
		v.waitJob(ownerA, j.ID, "processing", isProcessing)
		cctx, cancel := context.WithCancel(ctx)
		_, byCtx, _, err := v.e.Watch(cctx, ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, byStop, stop, err := v.e.Watch(ctx, ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		stop()
		stop() // idempotent
		mustClose(t, "the channel of a Watch whose ctx ended", byCtx)
		mustClose(t, "the channel of a stopped Watch", byStop)
	}))

	t.Run("close_ends_every_watch", each(func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{clk: fake()})
		j := v.submit(ownerA, kindOK, plan(2, time.Hour))
		v.waitJob(ownerA, j.ID, "processing", isProcessing)
		_, updates, stop, err := v.e.Watch(ctx, ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		v.stop()
		mustClose(t, "the channel of a Watch when the engine closed", updates)
		cur, after, _, err := v.e.Watch(ctx, ownerA, j.ID)
		if err != nil || cur.Status != jobs.StatusProcessing {
			t.Fatalf("Watch after Close: %s, %v; want the current state", describe(cur), err)
		}
		mustClose(t, "the channel of a Watch after Close", after)
	}))

	t.Run("another_engine_sees_every_change", each(func(t *testing.T, b dbtest.Backend) {
		open := b.Database(t)
		log := newTestLog(t)
		clk := fake()
		dbA := open(t, log.log)
		a := newEnvOn(t, dbA, log, setup{clk: clk})
		// The other replica runs no work: every change it sees was made by A.
		other := setup{clk: clk, idle: true}
		dbB := dbA
		if b.Shared {
			dbB = open(t, log.log)
		} else {
			other.idle, other.noQueue = false, true // SQLite: one handle, one River client, shared
		}
		bb := newEnvOn(t, dbB, log, other)

		const steps = 4
		j := a.submit(ownerA, kindOK, plan(steps, time.Minute))
		wctx, cancel := context.WithTimeout(ctx, waitMax)
		defer cancel()
		cur, updates, stop, err := bb.e.Watch(wctx, ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		seen := []jobs.Job{cur}
		next := func(what string) jobs.Job {
			t.Helper()
			select {
			case u, ok := <-updates:
				if !ok {
					t.Fatalf("the other engine's updates closed while waiting for %s; seen %s", what, describe(seen[len(seen)-1]))
				}
				seen = append(seen, u)
				return u
			case <-wctx.Done():
				t.Fatalf("waited %v for the other engine to see %s; seen %s", waitMax, what, describe(seen[len(seen)-1]))
			}
			return jobs.Job{}
		}
		if cur.Status == jobs.StatusQueued {
			if u := next("the start"); u.Status != jobs.StatusProcessing || u.Step != 0 {
				t.Fatalf("first change seen: %s, want the start", describe(u))
			}
		}
		// The test moves the clock only once the other engine saw the last
		// change, so every change reaches it on its own.
		for i := 1; i <= steps; i++ {
			clk.Advance(time.Minute)
			u := next(fmt.Sprintf("step %d", i))
			if want := i * 100 / steps; u.Step != i || u.Percent != min(want, 99) && u.Status != jobs.StatusSucceeded {
				t.Errorf("change %d seen as %s, want step %d at %d%%", i, describe(u), i, want)
			}
		}
		mustClose(t, "the other engine's updates after the end", updates)
		if err := checkSequence(seen); err != nil {
			t.Error(err)
		}
		if last := seen[len(seen)-1]; last.Status != jobs.StatusSucceeded || string(last.Output) != okOutput {
			t.Errorf("the other engine's last state: %s", describe(last))
		}

		// And the other way round: a cancel on B ends the job A watches.
		long := a.submit(ownerA, kindOK, plan(2, time.Hour))
		a.waitJob(ownerA, long.ID, "processing", isProcessing)
		cur, updates, stopA, err := a.e.Watch(ctx, ownerA, long.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer stopA()
		if _, err := bb.e.Cancel(ctx, ownerA, long.ID); err != nil {
			t.Fatalf("Cancel on the other engine: %v", err)
		}
		seenByA, err := collect(wctx, cur, updates)
		if err != nil {
			t.Fatal(err)
		}
		if last := seenByA[len(seenByA)-1]; last.Status != jobs.StatusCanceled {
			t.Errorf("A's watcher ended at %s, want canceled", describe(last))
		}
	}))
}

func mustClose(t testing.TB, what string, ch <-chan jobs.Job) {
	t.Helper()
	timeout := time.After(waitMax)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("waited %v for %s to close", waitMax, what)
		}
	}
}

// TestDrain: a draining engine refuses new jobs while what it accepted
// still runs to its end and can be read and watched; after Close too.
func TestDrain(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		v := newEnv(t, b, setup{})
		ctx := context.Background()
		j := v.submit(ownerA, kindOK, plan(3, 30*time.Millisecond))
		v.e.Drain()
		if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)}); !errors.Is(err, jobs.ErrClosed) {
			t.Fatalf("Submit while draining: %v, want ErrClosed", err)
		}
		if final := v.terminal(ownerA, j.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("job accepted before Drain ended %s", describe(final))
		}
		if n := count(t, v.db, `SELECT COUNT(*) FROM jobs`); n != 1 {
			t.Errorf("%d jobs stored, want 1", n)
		}
		v.stop()
		if _, err := v.e.Submit(ctx, jobs.Spec{Kind: kindOK, Owner: ownerA, Plan: plan(1, 0)}); !errors.Is(err, jobs.ErrClosed) {
			t.Fatalf("Submit after Close: %v, want ErrClosed", err)
		}
		if got, err := v.e.Get(ctx, ownerA, j.ID); err != nil || got.Status != jobs.StatusSucceeded {
			t.Errorf("Get after Close: %s (%v)", describe(got), err)
		}
	})
}

// TestOnFinish: the hooks run once for every end (success, failure,
// cancel, stall), in the transaction that ends the job; a hook that fails
// keeps the job from ending.
func TestOnFinish(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		clk := fake()
		var (
			mu      sync.Mutex
			ended   = map[string][]jobs.Status{}
			refuse  string // a job whose end the hook refuses
			errHook = errors.New("hook failed")
		)
		hook := func(ctx context.Context, tx sqldb.Tx, j jobs.Job) error {
			mu.Lock()
			defer mu.Unlock()
			if j.ID == refuse {
				return errHook
			}
			// The job's end is written in this transaction already.
			var status string
			if err := tx.QueryRow(ctx, `SELECT status FROM jobs WHERE id = ?`, j.ID).Scan(&status); err != nil {
				return err
			}
			if jobs.Status(status) != j.Status || !j.Status.Terminal() {
				return fmt.Errorf("hook of %s: the row says %s", describe(j), status)
			}
			tx.AfterCommit(func() {
				mu.Lock()
				defer mu.Unlock()
				ended[j.ID] = append(ended[j.ID], j.Status)
			})
			return nil
		}
		v := newEnv(t, b, setup{clk: clk, config: func(c *jobs.Config) { c.OnFinish = []func(context.Context, sqldb.Tx, jobs.Job) error{hook} }})
		ctx := context.Background()
		ok := v.submit(ownerA, kindOK, plan(1, 0))
		failed := v.submit(ownerA, kindOK, jobs.Plan{Steps: 1, FailAt: 0, Failure: &jobs.Failure{Code: "planned_failure"}})
		canceled := v.submit(ownerA, kindOK, plan(2, time.Hour))
		stalled := v.submit(ownerA, kindOK, jobs.Plan{Steps: 2, FailAt: -1, Silent: true})
		kept := v.submit(ownerA, kindOK, plan(2, time.Hour))
		v.waitJob(ownerA, canceled.ID, "processing", isProcessing)
		if _, err := v.e.Cancel(ctx, ownerA, canceled.ID); err != nil {
			t.Fatal(err)
		}
		v.waitJob(ownerA, stalled.ID, "its one report", atStep(1))
		clk.Advance(jobs.StallFloor + time.Millisecond)
		if err := v.e.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		want := map[string]jobs.Status{ok.ID: jobs.StatusSucceeded, failed.ID: jobs.StatusFailed, canceled.ID: jobs.StatusCanceled, stalled.ID: jobs.StatusFailed}
		for id, status := range want {
			if final := v.terminal(ownerA, id); final.Status != status {
				t.Errorf("job %s ended %s, want %s", id, describe(final), status)
			}
		}
		mu.Lock()
		for id, status := range want {
			if got := ended[id]; len(got) != 1 || got[0] != status {
				t.Errorf("hook ran for job %s with %v, want once with %s", id, got, status)
			}
		}
		refuse = kept.ID
		mu.Unlock()

		v.waitJob(ownerA, kept.ID, "processing", isProcessing)
		before, _ := v.e.Get(ctx, ownerA, kept.ID)
		if _, err := v.e.Cancel(ctx, ownerA, kept.ID); !errors.Is(err, errHook) {
			t.Fatalf("Cancel with a failing hook: %v, want the hook's error", err)
		}
		if got, err := v.e.Get(ctx, ownerA, kept.ID); err != nil || got.Version != before.Version || got.Status != jobs.StatusProcessing {
			t.Errorf("after the failed Cancel: %s (%v), want it unchanged", describe(got), err)
		}
		if n := unfinished(t, v.db, ownerA); n != 1 {
			t.Errorf("owner's unfinished count: %d, want 1", n)
		}
	})
}

// TestRiverMaxAttempts: the River jobs that run jobs, from Submit and from
// Recover, carry Config.MaxAttempts.
func TestRiverMaxAttempts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		const attempts = 3
		v := newEnv(t, b, setup{idle: true, config: func(c *jobs.Config) { c.MaxAttempts = attempts }})
		j := v.submit(ownerA, kindOK, plan(1, 0))
		maxAttempts := func() int {
			return count(t, v.db, `SELECT max_attempts FROM river_job WHERE id = ?`, riverID(t, v.db, j.ID))
		}
		if n := maxAttempts(); n != attempts {
			t.Errorf("River job from Submit: max_attempts %d, want %d", n, attempts)
		}
		exec(t, v.db, `DELETE FROM river_job WHERE id = ?`, riverID(t, v.db, j.ID))
		if err := v.e.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := maxAttempts(); n != attempts {
			t.Errorf("River job from Recover: max_attempts %d, want %d", n, attempts)
		}
	})
}
