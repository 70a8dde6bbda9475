package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Work is what a kind of job does: the message of each step its owner
// sees, and the output once every step is done.
type Work struct {
	Message func(j Job, step int) string
	Result  func(ctx context.Context, j Job) ([]byte, error)
}

// Spec is what a caller asks for in Submit.
type Spec struct {
	Kind  Kind
	Owner string
	// Network is the owner's network (the /24 or /64 its key was minted
	// from); its jobs share MaxUnfinishedPerNetwork. "" has no share.
	Network string
	Input   []byte
	Plan    Plan
	// Then runs in the transaction that creates the job, so what it writes
	// (an idempotency record naming the job) commits with the job or not at
	// all. It may be nil.
	Then func(ctx context.Context, tx sqldb.Tx, j Job) error
	// Trace is the traceparent of the request that asks for the job, kept
	// as Job.Trace.
	Trace string
}

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	DB     sqldb.DB      // required
	Clock  clock.Clock   // default clock.Real()
	Logger *slog.Logger  // default discards
	Kinds  map[Kind]Work // required, at least one kind
	// QueueSize bounds the unfinished jobs of every owner together (default
	// 10000); beyond it Submit answers ErrQueueFull. Each replica checks a
	// count at most CountEvery old, so replicas together may overshoot by
	// what they accept in that time.
	QueueSize int
	// MaxUnfinishedPerOwner bounds one owner's unfinished jobs (default
	// 1000), exactly, across replicas: beyond it Submit answers
	// ErrOwnerBusy.
	MaxUnfinishedPerOwner int
	// MaxUnfinishedPerNetwork bounds the unfinished jobs of one network's
	// owners together, the same way (default DefaultNetworkShare): beyond
	// it Submit answers ErrNetworkBusy. See shares.go.
	MaxUnfinishedPerNetwork int
	// GuaranteedPerOwner and GuaranteedPerNetwork: an owner with fewer
	// unfinished jobs than GuaranteedPerOwner, whose network has fewer than
	// GuaranteedPerNetwork, is admitted even when the queue is full, into
	// Reserve more jobs (defaults 5, 4 × GuaranteedPerOwner and a tenth of
	// QueueSize). They also rank River priorities.
	GuaranteedPerOwner, GuaranteedPerNetwork, Reserve int
	// Workers is how many jobs run a step at once on this replica (River's
	// MaxWorkers), used to estimate how long the queue takes to drain.
	Workers     int
	Retention   time.Duration // how long finished jobs stay readable (default 24h)
	StallFactor float64       // silence allowed as a multiple of Expected (default 2), never under StallFloor
	// SweepEvery is the period of the watchdog and the janitor (default 1s).
	SweepEvery time.Duration
	// TombstoneFor is how long an expired job answers ErrGone before it is
	// forgotten (default 7 days).
	TombstoneFor time.Duration
	// MaxSnooze is the longest a job waits for its next step without being
	// looked at again (default 2s). River runs a job snoozed for more than
	// 5 s through its scheduler, which can add up to 5 s more; and a fake
	// clock's time only moves when a test says so.
	MaxSnooze time.Duration
	// InlineWait is the longest wait for a step that the worker sleeps
	// through instead of snoozing (default 20ms): a snooze costs a round
	// trip through the queue.
	InlineWait time.Duration
	// OnFinish runs in the transaction that ends a job (succeeded, failed
	// or canceled), so what it writes (a webhook to send) commits with the
	// job's end.
	OnFinish []func(ctx context.Context, tx sqldb.Tx, j Job) error
	// RescueGrace is how long River takes to hand a job whose worker died
	// with its replica to another worker: its RescueStuckJobsAfter, plus
	// the period of its rescuer (30 s) and a leader's election. The
	// dead-man's switch waits at least that long for a job River holds as
	// running (default 2 minutes).
	RescueGrace time.Duration
	// MaxAttempts is how many errors a job's River job may meet (a
	// database that did not answer, say) before River gives up on it
	// (default 10); snoozes between steps do not count. A job River gave
	// up on is requeued by Recover.
	MaxAttempts int
}

// Defaults applied by New.
const (
	DefaultQueueSize             = 10000
	DefaultMaxUnfinishedPerOwner = 1000
	DefaultWorkers               = 256
	DefaultRetention             = 24 * time.Hour
	DefaultStallFactor           = 2.0
	DefaultSweepEvery            = time.Second
	DefaultTombstoneFor          = 7 * 24 * time.Hour
	DefaultMaxSnooze             = 2 * time.Second
	DefaultInlineWait            = 20 * time.Millisecond
	// StallFloor keeps the dead-man's switch from firing on very short
	// jobs between two sweeps.
	StallFloor = time.Second
	// MaxMessageLen bounds Job.Message.
	MaxMessageLen = 200
	// CountEvery is how old the count behind QueueSize may be.
	CountEvery = 100 * time.Millisecond
	// Channel is the notification channel of job changes; the payload is
	// "<job id> <version>".
	Channel = "accepted_jobs"
)

var errPanicked = errors.New("work panicked")

// Stats is a snapshot for health checks and load shedding.
type Stats struct {
	Queued, Running int // accepted and not started; started and not finished (every replica)
	Workers         int
	QueueSize       int
}

// Engine runs jobs on River, on the database it keeps them in: a job's
// row, its River job and what belongs with it commit together, any replica
// answers for any job, and a restart loses nothing.
type Engine struct {
	db   sqldb.DB
	clk  clock.Clock
	log  *slog.Logger
	cfg  Config
	work map[Kind]Work

	draining atomic.Bool
	started  time.Time // the dead-man's switch gives jobs a full window after a start

	countMu  sync.Mutex
	counted  time.Time
	stats    Stats
	pending  int // accepted here since stats was counted
	reserved int // admitted here and not yet committed or refused

	avgRun atomic.Int64 // moving average of observed run times, ns

	hub   *hub
	cache *jobCache
}

// New checks cfg and returns an engine. Register its River workers and
// periodic jobs on the queue, then Start it.
func New(cfg Config) (*Engine, error) {
	if cfg.DB == nil {
		return nil, errors.New("jobs: Config.DB is nil")
	}
	if len(cfg.Kinds) == 0 {
		return nil, errors.New("jobs: Config.Kinds is empty")
	}
	for k, w := range cfg.Kinds {
		if w.Message == nil || w.Result == nil {
			return nil, fmt.Errorf("jobs: Config.Kinds[%q] lacks Message or Result", k)
		}
	}
	if cfg.QueueSize < 0 || cfg.MaxUnfinishedPerOwner < 0 || cfg.MaxUnfinishedPerNetwork < 0 || cfg.GuaranteedPerOwner < 0 || cfg.GuaranteedPerNetwork < 0 || cfg.Reserve < 0 || cfg.Retention < 0 || cfg.StallFactor < 0 || cfg.SweepEvery < 0 || cfg.Workers < 0 ||
		cfg.TombstoneFor < 0 || cfg.MaxSnooze < 0 || cfg.InlineWait < 0 || cfg.MaxAttempts < 0 {
		return nil, errors.New("jobs: Config has a negative size, duration or factor")
	}
	cfg.Clock = cmpOr[clock.Clock](cfg.Clock, clock.Real())
	cfg.QueueSize = cmpOr(cfg.QueueSize, DefaultQueueSize)
	cfg.MaxUnfinishedPerOwner = cmpOr(cfg.MaxUnfinishedPerOwner, DefaultMaxUnfinishedPerOwner)
	cfg.MaxUnfinishedPerNetwork = cmpOr(cfg.MaxUnfinishedPerNetwork, DefaultNetworkShare(cfg.QueueSize))
	cfg.GuaranteedPerOwner = cmpOr(cfg.GuaranteedPerOwner, DefaultGuaranteedPerOwner)
	cfg.GuaranteedPerNetwork = cmpOr(cfg.GuaranteedPerNetwork, 4*cfg.GuaranteedPerOwner)
	cfg.Reserve = cmpOr(cfg.Reserve, cfg.QueueSize/reserveDivisor)
	cfg.Workers = cmpOr(cfg.Workers, DefaultWorkers)
	cfg.Retention = cmpOr(cfg.Retention, DefaultRetention)
	cfg.StallFactor = cmpOr(cfg.StallFactor, DefaultStallFactor)
	cfg.SweepEvery = cmpOr(cfg.SweepEvery, DefaultSweepEvery)
	cfg.TombstoneFor = cmpOr(cfg.TombstoneFor, DefaultTombstoneFor)
	cfg.MaxSnooze = cmpOr(cfg.MaxSnooze, DefaultMaxSnooze)
	cfg.InlineWait = cmpOr(cfg.InlineWait, DefaultInlineWait)
	cfg.MaxAttempts = cmpOr(cfg.MaxAttempts, 10)
	cfg.RescueGrace = cmpOr(cfg.RescueGrace, 2*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{db: cfg.DB, clk: cfg.Clock, log: cfg.Logger, cfg: cfg, work: maps.Clone(cfg.Kinds)}
	e.hub = newHub(e)
	e.cache = newJobCache(cacheSize, cfg.DB.Dialect() == sqldb.Postgres)
	return e, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Start follows job changes for Watch (until ctx ends or Close) and
// recovers what a stop left behind: counts of unfinished jobs per owner are
// rebuilt, and unfinished jobs whose River job is gone get a new one.
func (e *Engine) Start(ctx context.Context) error {
	e.started = e.clk.Now()
	if err := e.hub.start(ctx); err != nil {
		return err
	}
	return e.Recover(ctx)
}

// Drain stops accepting jobs on this replica (Submit answers ErrClosed);
// what was accepted stays in the database for any replica to run.
func (e *Engine) Drain() { e.draining.Store(true) }

// Close ends every Watch.
func (e *Engine) Close(ctx context.Context) error {
	e.Drain()
	return e.hub.close(ctx)
}

// Submit accepts a job: its row, a River job to run it, a slot in its
// owner's share and what spec.Then writes, in one transaction. It answers
// ErrClosed while draining, ErrQueueFull when the queue is full,
// ErrOwnerBusy at the owner's cap and ErrUnknownKind for a kind without
// Work; then nothing is created.
func (e *Engine) Submit(ctx context.Context, s Spec) (Job, error) {
	if _, ok := e.work[s.Kind]; !ok {
		return Job{}, fmt.Errorf("jobs: submit %q: %w", s.Kind, ErrUnknownKind)
	}
	if s.Owner == "" {
		return Job{}, errors.New("jobs: submit: spec has no owner")
	}
	if s.Plan.Steps < 1 || s.Plan.Interval < 0 || s.Plan.FailAt > s.Plan.Steps {
		return Job{}, fmt.Errorf("jobs: submit: a plan needs at least one step, no negative interval and FailAt ≤ Steps: %+v", s.Plan)
	}
	if e.draining.Load() {
		return Job{}, ErrClosed
	}
	overflow, err := e.admit(ctx)
	if err != nil {
		return Job{}, err
	}
	committed := false
	defer func() {
		e.countMu.Lock()
		e.reserved--
		if committed {
			e.pending++
		}
		e.countMu.Unlock()
	}()
	now := e.clk.Now()
	j := Job{
		ID: NewID(), Kind: s.Kind, Owner: s.Owner, Network: s.Network, Status: StatusQueued,
		CreatedAt: now, UpdatedAt: now, Expected: s.Plan.Expected(),
		Input: cloneBytes(s.Input), Version: 1, Plan: s.Plan, Trace: s.Trace,
	}
	err = e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		ownerN, networkN, takeNetwork, err := e.takeSlots(ctx, tx, j.Owner, j.Network, overflow)
		if err != nil {
			return err
		}
		res, err := tx.Queue().Insert(ctx, runArgs{JobID: j.ID}, e.runOpts(e.priority(ownerN, networkN)))
		if err != nil {
			return fmt.Errorf("jobs: queueing %s: %w", j.ID, err)
		}
		if err := insert(ctx, tx, j, res.Job.ID); err != nil {
			return err
		}
		if s.Then != nil {
			if err := s.Then(ctx, tx, j); err != nil {
				return err
			}
		}
		return takeNetwork() // last: see takeSlots
	})
	if err != nil {
		var share *ShareError
		if errors.As(err, &share) {
			return Job{}, share
		}
		return Job{}, fmt.Errorf("jobs: submit: %w", err)
	}
	committed = true
	return j, nil
}

// admit refuses a job when the queue and its reserve are full, by a count
// of unfinished jobs at most CountEvery old plus what this replica
// accepted since and what it is accepting now; overflow says the queue is
// full and only light owners may use the reserve (see shares.go). An
// admitted job holds a reservation until its Submit ends, so concurrent
// Submits on one replica cannot all pass on the same count.
func (e *Engine) admit(ctx context.Context) (overflow bool, err error) {
	if _, _, err := e.counts(ctx); err != nil {
		return false, err
	}
	e.countMu.Lock()
	defer e.countMu.Unlock()
	n := e.stats.Queued + e.stats.Running + e.pending + e.reserved
	if n >= e.cfg.QueueSize+e.cfg.Reserve {
		return false, &ShareError{Err: ErrQueueFull, Limit: e.cfg.QueueSize}
	}
	e.reserved++
	return n >= e.cfg.QueueSize, nil
}

// counts answers the cached counts, refreshing them when older than
// CountEvery.
func (e *Engine) counts(ctx context.Context) (Stats, int, error) {
	e.countMu.Lock()
	defer e.countMu.Unlock()
	if time.Since(e.counted) < CountEvery {
		return e.stats, e.pending, nil
	}
	rows, err := e.db.Read().Query(ctx, `SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'processing') GROUP BY status`)
	if err != nil {
		return Stats{}, 0, fmt.Errorf("jobs: counting unfinished jobs: %w", err)
	}
	defer rows.Close()
	st := Stats{Workers: e.cfg.Workers, QueueSize: e.cfg.QueueSize}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return Stats{}, 0, fmt.Errorf("jobs: counting unfinished jobs: %w", err)
		}
		if Status(status) == StatusQueued {
			st.Queued = n
		} else {
			st.Running = n
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, 0, fmt.Errorf("jobs: counting unfinished jobs: %w", err)
	}
	e.stats, e.pending, e.counted = st, 0, time.Now()
	return st, 0, nil
}

// Stats answers how many jobs are queued and running, on every replica.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	st, _, err := e.counts(ctx)
	return st, err
}

// Get answers owner's job. Another owner's job is ErrNotFound, never a
// different error, so ids cannot be probed; a job past its retention is
// ErrGone even before the janitor has removed it. The job's Input and
// Output bytes may be shared with the engine's cache: read them, never
// write into them.
func (e *Engine) Get(ctx context.Context, owner, id string) (Job, error) {
	j, tomb, err := e.read(ctx, id)
	switch {
	case err != nil:
		return Job{}, err
	case j.Owner != owner:
		return Job{}, ErrNotFound
	case tomb, j.Status.Terminal() && !e.clk.Now().Before(j.ExpiresAt):
		return Job{}, ErrGone
	}
	return j, nil
}

// cacheSize is how many job snapshots the engine keeps for Get.
const cacheSize = 4096

// read answers job id from the cache or, failing that, the database.
func (e *Engine) read(ctx context.Context, id string) (j Job, tomb bool, err error) {
	j, token, ok := e.cache.get(id)
	if ok && !(j.Status.Terminal() && !e.clk.Now().Before(j.ExpiresAt)) {
		return j, false, nil
	}
	j, _, tomb, err = e.load(ctx, nil, id)
	if err == nil && !tomb {
		e.cache.put(j, token)
	}
	return j, tomb, err
}

// Cancel ends owner's job as canceled and cancels its River job. For a job
// already terminal it answers the job as it is, with ErrFinished.
func (e *Engine) Cancel(ctx context.Context, owner, id string) (Job, error) {
	var out Job
	err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		j, riverID, tomb, err := e.load(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case j.Owner != owner:
			return ErrNotFound
		case tomb, j.Status.Terminal() && !e.clk.Now().Before(j.ExpiresAt):
			return ErrGone
		case j.Status.Terminal():
			out = j
			return ErrFinished
		}
		j.Failure = &Failure{Code: CodeCanceled, Detail: "The job was canceled at its owner's request."}
		if out, err = e.finish(ctx, tx, j, StatusCanceled); err != nil {
			return err
		}
		return tx.Queue().Cancel(ctx, riverID)
	})
	if errors.Is(err, ErrFinished) {
		return out, ErrFinished
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrGone) {
			return Job{}, err
		}
		return Job{}, fmt.Errorf("jobs: cancel %s: %w", id, err)
	}
	return out, nil
}

// QueueRetryAfter is a hint for Retry-After on a 503: roughly how long the
// current backlog takes to drain (queued jobs × average observed run time
// ÷ workers), in whole seconds between 1s and 60s.
func (e *Engine) QueueRetryAfter() time.Duration {
	avg := time.Duration(e.avgRun.Load())
	if avg <= 0 {
		avg = time.Second
	}
	st, _, err := e.counts(context.Background())
	if err != nil {
		return time.Minute
	}
	d := time.Duration(float64(avg) * float64(st.Queued) / float64(e.cfg.Workers))
	d = (d + time.Second - 1).Truncate(time.Second)
	return min(max(d, time.Second), time.Minute)
}

func (e *Engine) observeRun(d time.Duration) {
	for {
		old := e.avgRun.Load()
		next := int64(d)
		if old > 0 {
			next = old + (int64(d)-old)/8
		}
		if e.avgRun.CompareAndSwap(old, next) {
			return
		}
	}
}

// change raises j's version and stamps it, ready to save and announce.
func (e *Engine) change(j *Job, now time.Time) {
	j.Version++
	j.UpdatedAt = now
}

// announce tells every replica's watchers that j changed, once tx commits.
func (e *Engine) announce(tx sqldb.Tx, j Job) error {
	tx.AfterCommit(func() { e.cache.changed(j.ID, j.Version) })
	return tx.Notify(Channel, j.ID+" "+strconv.FormatInt(j.Version, 10))
}

// finish moves j to a terminal status in tx: stamps, saves, frees its
// owner's slot, runs OnFinish and announces it.
func (e *Engine) finish(ctx context.Context, tx sqldb.Tx, j Job, next Status) (Job, error) {
	if !j.Status.CanMoveTo(next) {
		return j, fmt.Errorf("jobs: %s cannot move from %s to %s", j.ID, j.Status, next)
	}
	now := e.clk.Now()
	e.change(&j, now)
	j.Status, j.FinishedAt, j.ExpiresAt, j.NextAt = next, now, now.Add(e.cfg.Retention), time.Time{}
	if next == StatusSucceeded {
		j.Percent = 100
	}
	if err := save(ctx, tx, j, false); err != nil {
		return j, err
	}
	if err := giveSlots(ctx, tx, j.Owner, j.Network); err != nil {
		return j, err
	}
	for _, f := range e.cfg.OnFinish {
		if err := f(ctx, tx, j); err != nil {
			return j, fmt.Errorf("jobs: finishing %s: %w", j.ID, err)
		}
	}
	if !j.StartedAt.IsZero() {
		start := j.StartedAt
		tx.AfterCommit(func() { e.observeRun(now.Sub(start)) })
	}
	return j, e.announce(tx, j)
}

// advance does what is due for job id, in one transaction: start it, run
// its next step, or end it. It answers how long until the next step is due,
// or a negative duration when no River job needs to drive it any more.
func (e *Engine) advance(ctx context.Context, id string) (time.Duration, error) {
	wait := time.Duration(-1)
	err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		j, _, tomb, err := e.load(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil // forgotten: nothing to drive
		}
		if err != nil {
			return err
		}
		if tomb || j.Status.Terminal() || j.Plan.Silent && j.Step >= 1 {
			return nil
		}
		now := e.clk.Now()
		if j.Status == StatusQueued {
			e.change(&j, now)
			j.Status, j.StartedAt, j.LastBeat, j.NextAt = StatusProcessing, now, now, now.Add(j.Plan.Interval)
			if j.Plan.FailAt == 0 {
				return e.failAtPlan(ctx, tx, j)
			}
			wait = j.Plan.Interval
			if err := save(ctx, tx, j, true); err != nil {
				return err
			}
			return e.announce(tx, j)
		}
		if now.Before(j.NextAt) {
			wait = j.NextAt.Sub(now)
			return nil
		}
		// The step is due: report it.
		e.change(&j, now)
		msg, err := e.call(ctx, j, func() (string, error) { return e.work[j.Kind].Message(j, j.Step), nil })
		if err != nil {
			return e.fail(ctx, tx, j, err)
		}
		j.Step++
		// 100 is kept for success: a processing job at 100% would tell a
		// poller it is done when it is not.
		j.Percent = max(j.Percent, min(j.Step*100/j.Plan.Steps, 99))
		j.Message, j.LastBeat = truncate(msg, MaxMessageLen), now
		j.NextAt = j.NextAt.Add(j.Plan.Interval)
		switch {
		case j.Plan.FailAt == j.Step:
			return e.failAtPlan(ctx, tx, j)
		case j.Plan.Silent:
			// The worker goes quiet: nothing drives the job from here, and
			// the dead-man's switch will end it (even when this was its
			// last step: a silent plan never succeeds).
			if err := save(ctx, tx, j, false); err != nil {
				return err
			}
			return e.announce(tx, j)
		case j.Step >= j.Plan.Steps:
			out, err := e.call(ctx, j, func() (string, error) {
				b, err := e.work[j.Kind].Result(ctx, j)
				return string(b), err
			})
			if err != nil {
				return e.fail(ctx, tx, j, err)
			}
			j.Output = []byte(out)
			_, err = e.finish(ctx, tx, j, StatusSucceeded)
			return err
		}
		wait = max(j.NextAt.Sub(now), 0)
		if err := save(ctx, tx, j, true); err != nil {
			return err
		}
		return e.announce(tx, j)
	})
	return wait, err
}

// failAtPlan ends j the way its plan says: with its failure, or with a
// crash of the worker.
func (e *Engine) failAtPlan(ctx context.Context, tx sqldb.Tx, j Job) error {
	if j.Plan.Failure != nil {
		j.Failure = &Failure{Code: j.Plan.Failure.Code, Detail: j.Plan.Failure.Detail}
		_, err := e.finish(ctx, tx, j, StatusFailed)
		return err
	}
	_, err := e.call(ctx, j, func() (string, error) {
		panic(fmt.Sprintf("simulated crash of the worker of %s after %d of %d steps, as its plan asked", j.ID, j.Step, j.Plan.Steps))
	})
	return e.fail(ctx, tx, j, err)
}

// fail ends j with what Work's error says: a *Failure with its code, any
// other error (logged, not shown) as internal_error.
func (e *Engine) fail(ctx context.Context, tx sqldb.Tx, j Job, err error) error {
	var f *Failure
	if errors.As(err, &f) && f.Code != "" {
		j.Failure = &Failure{Code: f.Code, Detail: f.Detail}
	} else {
		if !errors.Is(err, errPanicked) {
			e.log.Error("job work failed", "job", j.ID, "kind", j.Kind, "err", err)
		}
		j.Failure = &Failure{Code: CodeInternal, Detail: "The job failed because of an internal error."}
	}
	_, err = e.finish(ctx, tx, j, StatusFailed)
	return err
}

// call runs a kind's code, turning a panic into an error so one bad job
// cannot take the server down.
func (e *Engine) call(ctx context.Context, j Job, f func() (string, error)) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.ErrorContext(ctx, "job work panicked", "job", j.ID, "kind", j.Kind, "panic", r, "stack", string(debug.Stack()))
			out, err = "", errPanicked
		}
	}()
	return f()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // don't cut a UTF-8 sequence in half
		n--
	}
	return s[:n]
}

// Sweep makes one pass of the watchdog, which fails processing jobs whose
// worker has been silent longer than StallFactor × Expected (at least
// StallFloor, and counted from this replica's start at the earliest, so a
// restart is not a stall) with job_stalled, and of the janitor, which
// turns jobs past their retention into tombstones and forgets old ones.
func (e *Engine) Sweep(ctx context.Context) error {
	return errors.Join(e.watchdog(ctx), e.janitor(ctx))
}

// stallBatch bounds one pass of the watchdog and the janitor.
const stallBatch = 500

func (e *Engine) window(j Job) time.Duration {
	return max(time.Duration(e.cfg.StallFactor*float64(j.Expected)), StallFloor)
}

func (e *Engine) watchdog(ctx context.Context) error {
	now := e.clk.Now()
	// Only the shortest window can be put in SQL; each candidate is then
	// checked against its own.
	// held: a River job that should drive the job (driven: not one whose
	// worker went quiet on purpose) and that River will still run.
	rows, err := e.db.Read().Query(ctx, `SELECT j.id, j.last_beat, j.expected, j.driven = 1 AND r.state IN `+riverLive+`
		FROM jobs j LEFT JOIN river_job r ON r.id = j.river_id
		WHERE j.status = 'processing' AND j.last_beat < ? ORDER BY j.last_beat LIMIT ?`,
		sqldb.Nanos(now.Add(-StallFloor)), stallBatch)
	if err != nil {
		return fmt.Errorf("watchdog: listing processing jobs: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		var beat, expected int64
		var running *bool
		if err := rows.Scan(&id, &beat, &expected, &running); err != nil {
			_ = rows.Close()
			return fmt.Errorf("watchdog: %w", err)
		}
		if e.stalled(Job{LastBeat: sqldb.Time(beat), Expected: time.Duration(expected)}, running != nil && *running, now) {
			ids = append(ids, id)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := e.failStalled(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// riverLive are the states of a River job that River will still run.
const riverLive = `('running', 'retryable', 'available', 'scheduled', 'pending')`

// stalled reports whether j's worker has been silent past its window,
// counting from this replica's start at the earliest. While River still
// holds the job's River job, the job is given at least RescueGrace: a run
// that reads running may have lost its worker with its replica (River
// records a finished run a moment after the work returns), and River's
// rescuer hands it on, to be retried, within that time.
func (e *Engine) stalled(j Job, riverRunning bool, now time.Time) bool {
	since := j.LastBeat
	if e.started.After(since) {
		since = e.started
	}
	window := e.window(j)
	if riverRunning {
		window = max(window, e.cfg.RescueGrace)
	}
	return since.Add(window).Before(now)
}

func (e *Engine) failStalled(ctx context.Context, id string) error {
	var stalled Job
	err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		j, riverID, tomb, err := e.load(ctx, tx, id)
		if err != nil || tomb || j.Status != StatusProcessing {
			return err
		}
		var running bool
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) > 0 FROM river_job r JOIN jobs j ON j.river_id = r.id
			WHERE j.id = ? AND j.driven = 1 AND r.state IN `+riverLive, id).Scan(&running); err != nil {
			return err
		}
		now := e.clk.Now()
		if !e.stalled(j, running, now) { // it beat, or River took it up, since the listing
			return nil
		}
		j.Failure = &Failure{Code: CodeStalled, Detail: fmt.Sprintf(
			"The job reported no progress for %s (expected run time %s) and was stopped.",
			now.Sub(j.LastBeat).Round(time.Millisecond), j.Expected.Round(time.Millisecond))}
		if stalled, err = e.finish(ctx, tx, j, StatusFailed); err != nil {
			return err
		}
		return tx.Queue().Cancel(ctx, riverID)
	})
	if err != nil {
		return fmt.Errorf("watchdog: failing %s: %w", id, err)
	}
	if stalled.ID != "" {
		e.log.Warn("job stalled, failed by the watchdog", "job", id, "kind", stalled.Kind, "last_beat", stalled.LastBeat)
	}
	return nil
}

// janitor drops the input and output of jobs past their retention,
// keeping a tombstone (so the monitor answers 410), and forgets tombstones
// after TombstoneFor.
func (e *Engine) janitor(ctx context.Context) error {
	now := e.clk.Now()
	return e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		// A bounded batch per pass, oldest first, keeps each transaction short.
		if _, err := tx.Exec(ctx, `UPDATE jobs SET tombstone = 1, input = NULL, output = NULL, message = '', failure_detail = ''
			WHERE id IN (SELECT id FROM jobs WHERE expires_at > 0 AND expires_at <= ? AND tombstone = 0 ORDER BY expires_at LIMIT ?)`,
			sqldb.Nanos(now), stallBatch); err != nil {
			return fmt.Errorf("janitor: expiring jobs: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE tombstone = 1 AND expires_at <= ? ORDER BY expires_at LIMIT ?)`,
			sqldb.Nanos(now.Add(-e.cfg.TombstoneFor)), stallBatch); err != nil {
			return fmt.Errorf("janitor: forgetting tombstones: %w", err)
		}
		return e.forgetIdleShares(ctx, tx)
	})
}

// Recover puts back what a crash or a stop left behind: an owner's count
// of unfinished jobs that disagrees with the jobs is rebuilt, an unfinished
// job whose River job is gone (or ended) while it should drive the job gets
// a new one, and a job whose River job River gave up on (discarded, after
// MaxAttempts errors: a worker that kept dying, a database that kept
// failing) is failed with job_interrupted rather than retried forever.
// Start runs it; a periodic job runs it again on the leader.
func (e *Engine) Recover(ctx context.Context) error {
	if err := e.recount(ctx); err != nil {
		return err
	}
	if err := e.recountNetworks(ctx); err != nil {
		return err
	}
	return e.requeueOrphans(ctx)
}

// recount fixes the owners whose count of unfinished jobs disagrees with
// the jobs. Each owner is fixed in a transaction that first locks its row,
// so that on PostgreSQL the count (a statement of its own, with a snapshot
// taken after the lock) includes every Submit that committed before, and
// no Submit of that owner commits meanwhile.
func (e *Engine) recount(ctx context.Context) error {
	rows, err := e.db.Read().Query(ctx, `SELECT o.owner FROM (
			SELECT owner FROM job_owners UNION SELECT DISTINCT owner FROM jobs WHERE status IN ('queued', 'processing')
		) o LEFT JOIN job_owners c ON c.owner = o.owner
		WHERE COALESCE(c.unfinished, -1) <> (SELECT COUNT(*) FROM jobs WHERE jobs.owner = o.owner AND jobs.status IN ('queued', 'processing'))`)
	if err != nil {
		return fmt.Errorf("jobs: checking per-owner counts: %w", err)
	}
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			_ = rows.Close()
			return fmt.Errorf("jobs: checking per-owner counts: %w", err)
		}
		owners = append(owners, o)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("jobs: checking per-owner counts: %w", err)
	}
	for _, o := range owners {
		err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO job_owners (owner, unfinished) VALUES (?, 0) ON CONFLICT (owner) DO NOTHING`, o); err != nil {
				return err
			}
			lock := `SELECT unfinished FROM job_owners WHERE owner = ?`
			if e.db.Dialect() == sqldb.Postgres {
				lock += ` FOR UPDATE`
			}
			var was int
			if err := tx.QueryRow(ctx, lock, o).Scan(&was); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'processing')`, o).Scan(&n); err != nil {
				return err
			}
			if n != was {
				e.log.Warn("jobs: an owner's count of unfinished jobs was wrong; fixed", "owner", o, "was", was, "is", n)
			}
			_, err := tx.Exec(ctx, `UPDATE job_owners SET unfinished = ? WHERE owner = ?`, n, o)
			return err
		})
		if err != nil {
			return fmt.Errorf("jobs: recounting %s: %w", o, err)
		}
	}
	return nil
}

func (e *Engine) requeueOrphans(ctx context.Context) error {
	rows, err := e.db.Read().Query(ctx, `SELECT j.id, j.owner, j.network, COALESCE(CAST(r.state AS TEXT), '') FROM jobs j LEFT JOIN river_job r ON r.id = j.river_id
		WHERE j.status IN ('queued', 'processing') AND j.driven = 1
		  AND (r.id IS NULL OR r.state IN ('completed', 'discarded', 'cancelled'))
		LIMIT ?`, stallBatch)
	if err != nil {
		return fmt.Errorf("jobs: listing orphaned jobs: %w", err)
	}
	type orphan struct{ id, owner, network, riverState string }
	var orphans []orphan
	for rows.Next() {
		var o orphan
		if err := rows.Scan(&o.id, &o.owner, &o.network, &o.riverState); err != nil {
			_ = rows.Close()
			return fmt.Errorf("jobs: listing orphaned jobs: %w", err)
		}
		orphans = append(orphans, o)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("jobs: listing orphaned jobs: %w", err)
	}
	for _, o := range orphans {
		if o.riverState == "discarded" {
			if err := e.interrupt(ctx, o.id); err != nil {
				return err
			}
			continue
		}
		err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
			// Ranked by its owner's load now, as at Submit.
			ownerN, networkN, err := e.loadOf(ctx, tx, o.owner, o.network)
			if err != nil {
				return err
			}
			res, err := tx.Queue().Insert(ctx, runArgs{JobID: o.id}, e.runOpts(e.priority(ownerN, networkN)))
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE jobs SET river_id = ? WHERE id = ? AND status IN ('queued', 'processing')`, res.Job.ID, o.id)
			return err
		})
		if err != nil {
			return fmt.Errorf("jobs: requeueing %s: %w", o.id, err)
		}
		e.log.Info("job requeued: its River job was gone", "job", o.id)
	}
	return nil
}

// interrupt fails a job whose River job River gave up on.
func (e *Engine) interrupt(ctx context.Context, id string) error {
	err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		j, _, tomb, err := e.load(ctx, tx, id)
		if err != nil || tomb || j.Status.Terminal() {
			return err
		}
		j.Failure = &Failure{Code: CodeInterrupted, Detail: fmt.Sprintf(
			"The job was interrupted: its worker failed %d times in a row (it crashed, or its database did not answer), so it was stopped.", e.cfg.MaxAttempts)}
		_, err = e.finish(ctx, tx, j, StatusFailed)
		return err
	})
	if err != nil {
		return fmt.Errorf("jobs: failing %s as interrupted: %w", id, err)
	}
	e.log.Warn("job failed as interrupted: River gave up on its worker", "job", id)
	return nil
}
