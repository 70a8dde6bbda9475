package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// Queues the engine's River jobs run in.
const (
	// QueueJobs runs the steps of jobs.
	QueueJobs = "jobs"
	// QueueMaintenance runs the watchdog, the janitor and recovery.
	QueueMaintenance = "maintenance"
)

// runArgs is the River job that drives one job from its start to its end,
// a step at a time, snoozing in between so that a waiting job holds no
// worker.
type runArgs struct {
	JobID string `json:"job_id"`
}

func (runArgs) Kind() string { return "accepted_job" }

// runOpts are the insert options of a runArgs job: River gives up on it
// after Config.MaxAttempts errors (snoozes between steps are not errors),
// and runs its due steps by priority (1 first; see Engine.priority).
func (e *Engine) runOpts(priority int) *river.InsertOpts {
	return &river.InsertOpts{Queue: QueueJobs, MaxAttempts: e.cfg.MaxAttempts, Priority: priority}
}

type runWorker struct {
	river.WorkerDefaults[runArgs]
	e *Engine
}

// Work advances the job: steps due now are run at once, a short wait is
// slept through, a longer one snoozed (which River does not count as an
// attempt). A job with many steps due (one that fell behind) runs them for
// about RunSlice, then yields with a snooze of 0, so River picks the next
// job by priority again and a newcomer's steps are not queued behind a
// heavy owner's catching up.
func (w *runWorker) Work(ctx context.Context, rj *river.Job[runArgs]) error {
	e := w.e
	start := time.Now()
	for {
		wait, err := e.advance(ctx, rj.Args.JobID)
		switch {
		case err != nil:
			return fmt.Errorf("advancing %s: %w", rj.Args.JobID, err)
		case wait < 0:
			return nil
		case wait == 0 && time.Since(start) >= RunSlice:
			return river.JobSnooze(0)
		case wait == 0:
			continue
		case wait <= e.cfg.InlineWait:
			select {
			case <-e.clk.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return river.JobSnooze(min(wait, e.cfg.MaxSnooze))
		}
	}
}

// Timeout bounds one Work call: a handful of steps, each a transaction.
// It must stay below River's RescueStuckJobsAfter, after which another
// worker takes over a job whose worker looks dead.
func (w *runWorker) Timeout(*river.Job[runArgs]) time.Duration { return RunTimeout }

// RunTimeout bounds one run of a job's River job.
const RunTimeout = 10 * time.Second

// RunSlice is about the longest one run holds its worker while steps are
// due (wall-clock time: it shares the worker, whatever the jobs' clock).
const RunSlice = 50 * time.Millisecond

// sweepArgs runs Sweep; recoverArgs runs Recover. Periodic, on the leader.
type sweepArgs struct{}

func (sweepArgs) Kind() string { return "accepted_sweep" }

type sweepWorker struct {
	river.WorkerDefaults[sweepArgs]
	e *Engine
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[sweepArgs]) error {
	return w.e.Sweep(ctx)
}

type recoverArgs struct{}

func (recoverArgs) Kind() string { return "accepted_recover" }

type recoverWorker struct {
	river.WorkerDefaults[recoverArgs]
	e *Engine
}

func (w *recoverWorker) Work(ctx context.Context, _ *river.Job[recoverArgs]) error {
	return w.e.requeueOrphans(ctx)
}

// RecoverEvery is how often the leader looks for jobs whose River job is
// gone.
const RecoverEvery = 30 * time.Second

// Register adds the engine's workers to workers.
func (e *Engine) Register(workers *river.Workers) error {
	for _, err := range []error{
		river.AddWorkerSafely(workers, &runWorker{e: e}),
		river.AddWorkerSafely(workers, &sweepWorker{e: e}),
		river.AddWorkerSafely(workers, &recoverWorker{e: e}),
	} {
		if err != nil {
			return fmt.Errorf("jobs: registering River workers: %w", err)
		}
	}
	return nil
}

// PeriodicJobs are the engine's maintenance jobs, which River's leader
// inserts: the watchdog and janitor every SweepEvery, recovery every
// RecoverEvery. Neither runs at start: a restarted replica gives its jobs a
// chance to be picked up first.
func (e *Engine) PeriodicJobs() []*river.PeriodicJob {
	maint := &river.InsertOpts{Queue: QueueMaintenance, MaxAttempts: 1}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(e.cfg.SweepEvery),
			func() (river.JobArgs, *river.InsertOpts) { return sweepArgs{}, maint },
			&river.PeriodicJobOpts{ID: "accepted_sweep"}),
		river.NewPeriodicJob(river.PeriodicInterval(RecoverEvery),
			func() (river.JobArgs, *river.InsertOpts) { return recoverArgs{}, maint },
			&river.PeriodicJobOpts{ID: "accepted_recover"}),
	}
}
