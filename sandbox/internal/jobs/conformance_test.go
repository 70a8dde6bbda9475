package jobs_test

import (
	"cmp"
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// TestConformance holds the engine-level checks of the rows in
// shared/ASYNC-CONFORMANCE.md; the HTTP layer checks the same rows on the wire.
func TestConformance(t *testing.T) {
	t.Run("R7_status_vocabulary", testStatusVocabulary)
	t.Run("R7_forward_only_transitions", testForwardOnly)
	t.Run("R8_progress_monotonic_and_timestamps", testProgress)
	t.Run("R11_cancel", testCancel)
	t.Run("R11_cancel_finished_is_ErrFinished", testCancelFinished)
	t.Run("R12_expiry_after_retention", testExpiry)
	t.Run("R13_dead_mans_switch", testDeadMansSwitch)
	t.Run("R14_other_owner_not_found_and_ids_128_bits", testOwnerAndIDs)
	t.Run("R23_queue_full_accepts_nothing", testQueueFull)
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
	if jobs.Status("running").Valid() {
		t.Error(`"running" is valid, want closed set`)
	}
}

func testForwardOnly(t *testing.T) {
	t.Run("table", func(t *testing.T) {
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
	})

	t.Run("random_sequences", func(t *testing.T) {
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
	})

	t.Run("many_concurrent_jobs_with_random_cancels", func(t *testing.T) {
		type plan struct {
			outcome  int // 0 succeed, 1 Fail, 2 plain error, 3 panic, 4 block until canceled
			cancel   bool
			progress int
		}
		var mu sync.Mutex
		plans := map[string]plan{}
		work := func(ctx context.Context, j jobs.Job, progress jobs.Progress) ([]byte, error) {
			mu.Lock()
			p := plans[j.ID]
			mu.Unlock()
			for i := range p.progress {
				if err := progress(i*10, "step"); err != nil {
					return nil, err
				}
			}
			switch p.outcome {
			case 1:
				return nil, jobs.Fail("report_failed", "as planned")
			case 2:
				return nil, errors.New("boom")
			case 3:
				panic("planned panic")
			case 4:
				<-ctx.Done()
				return []byte("late"), nil
			}
			return []byte("ok"), nil
		}
		e := newEngine(t, work, func(c *jobs.Config) { c.Workers = 16 })
		r := rand.New(rand.NewPCG(1, 2))
		const n = 300
		ids := make([]string, 0, n)
		mu.Lock() // plans must be in place before any worker reads them
		for range n {
			j := mustSubmit(t, e, ownerA, time.Second)
			p := plan{outcome: r.IntN(5), cancel: r.IntN(3) == 0, progress: r.IntN(5)}
			if p.outcome == 4 {
				p.cancel = true // otherwise it would wait for the dead-man's switch
			}
			plans[j.ID] = p
			ids = append(ids, j.ID)
		}
		mu.Unlock()

		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				if plans[id].cancel {
					time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
					if _, err := e.Cancel(context.Background(), ownerA, id); err != nil && !errors.Is(err, jobs.ErrFinished) {
						t.Errorf("Cancel %s: %v", id, err)
					}
				}
			})
			wg.Go(func() {
				seen := mustWatchToEnd(t, e, ownerA, id)
				for i := 1; i < len(seen); i++ {
					prev, cur := seen[i-1], seen[i]
					if cur.Version <= prev.Version {
						t.Errorf("%s: version %d after %d", id, cur.Version, prev.Version)
					}
					if prev.Status.Terminal() || rank(cur.Status) < rank(prev.Status) {
						t.Errorf("%s: moved %s -> %s", id, prev.Status, cur.Status)
					}
					if cur.Percent < prev.Percent {
						t.Errorf("%s: percent %d after %d", id, cur.Percent, prev.Percent)
					}
				}
				last := seen[len(seen)-1]
				got, err := e.Get(context.Background(), ownerA, id)
				if err != nil || got.Status != last.Status || got.Version != last.Version {
					t.Errorf("%s: terminal %s v%d changed to %s v%d (%v)", id, last.Status, last.Version, got.Status, got.Version, err)
				}
				if (last.Status == jobs.StatusSucceeded) != (last.Failure == nil) {
					t.Errorf("%s: status %s with failure %v", id, last.Status, last.Failure)
				}
			})
		}
		wg.Wait()
	})
}

func testProgress(t *testing.T) {
	steps := make(chan int)
	work := func(ctx context.Context, _ jobs.Job, progress jobs.Progress) ([]byte, error) {
		for {
			select {
			case p, ok := <-steps:
				if !ok {
					return []byte("done"), nil
				}
				if err := progress(p, fmt.Sprintf("at %d", p)); err != nil {
					return nil, err
				}
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
	}
	// Watch before Start, so the snapshot is queued and processing arrives as an update.
	e := newUnstartedEngine(t, work)
	const expected = 10 * time.Second
	j := mustSubmit(t, e, ownerA, expected)
	if got := j.Remaining(e.clk.Now()); got != expected {
		t.Errorf("queued Remaining = %s, want %s", got, expected)
	}
	_, updates, stop, err := e.Watch(context.Background(), ownerA, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	e.Start(context.Background())
	next := func() jobs.Job {
		t.Helper()
		select {
		case j := <-updates:
			return j
		case <-time.After(waitMax):
			t.Fatal("no update")
		}
		return jobs.Job{}
	}
	if started := next(); started.Status != jobs.StatusProcessing || !started.StartedAt.Equal(epoch) {
		t.Fatalf("first update %s started %v, want processing at %v", started.Status, started.StartedAt, epoch)
	}
	tests := []struct {
		report, want int
	}{
		{10, 10}, {50, 50}, {30, 50}, {-5, 50}, {100, 99}, {250, 99},
	}
	last := j
	for _, tt := range tests {
		e.clk.Advance(time.Second)
		steps <- tt.report
		got := next()
		if got.Percent != tt.want {
			t.Errorf("after report %d: Percent = %d, want %d", tt.report, got.Percent, tt.want)
		}
		if !got.UpdatedAt.After(last.UpdatedAt) || !got.LastBeat.Equal(got.UpdatedAt) {
			t.Errorf("after report %d: UpdatedAt %v (was %v), LastBeat %v", tt.report, got.UpdatedAt, last.UpdatedAt, got.LastBeat)
		}
		if rem := got.Remaining(e.clk.Now()); rem != expected-e.clk.Now().Sub(epoch) {
			t.Errorf("Remaining = %s", rem)
		}
		last = got
	}
	// Not Advance: the sweeper would (rightly) fail the silent job.
	if rem := last.Remaining(e.clk.Now().Add(time.Hour)); rem != 0 {
		t.Errorf("overdue Remaining = %s, want 0", rem)
	}
	close(steps)
	done := next()
	if done.Status != jobs.StatusSucceeded || done.Percent != 100 || string(done.Output) != "done" || done.Remaining(e.clk.Now()) != 0 {
		t.Fatalf("final = %s %d%% %q", done.Status, done.Percent, done.Output)
	}
	if !(done.CreatedAt.Compare(done.StartedAt) <= 0 && done.StartedAt.Before(done.FinishedAt) &&
		done.FinishedAt.Equal(done.UpdatedAt) && done.ExpiresAt.Equal(done.FinishedAt.Add(jobs.DefaultRetention))) {
		t.Errorf("timestamps out of order: %+v", done)
	}
	for _, ts := range []time.Time{done.CreatedAt, done.UpdatedAt, done.StartedAt, done.FinishedAt} {
		if _, err := time.Parse(time.RFC3339Nano, ts.Format(time.RFC3339Nano)); err != nil {
			t.Errorf("timestamp %v: %v", ts, err)
		}
	}
}

func testCancel(t *testing.T) {
	tests := []struct {
		name    string
		running bool // cancel while processing, or while still queued
	}{
		{"while_processing", true},
		{"while_queued", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			causes := map[string]error{}
			work := func(ctx context.Context, j jobs.Job, _ jobs.Progress) ([]byte, error) {
				<-ctx.Done()
				mu.Lock()
				causes[j.ID] = context.Cause(ctx)
				mu.Unlock()
				return []byte("late success"), nil
			}
			e := newEngine(t, work, func(c *jobs.Config) { c.Workers = 1 })
			blocker := mustSubmit(t, e, ownerA, time.Second)
			mustStatus(t, e, ownerA, blocker.ID, jobs.StatusProcessing)
			target := blocker
			if !tt.running {
				target = mustSubmit(t, e, ownerA, time.Second)
			}
			got, err := e.Cancel(context.Background(), ownerA, target.ID)
			if err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			if got.Status != jobs.StatusCanceled || got.Failure == nil || got.Failure.Code != jobs.CodeCanceled || got.FinishedAt.IsZero() {
				t.Fatalf("Cancel answered %s %+v", got.Status, got.Failure)
			}
			if final := mustTerminal(t, e, ownerA, target.ID); final.Status != jobs.StatusCanceled || final.Output != nil {
				t.Fatalf("after late success: %s output %q, want canceled", final.Status, final.Output)
			}
			if !tt.running {
				if _, err := e.Cancel(context.Background(), ownerA, blocker.ID); err != nil {
					t.Fatal(err)
				}
			}
			mustTerminal(t, e, ownerA, blocker.ID)
			deadline := time.Now().Add(waitMax)
			for {
				mu.Lock()
				cause, ran := causes[blocker.ID], len(causes)
				mu.Unlock()
				if cause != nil {
					if !errors.Is(cause, context.Canceled) {
						t.Errorf("work ctx cause %v, want context.Canceled", cause)
					}
					if ran != 1 {
						t.Errorf("%d jobs ran, want 1: a job canceled while queued must not run", ran)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("work ctx never canceled")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

func testCancelFinished(t *testing.T) {
	e := newEngine(t, succeedAtOnce)
	j := mustSubmit(t, e, ownerA, time.Second)
	done := mustTerminal(t, e, ownerA, j.ID)
	got, err := e.Cancel(context.Background(), ownerA, j.ID)
	if !errors.Is(err, jobs.ErrFinished) {
		t.Fatalf("Cancel of finished job: %v, want ErrFinished", err)
	}
	if got.Status != jobs.StatusSucceeded || got.Version != done.Version {
		t.Fatalf("Cancel answered %s v%d, want the unchanged succeeded job v%d", got.Status, got.Version, done.Version)
	}
	if _, err := e.Cancel(context.Background(), ownerB, j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Cancel by another owner: %v, want ErrNotFound", err)
	}
}

func testExpiry(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		readable  time.Duration // still readable this long after finishing
	}{
		{"default_24h", 0, 23 * time.Hour},
		{"configured_1h", time.Hour, 59 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, succeedAtOnce, func(c *jobs.Config) { c.Retention = tt.retention })
			retention := cmp.Or(tt.retention, jobs.DefaultRetention)
			j := mustSubmit(t, e, ownerA, time.Second)
			mustTerminal(t, e, ownerA, j.ID)
			ctx := context.Background()

			e.clk.Advance(tt.readable)
			e.Sweep(ctx)
			if _, err := e.Get(ctx, ownerA, j.ID); err != nil {
				t.Fatalf("Get at +%s: %v, want readable", tt.readable, err)
			}
			e.clk.Advance(retention - tt.readable + time.Second)
			if _, err := e.Get(ctx, ownerA, j.ID); !errors.Is(err, jobs.ErrGone) {
				t.Fatalf("Get past retention before sweep: %v, want ErrGone", err)
			}
			e.Sweep(ctx)
			if n, _ := e.store.Count(ctx); n != 0 {
				t.Errorf("store holds %d live jobs after the janitor, want 0", n)
			}
			for _, c := range []struct {
				owner string
				want  error
			}{{ownerA, jobs.ErrGone}, {ownerB, jobs.ErrNotFound}} {
				if _, err := e.Get(ctx, c.owner, j.ID); !errors.Is(err, c.want) {
					t.Errorf("Get by %s after sweep: %v, want %v", c.owner, err, c.want)
				}
			}
			if _, err := e.Cancel(ctx, ownerA, j.ID); !errors.Is(err, jobs.ErrGone) {
				t.Errorf("Cancel after expiry: %v, want ErrGone", err)
			}
		})
	}
}

func testDeadMansSwitch(t *testing.T) {
	tests := []struct {
		name     string
		expected time.Duration
		quiet    time.Duration // silence that must not trip the switch
	}{
		{"twice_expected", 10 * time.Second, 20 * time.Second},
		{"floor_for_instant_jobs", 0, jobs.StallFloor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, blockUntilDone)
			ctx := context.Background()
			j := mustSubmit(t, e, ownerA, tt.expected)
			mustStatus(t, e, ownerA, j.ID, jobs.StatusProcessing)
			e.clk.Advance(tt.quiet)
			e.Sweep(ctx)
			if got, _ := e.Get(ctx, ownerA, j.ID); got.Status != jobs.StatusProcessing {
				t.Fatalf("after %s of silence: %s, want processing", tt.quiet, got.Status)
			}
			e.clk.Advance(time.Millisecond)
			e.Sweep(ctx)
			final := mustTerminal(t, e, ownerA, j.ID)
			if final.Status != jobs.StatusFailed || final.Failure == nil || final.Failure.Code != jobs.CodeStalled {
				t.Fatalf("stalled job ended %s %+v, want failed %s", final.Status, final.Failure, jobs.CodeStalled)
			}
			time.Sleep(10 * time.Millisecond) // let the late success of blockUntilDone try to land
			if got, _ := e.Get(ctx, ownerA, j.ID); got.Status != jobs.StatusFailed || got.Version != final.Version {
				t.Fatalf("late success overwrote the stall: %s v%d", got.Status, got.Version)
			}
		})
	}

	t.Run("beating_job_is_not_stalled", func(t *testing.T) {
		beat := make(chan struct{})
		work := func(ctx context.Context, _ jobs.Job, progress jobs.Progress) ([]byte, error) {
			for range beat {
				if err := progress(1, "alive"); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
		e := newEngine(t, work)
		ctx := context.Background()
		j := mustSubmit(t, e, ownerA, 10*time.Second)
		mustStatus(t, e, ownerA, j.ID, jobs.StatusProcessing)
		for range 5 { // 75s in all, far past 2×expected, but never 20s silent
			e.clk.Advance(15 * time.Second)
			beat <- struct{}{}
			mustStatus(t, e, ownerA, j.ID, jobs.StatusProcessing)
			for { // wait for the beat to be stored before sweeping
				got, _ := e.Get(ctx, ownerA, j.ID)
				if got.LastBeat.Equal(e.clk.Now()) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			e.Sweep(ctx)
		}
		close(beat)
		if final := mustTerminal(t, e, ownerA, j.ID); final.Status != jobs.StatusSucceeded {
			t.Fatalf("beating job ended %s %+v", final.Status, final.Failure)
		}
	})
}

func testOwnerAndIDs(t *testing.T) {
	e := newEngine(t, blockUntilDone)
	ctx := context.Background()
	j := mustSubmit(t, e, ownerA, time.Second)
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := e.Get(ctx, ownerB, j.ID); return err }},
		{"Cancel", func() error { _, err := e.Cancel(ctx, ownerB, j.ID); return err }},
		{"Watch", func() error { _, _, _, err := e.Watch(ctx, ownerB, j.ID); return err }},
		{"Get_unknown_id", func() error { _, err := e.Get(ctx, ownerA, jobs.NewID()); return err }},
	} {
		if err := tt.call(); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tt.name, err)
		}
	}
	if got, _ := e.Get(ctx, ownerA, j.ID); got.Status.Terminal() {
		t.Fatalf("another owner's Cancel changed the job to %s", got.Status)
	}

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
	for _, bad := range []string{"", "job_", "JOB_" + strings.Repeat("a", 26), "job_" + strings.Repeat("a", 25), "job_" + strings.Repeat("1", 26)} {
		if jobs.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func testQueueFull(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		gate := make(chan struct{})
		work := func(ctx context.Context, _ jobs.Job, _ jobs.Progress) ([]byte, error) {
			select {
			case <-gate:
				return []byte("ok"), nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		const workers, queue = 2, 5
		e := newEngine(t, work, func(c *jobs.Config) { c.Workers, c.QueueSize = workers, queue })
		ctx := context.Background()
		var accepted []jobs.Job
		for range workers {
			j := mustSubmit(t, e, ownerA, time.Second)
			mustStatus(t, e, ownerA, j.ID, jobs.StatusProcessing)
			accepted = append(accepted, j)
		}
		for range queue {
			accepted = append(accepted, mustSubmit(t, e, ownerA, time.Second))
		}
		if st := e.Stats(); st.Queued != queue || st.Running != workers {
			t.Errorf("Stats = %+v, want %d queued, %d running", st, queue, workers)
		}
		before, _ := e.store.Count(ctx)
		for range 3 {
			if _, err := e.Submit(ctx, jobs.Spec{Kind: kindTest, Owner: ownerA}); !errors.Is(err, jobs.ErrQueueFull) {
				t.Fatalf("Submit on a full queue: %v, want ErrQueueFull", err)
			}
		}
		if after, _ := e.store.Count(ctx); after != before {
			t.Fatalf("store count %d -> %d: a refused job was stored", before, after)
		}
		if ra := e.QueueRetryAfter(); ra < time.Second || ra > time.Minute || ra%time.Second != 0 {
			t.Errorf("QueueRetryAfter = %s, want whole seconds in [1s, 60s]", ra)
		}
		close(gate)
		for _, j := range accepted {
			if final := mustTerminal(t, e, ownerA, j.ID); final.Status != jobs.StatusSucceeded {
				t.Errorf("accepted job %s ended %s", j.ID, final.Status)
			}
		}
	})

	t.Run("concurrent_burst", func(t *testing.T) {
		const queue, burst = 20, 200
		e := newUnstartedEngine(t, succeedAtOnce, func(c *jobs.Config) { c.QueueSize = queue })
		ctx := context.Background()
		var (
			mu       sync.Mutex
			accepted []string
			refused  int
			wg       sync.WaitGroup
		)
		for range burst {
			wg.Go(func() {
				j, err := e.Submit(ctx, jobs.Spec{Kind: kindTest, Owner: ownerA})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted = append(accepted, j.ID)
				case errors.Is(err, jobs.ErrQueueFull):
					refused++
				default:
					t.Errorf("Submit: %v", err)
				}
			})
		}
		wg.Wait()
		if len(accepted) != queue || refused != burst-queue {
			t.Fatalf("accepted %d, refused %d; want %d and %d", len(accepted), refused, queue, burst-queue)
		}
		if n, _ := e.store.Count(ctx); n != queue {
			t.Fatalf("store holds %d jobs, want %d", n, queue)
		}
		e.Start(context.Background())
		for _, id := range accepted {
			if final := mustTerminal(t, e, ownerA, id); final.Status != jobs.StatusSucceeded {
				t.Errorf("accepted job %s ended %s", id, final.Status)
			}
		}
	})
}

// TestWorkOutcomes checks how each way Work can end becomes a job status.
func TestWorkOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		work       jobs.Work
		wantStatus jobs.Status
		wantCode   string
		wantOutput string
		wantLog    string
	}{
		{"success", succeedAtOnce, jobs.StatusSucceeded, "", `{"ok":true}`, ""},
		{"catalog_failure", func(context.Context, jobs.Job, jobs.Progress) ([]byte, error) {
			return nil, fmt.Errorf("rendering: %w", jobs.Fail("report_too_large", "The report has too many rows."))
		}, jobs.StatusFailed, "report_too_large", "", ""},
		{"plain_error_is_internal", func(context.Context, jobs.Job, jobs.Progress) ([]byte, error) {
			return []byte("partial"), errors.New("secret db password wrong")
		}, jobs.StatusFailed, jobs.CodeInternal, "", "secret db password wrong"},
		{"panic_is_internal", func(context.Context, jobs.Job, jobs.Progress) ([]byte, error) {
			panic("nil map somewhere")
		}, jobs.StatusFailed, jobs.CodeInternal, "", "nil map somewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.work)
			j := mustSubmit(t, e, ownerA, time.Second)
			got := mustTerminal(t, e, ownerA, j.ID)
			if got.Status != tt.wantStatus || string(got.Output) != tt.wantOutput {
				t.Fatalf("ended %s with output %q, want %s %q", got.Status, got.Output, tt.wantStatus, tt.wantOutput)
			}
			if tt.wantCode == "" {
				if got.Failure != nil || got.Percent != 100 {
					t.Fatalf("success with failure %+v, percent %d", got.Failure, got.Percent)
				}
				return
			}
			if got.Failure == nil || got.Failure.Code != tt.wantCode {
				t.Fatalf("failure %+v, want code %s", got.Failure, tt.wantCode)
			}
			if tt.wantLog != "" {
				if strings.Contains(got.Failure.Detail, tt.wantLog) {
					t.Errorf("internal detail leaked to the owner: %q", got.Failure.Detail)
				}
				if !strings.Contains(e.logs.String(), tt.wantLog) {
					t.Errorf("log lacks %q:\n%s", tt.wantLog, e.logs.String())
				}
			}
		})
	}
}

func TestSubmitRefusals(t *testing.T) {
	e := newEngine(t, succeedAtOnce)
	ctx := context.Background()
	tests := []struct {
		name string
		spec jobs.Spec
		want error
	}{
		{"unknown_kind", jobs.Spec{Kind: "nope", Owner: ownerA}, jobs.ErrUnknownKind},
		{"no_owner", jobs.Spec{Kind: kindTest}, nil},
		{"negative_expected", jobs.Spec{Kind: kindTest, Owner: ownerA, Expected: -1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Submit(ctx, tt.spec)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Submit: %v, want %v", err, tt.want)
			}
		})
	}
	if n, _ := e.store.Count(ctx); n != 0 {
		t.Fatalf("refused submits stored %d jobs", n)
	}
	for _, cfg := range []jobs.Config{{}, {Store: e.store}, {Store: e.store, Work: map[jobs.Kind]jobs.Work{"x": nil}}} {
		if _, err := jobs.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}

func TestWatch(t *testing.T) {
	t.Run("slow_watcher_gets_terminal_state", func(t *testing.T) {
		work := func(ctx context.Context, _ jobs.Job, progress jobs.Progress) ([]byte, error) {
			for i := range 100 {
				if err := progress(i, "busy"); err != nil {
					return nil, err
				}
			}
			return []byte("ok"), nil
		}
		e := newUnstartedEngine(t, work)
		j := mustSubmit(t, e, ownerA, time.Second)
		_, updates, stop, err := e.Watch(context.Background(), ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		e.Start(context.Background())
		mustStatus(t, e, ownerA, j.ID, jobs.StatusSucceeded) // the engine finished without waiting for us
		var last jobs.Job
		n := 0
		for u := range updates {
			last, n = u, n+1
		}
		if last.Status != jobs.StatusSucceeded {
			t.Fatalf("last update %s, want succeeded", last.Status)
		}
		t.Logf("%d updates delivered for 102 changes (coalesced)", n)
	})

	t.Run("terminal_snapshot_closes_at_once", func(t *testing.T) {
		e := newEngine(t, succeedAtOnce)
		j := mustSubmit(t, e, ownerA, time.Second)
		mustTerminal(t, e, ownerA, j.ID)
		cur, updates, _, err := e.Watch(context.Background(), ownerA, j.ID)
		if err != nil || cur.Status != jobs.StatusSucceeded {
			t.Fatalf("Watch = %s, %v", cur.Status, err)
		}
		if _, ok := <-updates; ok {
			t.Fatal("update after terminal snapshot")
		}
	})

	t.Run("stop_and_ctx_close_the_channel", func(t *testing.T) {
		e := newEngine(t, blockUntilDone)
		j := mustSubmit(t, e, ownerA, time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		_, byCtx, _, err := e.Watch(ctx, ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, byStop, stop, err := e.Watch(context.Background(), ownerA, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		stop()
		stop() // idempotent
		for _, ch := range []<-chan jobs.Job{byCtx, byStop} {
			for range ch { // drain whatever was in flight; must end
			}
		}
	})
}

func TestCloseLeavesNothingBehind(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		te := newUnstartedEngine(t, blockUntilDone, func(c *jobs.Config) { c.Workers = 4 })
		te.Start(context.Background())
		var ids []string
		for range 10 { // 4 run, 6 wait in the queue
			ids = append(ids, mustSubmit(t, te, ownerA, time.Second).ID)
		}
		for _, id := range ids {
			if _, _, _, err := te.Watch(context.Background(), ownerA, id); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitMax)
		defer cancel()
		if err := te.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := te.Submit(ctx, jobs.Spec{Kind: kindTest, Owner: ownerA}); !errors.Is(err, jobs.ErrClosed) {
			t.Fatalf("Submit after Close: %v, want ErrClosed", err)
		}
		for _, id := range ids {
			j, err := te.Get(ctx, ownerA, id)
			if err != nil || j.Status != jobs.StatusFailed || j.Failure.Code != jobs.CodeInterrupted {
				t.Errorf("job %s after Close: %s %+v %v, want failed job_interrupted", id, j.Status, j.Failure, err)
			}
		}
		if err := te.Close(ctx); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}()
	var now int
	for range 200 {
		if now = runtime.NumGoroutine(); now <= base {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("%d goroutines after Close, %d before:\n%s", now, base, buf[:runtime.Stack(buf, true)])
}

func TestSubmitAfterStartCtxEnds(t *testing.T) {
	e := newUnstartedEngine(t, succeedAtOnce)
	ctx, cancel := context.WithCancel(context.Background())
	e.Start(ctx)
	cancel()
	if _, err := e.Submit(context.Background(), jobs.Spec{Kind: kindTest, Owner: ownerA}); !errors.Is(err, jobs.ErrClosed) {
		t.Fatalf("Submit after Start's ctx ended: %v, want ErrClosed", err)
	}
}

func BenchmarkSubmit(b *testing.B) {
	e := newUnstartedEngine(b, succeedAtOnce, func(c *jobs.Config) { c.QueueSize = b.N + 1 })
	ctx := context.Background()
	spec := jobs.Spec{Kind: kindTest, Owner: ownerA, Input: []byte(`{"title":"q3"}`), Expected: time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := e.Submit(ctx, spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	e := newUnstartedEngine(b, succeedAtOnce)
	ctx := context.Background()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = mustSubmit(b, e, ownerA, time.Second).ID
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.Get(ctx, ownerA, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkThroughput measures jobs per second from Submit to a terminal
// state with instant Work: the engine's own overhead per job.
func BenchmarkThroughput(b *testing.B) {
	e := newEngine(b, succeedAtOnce, func(c *jobs.Config) { c.QueueSize = b.N + 1; c.Workers = 64 })
	ctx := context.Background()
	spec := jobs.Spec{Kind: kindTest, Owner: ownerA, Expected: time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	var last string
	for range b.N {
		j, err := e.Submit(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		last = j.ID
	}
	for st := e.Stats(); st.Queued+st.Running > 0; st = e.Stats() {
		time.Sleep(100 * time.Microsecond)
	}
	mustTerminal(b, e, ownerA, last)
}

// TestDrain: Drain refuses new jobs at once and returns when the running
// ones have finished; with a deadline it reports what was left, and Close
// then fails those with job_interrupted.
func TestDrain(t *testing.T) {
	release := make(chan struct{})
	work := func(ctx context.Context, _ jobs.Job, _ jobs.Progress) ([]byte, error) {
		select {
		case <-release:
			return []byte(`{}`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e := newEngine(t, work)
	a := mustSubmit(t, e, "o", time.Second)
	b := mustSubmit(t, e, "o", time.Second)
	done := make(chan error, 1)
	go func() { done <- e.Drain(context.Background()) }()
	// Refused while draining.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := e.Submit(context.Background(), jobs.Spec{Kind: kindTest, Owner: "o"}); errors.Is(err, jobs.ErrClosed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Submit still accepted during Drain")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Drain returned %v with jobs running", err)
	case <-time.After(30 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if j := mustTerminal(t, e, "o", id); j.Status != jobs.StatusSucceeded {
			t.Errorf("%s: %s", id, j.Status)
		}
	}
}

// TestMaxActivePerOwner: one owner's unfinished jobs are bounded; finishing
// one frees a place; other owners are not affected.
func TestMaxActivePerOwner(t *testing.T) {
	e := newEngine(t, blockUntilDone, func(c *jobs.Config) { c.MaxActivePerOwner = 2 })
	first := mustSubmit(t, e, "a", time.Minute)
	mustSubmit(t, e, "a", time.Minute)
	if _, err := e.Submit(context.Background(), jobs.Spec{Kind: kindTest, Owner: "a", Expected: time.Minute}); !errors.Is(err, jobs.ErrOwnerBusy) {
		t.Fatalf("third job of owner a: %v, want ErrOwnerBusy", err)
	}
	mustSubmit(t, e, "b", time.Minute)
	if _, err := e.Cancel(context.Background(), "a", first.ID); err != nil {
		t.Fatal(err)
	}
	mustSubmit(t, e, "a", time.Minute)
}
