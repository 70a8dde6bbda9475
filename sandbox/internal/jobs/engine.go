package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
)

// Progress records progress and is the worker's heartbeat for the
// dead-man's switch. It answers an error once the job has been canceled,
// failed by the watchdog or interrupted by shutdown; the error matches
// context.Canceled, and Work should stop and return it.
type Progress func(percent int, message string) error

// Work does one kind of job. Its ctx ends when the job is canceled, stalls
// or the engine closes. It returns the output on success, a *Failure (see
// Fail) to fail with a catalog code, or any other error to fail with
// internal_error (the text is logged, never shown to the owner).
type Work func(ctx context.Context, job Job, progress Progress) (output []byte, err error)

// Spec is what a caller asks for in Submit.
type Spec struct {
	Kind       Kind
	Owner      string
	ResourceID string
	Input      []byte
	Expected   time.Duration // real (already scaled) expected run time
}

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	Clock       clock.Clock   // default clock.Real()
	Store       Store         // required
	Logger      *slog.Logger  // default discards
	Workers     int           // concurrently running jobs (default 256)
	QueueSize   int           // max accepted-but-not-started jobs (default 10000); beyond it Submit answers ErrQueueFull
	Retention   time.Duration // how long finished jobs stay readable (default 24h)
	StallFactor float64       // silence allowed as a multiple of Expected (default 2), never under StallFloor
	SweepEvery  time.Duration // watchdog and janitor period (default 1s)
	Work        map[Kind]Work // required, at least one kind
	// MaxActivePerOwner bounds one owner's unfinished (queued or
	// processing) jobs, so one API key cannot fill the queue for everyone;
	// beyond it Submit answers ErrOwnerBusy. Default 1000.
	MaxActivePerOwner int
}

// Defaults applied by New.
const (
	DefaultWorkers     = 256
	DefaultQueueSize   = 10000
	DefaultRetention   = 24 * time.Hour
	DefaultStallFactor = 2.0
	DefaultSweepEvery  = time.Second
	// DefaultMaxActivePerOwner bounds one owner's unfinished jobs.
	DefaultMaxActivePerOwner = 1000
	// StallFloor keeps the dead-man's switch from firing on very short jobs
	// between two sweeps.
	StallFloor = time.Second
	// MaxMessageLen bounds Job.Message so a chatty worker cannot bloat the store.
	MaxMessageLen = 200
)

// sweepBatch bounds one store query of the sweeper; a pass takes at most
// sweepRounds batches so one tick cannot run away.
const (
	sweepBatch  = 500
	sweepRounds = 10
)

// Causes attached to a running Work's context; they all match
// context.Canceled so Work code needs only one check.
var (
	errCanceledByOwner = fmt.Errorf("job canceled by its owner: %w", context.Canceled)
	errStalled         = fmt.Errorf("job failed by the dead-man's switch: %w", context.Canceled)
	errShutdown        = fmt.Errorf("job engine shutting down: %w", context.Canceled)
	errPanicked        = errors.New("work panicked")
)

// Stats is a cheap snapshot for health checks and load shedding.
type Stats struct {
	Queued    int // accepted, not yet picked up by a worker
	Running   int // picked up, Work running
	Workers   int
	QueueSize int
}

// Engine runs jobs. Create it with New, then Start it; Close it on shutdown.
type Engine struct {
	clk         clock.Clock
	store       Store
	log         *slog.Logger
	workers     int
	queueSize   int
	retention   time.Duration
	stallFactor float64
	sweepEvery  time.Duration
	work        map[Kind]Work

	// queue holds ids of accepted jobs. Its capacity equals queueSize and a
	// send happens only with a reserved slot, so it never blocks.
	queue chan string

	// submitMu orders Submit against Close: Submit holds it shared from
	// reservation to enqueue, Close takes it exclusively to flip closed, so
	// after that no job can slip into the queue behind Close's drain.
	submitMu sync.RWMutex
	closed   bool
	draining bool // Drain called: no new jobs, running ones finish

	maxActive int
	active    map[string]int // owner → unfinished jobs, guarded by mu

	mu       sync.Mutex
	started  bool
	reserved int // queue slots taken
	running  map[string]context.CancelCauseFunc
	stop     context.CancelCauseFunc
	runCtx   context.Context // Start's ctx; once it ends no worker is left to run a job
	wg       sync.WaitGroup  // workers and sweeper

	wmu         sync.Mutex
	watchers    map[string]map[*watcher]struct{}
	watchClosed bool
	watchWG     sync.WaitGroup
	done        chan struct{} // closed when the engine has closed; ends watchers

	avgRun atomic.Int64 // moving average of observed run time, ns, for QueueRetryAfter
}

// New checks cfg, fills defaults and returns an engine that accepts
// Submit at once (jobs wait in the queue until Start).
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("jobs: Config.Store is nil")
	}
	if len(cfg.Work) == 0 {
		return nil, errors.New("jobs: Config.Work has no kinds")
	}
	for k, w := range cfg.Work {
		if w == nil {
			return nil, fmt.Errorf("jobs: Config.Work[%q] is nil", k)
		}
	}
	if cfg.Workers < 0 || cfg.QueueSize < 0 || cfg.MaxActivePerOwner < 0 || cfg.Retention < 0 || cfg.StallFactor < 0 || cfg.SweepEvery < 0 {
		return nil, errors.New("jobs: Config has a negative size, duration or factor")
	}
	e := &Engine{
		clk:         cmpOr[clock.Clock](cfg.Clock, clock.Real()),
		store:       cfg.Store,
		log:         cfg.Logger,
		workers:     cmpOr(cfg.Workers, DefaultWorkers),
		queueSize:   cmpOr(cfg.QueueSize, DefaultQueueSize),
		retention:   cmpOr(cfg.Retention, DefaultRetention),
		stallFactor: cmpOr(cfg.StallFactor, DefaultStallFactor),
		sweepEvery:  cmpOr(cfg.SweepEvery, DefaultSweepEvery),
		work:        maps.Clone(cfg.Work),
		running:     make(map[string]context.CancelCauseFunc),
		maxActive:   cmpOr(cfg.MaxActivePerOwner, DefaultMaxActivePerOwner),
		active:      make(map[string]int),
		watchers:    make(map[string]map[*watcher]struct{}),
		done:        make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.queue = make(chan string, e.queueSize)
	return e, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Start runs the workers and the sweeper on ctx, which must outlive every
// request: the request ends at the 202, the job does not. It returns at
// once. Starting twice, or after Close, does nothing.
func (e *Engine) Start(ctx context.Context) {
	e.submitMu.RLock()
	defer e.submitMu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.closed {
		return
	}
	e.started = true
	runCtx, stop := context.WithCancelCause(ctx)
	e.stop, e.runCtx = stop, runCtx
	for range e.workers {
		e.wg.Go(func() { e.worker(runCtx) })
	}
	e.wg.Go(func() { e.sweeper(runCtx) })
}

// Close stops accepting jobs (Submit answers ErrClosed), cancels running
// Work, waits for the engine's goroutines until ctx ends, fails every job
// still queued or interrupted with internal_error (so no watcher waits for
// a job nobody will run) and ends all watches.
func (e *Engine) Close(ctx context.Context) error {
	e.submitMu.Lock()
	already := e.closed
	e.closed = true
	e.submitMu.Unlock()
	if already {
		return nil
	}
	e.mu.Lock()
	stop := e.stop
	e.mu.Unlock()
	if stop != nil {
		stop(errShutdown)
	}
	var errs []error
	if err := waitCtx(ctx, &e.wg); err != nil {
		errs = append(errs, fmt.Errorf("jobs: close: waiting for workers: %w", err))
	}
	bg := context.WithoutCancel(ctx)
drain:
	for {
		select {
		case id := <-e.queue:
			e.release()
			e.interrupt(bg, id, "the server stopped before the job started")
		default:
			break drain
		}
	}
	e.wmu.Lock()
	e.watchClosed = true
	close(e.done)
	e.wmu.Unlock()
	if err := waitCtx(ctx, &e.watchWG); err != nil {
		errs = append(errs, fmt.Errorf("jobs: close: waiting for watchers: %w", err))
	}
	return errors.Join(errs...)
}

// Drain stops accepting jobs (Submit answers ErrClosed) and waits, until ctx
// ends, for every queued and running job to finish on its own: the first
// step of a graceful shutdown, before Close fails whatever is left. It
// returns ctx's cause if jobs were still unfinished.
func (e *Engine) Drain(ctx context.Context) error {
	e.submitMu.Lock()
	e.draining = true
	e.submitMu.Unlock()
	// A shutdown happens once; polling the counts on the wall clock keeps
	// the hot paths free of the extra signalling a wait would need.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if st := e.Stats(); st.Queued == 0 && st.Running == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			st := e.Stats()
			return fmt.Errorf("jobs: drain: %d queued and %d running jobs left: %w", st.Queued, st.Running, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Submit accepts a job, or answers ErrClosed after Close or once Start's
// ctx has ended, ErrQueueFull when the queue is full, ErrUnknownKind for a
// kind without Work. It reserves a queue slot first, so a job that is
// accepted always has room to run and nothing accepted is lost; then it
// creates the job in the store and enqueues it. ctx bounds only the store
// write: the job itself runs on the engine's context.
func (e *Engine) Submit(ctx context.Context, s Spec) (Job, error) {
	if _, ok := e.work[s.Kind]; !ok {
		return Job{}, fmt.Errorf("jobs: submit %q: %w", s.Kind, ErrUnknownKind)
	}
	if s.Owner == "" {
		return Job{}, errors.New("jobs: submit: spec has no owner")
	}
	if s.Expected < 0 {
		return Job{}, errors.New("jobs: submit: negative expected duration")
	}
	e.submitMu.RLock()
	defer e.submitMu.RUnlock()
	if e.closed || e.draining {
		return Job{}, ErrClosed
	}
	e.mu.Lock()
	runCtx := e.runCtx
	e.mu.Unlock()
	if runCtx != nil && runCtx.Err() != nil { // Start's ctx ended without Close: nobody would run it
		return Job{}, fmt.Errorf("jobs: submit: engine context ended: %w", ErrClosed)
	}
	if err := e.reserve(s.Owner); err != nil {
		return Job{}, err
	}
	now := e.clk.Now()
	j := Job{
		Kind:       s.Kind,
		Owner:      s.Owner,
		ResourceID: s.ResourceID,
		Status:     StatusQueued,
		CreatedAt:  now,
		UpdatedAt:  now,
		Expected:   s.Expected,
		Input:      cloneBytes(s.Input),
		Version:    1,
	}
	var err error
	for range 3 { // a duplicate 128-bit id is a broken RNG, but retrying costs nothing
		j.ID = NewID()
		if err = e.store.Create(ctx, j); !errors.Is(err, ErrExists) {
			break
		}
	}
	if err != nil {
		e.release()
		e.ownerDone(s.Owner)
		return Job{}, fmt.Errorf("jobs: submit: %w", err)
	}
	e.queue <- j.ID
	return j, nil
}

// reserve takes a queue slot and counts one more unfinished job for owner.
func (e *Engine) reserve(owner string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reserved >= e.queueSize {
		return ErrQueueFull
	}
	if e.active[owner] >= e.maxActive {
		return ErrOwnerBusy
	}
	e.reserved++
	e.active[owner]++
	return nil
}

// ownerDone counts one of owner's jobs as finished.
func (e *Engine) ownerDone(owner string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.active[owner] <= 1 {
		delete(e.active, owner)
		return
	}
	e.active[owner]--
}

func (e *Engine) release() {
	e.mu.Lock()
	e.reserved--
	e.mu.Unlock()
}

// Get answers owner's job. Another owner's job is ErrNotFound, never a
// different error, so ids cannot be probed; a job past its retention is
// ErrGone even before the janitor has removed it.
func (e *Engine) Get(ctx context.Context, owner, id string) (Job, error) {
	j, err := e.store.Get(ctx, id)
	switch {
	case errors.Is(err, ErrGone):
		if j.Owner != owner {
			return Job{}, ErrNotFound
		}
		return Job{}, ErrGone
	case errors.Is(err, ErrNotFound):
		return Job{}, ErrNotFound
	case err != nil:
		return Job{}, fmt.Errorf("jobs: get %s: %w", id, err)
	case j.Owner != owner:
		return Job{}, ErrNotFound
	case j.Status.Terminal() && !e.clk.Now().Before(j.ExpiresAt):
		return Job{}, ErrGone
	}
	return j, nil
}

// Cancel ends owner's job as canceled and cancels its running Work. For a
// job already terminal it answers the job as it is, with ErrFinished.
func (e *Engine) Cancel(ctx context.Context, owner, id string) (Job, error) {
	cur, err := e.Get(ctx, owner, id)
	if err != nil {
		return Job{}, err
	}
	if cur.Status.Terminal() {
		return cur, ErrFinished
	}
	j, err := e.transition(ctx, id, StatusCanceled, func(j *Job, _ time.Time) error {
		j.Failure = &Failure{Code: CodeCanceled, Detail: "The job was canceled at its owner's request."}
		return nil
	})
	if errors.Is(err, ErrFinished) {
		cur, gerr := e.Get(ctx, owner, id)
		if gerr != nil {
			return Job{}, gerr
		}
		return cur, ErrFinished
	}
	if err != nil {
		return Job{}, err
	}
	e.cancelRunning(id, errCanceledByOwner)
	return j, nil
}

func (e *Engine) cancelRunning(id string, cause error) {
	e.mu.Lock()
	cancel := e.running[id]
	e.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// Stats answers the queue and pool occupancy.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Queued: e.reserved, Running: len(e.running), Workers: e.workers, QueueSize: e.queueSize}
}

// QueueRetryAfter is a hint for Retry-After on a 503: roughly how long the
// current backlog takes to drain (queued jobs × average observed run time
// ÷ workers), in whole seconds between 1s and 60s. Before any job has run
// the average is taken to be one second.
func (e *Engine) QueueRetryAfter() time.Duration {
	avg := time.Duration(e.avgRun.Load())
	if avg <= 0 {
		avg = time.Second
	}
	queued := e.Stats().Queued
	d := time.Duration(float64(avg) * float64(queued) / float64(e.workers))
	d = (d + time.Second - 1).Truncate(time.Second) // whole seconds, rounded up: Retry-After is delay-seconds
	return min(max(d, time.Second), time.Minute)
}

func (e *Engine) observeRun(d time.Duration) {
	for {
		old := e.avgRun.Load()
		next := int64(d)
		if old > 0 {
			next = old + (int64(d)-old)/8 // moving average, weight 1/8 to the newest run
		}
		if e.avgRun.CompareAndSwap(old, next) {
			return
		}
	}
}

func (e *Engine) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-e.queue:
			e.run(ctx, id)
		}
	}
}

func (e *Engine) run(ctx context.Context, id string) {
	// Store writes about this job must land even when ctx is ending:
	// they are what tells the owner how the job ended.
	bg := context.WithoutCancel(ctx)
	workCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Register the cancel func before the job turns processing, so a
	// Cancel or a stall that lands right after the transition finds it.
	// The queue slot is given back in the same step, so the job is always
	// counted as queued or running (Drain relies on it).
	e.mu.Lock()
	e.running[id] = cancel
	e.reserved--
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, id)
		e.mu.Unlock()
	}()
	if ctx.Err() != nil {
		e.interrupt(bg, id, "the server stopped before the job started")
		return
	}
	job, err := e.transition(bg, id, StatusProcessing, func(j *Job, now time.Time) error {
		j.StartedAt = now
		j.LastBeat = now
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrFinished) { // ErrFinished: canceled while queued, nothing to run
			e.log.Error("job could not start", "job", id, "err", err)
		}
		return
	}
	progress := func(percent int, message string) error {
		if workCtx.Err() != nil {
			return context.Cause(workCtx)
		}
		_, err := e.mutate(bg, id, func(j *Job, now time.Time) error {
			if j.Status != StatusProcessing {
				return fmt.Errorf("job %s is %s: %w (%w)", id, j.Status, ErrFinished, context.Canceled)
			}
			// 100 is kept for success: a processing job at 100% would
			// tell a poller it is done when it is not.
			j.Percent = max(j.Percent, min(max(percent, 0), 99))
			j.Message = truncate(message, MaxMessageLen)
			j.LastBeat = now
			return nil
		})
		return err
	}
	out, werr := e.call(workCtx, e.work[job.Kind], job, progress)
	e.observeRun(e.clk.Now().Sub(job.StartedAt))
	e.finish(bg, job, out, werr, context.Cause(workCtx))
}

// call runs work, turning a panic into an error so one bad job cannot take
// the server down.
func (e *Engine) call(ctx context.Context, work Work, job Job, progress Progress) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("job work panicked", "job", job.ID, "kind", job.Kind, "panic", r, "stack", string(debug.Stack()))
			out, err = nil, errPanicked
		}
	}()
	return work(ctx, job.Clone(), progress)
}

// finish records how Work ended. The transition is compare-and-swap and
// checks CanMoveTo, so a late success after a cancel or a stall is dropped.
func (e *Engine) finish(ctx context.Context, job Job, out []byte, werr, cause error) {
	next, fail := StatusSucceeded, (*Failure)(nil)
	var f *Failure
	// Once the engine has stopped the Work, its answer no longer counts:
	// the reason it was stopped decides the outcome.
	switch {
	case errors.Is(cause, errCanceledByOwner):
		next, fail = StatusCanceled, &Failure{Code: CodeCanceled, Detail: "The job was canceled at its owner's request."}
	case errors.Is(cause, errStalled):
		return // the watchdog already failed it
	case cause != nil:
		next, fail = StatusFailed, &Failure{Code: CodeInterrupted, Detail: "The job was interrupted: the server stopped before the job finished."}
	case errors.Is(werr, ErrFinished):
		return // Progress saw a cancel or stall land before its ctx ended; that state stands
	case werr == nil:
	case errors.As(werr, &f) && f.Code != "":
		next, fail = StatusFailed, &Failure{Code: f.Code, Detail: f.Detail}
	default:
		if !errors.Is(werr, errPanicked) {
			e.log.Error("job work failed", "job", job.ID, "kind", job.Kind, "err", werr)
		}
		next, fail = StatusFailed, &Failure{Code: CodeInternal, Detail: "The job failed because of an internal error."}
	}
	_, err := e.transition(ctx, job.ID, next, func(j *Job, _ time.Time) error {
		j.Failure = fail
		if next == StatusSucceeded {
			j.Output = cloneBytes(out)
			j.Percent = 100
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrFinished) {
		e.log.Error("job outcome not recorded", "job", job.ID, "status", next, "err", err)
	}
}

// interrupt fails a job that will never run because the engine is stopping.
func (e *Engine) interrupt(ctx context.Context, id, detail string) {
	_, err := e.transition(ctx, id, StatusFailed, func(j *Job, _ time.Time) error {
		j.Failure = &Failure{Code: CodeInterrupted, Detail: "The job was interrupted: " + detail + "."}
		return nil
	})
	if err != nil && !errors.Is(err, ErrFinished) {
		e.log.Error("interrupted job not recorded", "job", id, "err", err)
	}
}

// transition moves a job to next if the lifecycle allows it, stamping the
// finish and expiry times of terminal states; fn may adjust the job or veto
// the change by returning an error.
func (e *Engine) transition(ctx context.Context, id string, next Status, fn func(j *Job, now time.Time) error) (Job, error) {
	stored, err := e.mutate(ctx, id, func(j *Job, now time.Time) error {
		if !j.Status.CanMoveTo(next) {
			if j.Status.Terminal() {
				return fmt.Errorf("jobs: %s is already %s: %w", id, j.Status, ErrFinished)
			}
			return fmt.Errorf("jobs: %s cannot move from %s to %s", id, j.Status, next)
		}
		if err := fn(j, now); err != nil {
			return err
		}
		j.Status = next
		if next.Terminal() {
			j.FinishedAt = now
			j.ExpiresAt = now.Add(e.retention)
		}
		return nil
	})
	if err == nil && next.Terminal() {
		// CanMoveTo let exactly one transition out of a live state through.
		e.ownerDone(stored.Owner)
	}
	return stored, err
}

// maxConflicts bounds compare-and-swap retries; each conflict means someone
// else's write succeeded, so running out means something is badly wrong.
const maxConflicts = 100

// mutate is read-modify-write with compare-and-swap on Version, retried on
// conflict, and tells watchers about the result.
func (e *Engine) mutate(ctx context.Context, id string, fn func(j *Job, now time.Time) error) (Job, error) {
	for range maxConflicts {
		j, err := e.store.Get(ctx, id)
		if err != nil {
			return Job{}, fmt.Errorf("jobs: read %s: %w", id, err)
		}
		now := e.clk.Now()
		if err := fn(&j, now); err != nil {
			return Job{}, err
		}
		j.UpdatedAt = now
		stored, err := e.store.Update(ctx, j)
		if errors.Is(err, ErrVersionConflict) {
			continue
		}
		if err != nil {
			return Job{}, fmt.Errorf("jobs: write %s: %w", id, err)
		}
		e.notify(stored)
		return stored, nil
	}
	return Job{}, fmt.Errorf("jobs: write %s: %d conflicts in a row: %w", id, maxConflicts, ErrVersionConflict)
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

func (e *Engine) sweeper(ctx context.Context) {
	tk := e.clk.NewTicker(e.sweepEvery)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
			e.Sweep(ctx)
		}
	}
}

// Sweep makes one pass of the watchdog, which fails processing jobs whose
// worker has been silent longer than StallFactor × Expected (at least
// StallFloor) with job_stalled, and of the janitor, which turns jobs past
// their retention into tombstones.
func (e *Engine) Sweep(ctx context.Context) {
	for range sweepRounds {
		q := StallQuery{Now: e.clk.Now(), Factor: e.stallFactor, Floor: StallFloor}
		stalled, err := e.store.ListStalled(ctx, q, sweepBatch)
		if err != nil {
			e.log.Error("watchdog: list stalled jobs", "err", err)
			break
		}
		for _, s := range stalled {
			e.failStalled(ctx, s.ID)
		}
		if len(stalled) < sweepBatch {
			break
		}
	}
	for range sweepRounds {
		expired, err := e.store.ListExpired(ctx, e.clk.Now(), sweepBatch)
		if err != nil {
			e.log.Error("janitor: list expired jobs", "err", err)
			break
		}
		for _, x := range expired {
			if err := e.store.Expire(ctx, x.ID); err != nil && !errors.Is(err, ErrNotFound) {
				e.log.Error("janitor: expire job", "job", x.ID, "err", err)
			}
		}
		if len(expired) < sweepBatch {
			break
		}
	}
}

var errNotStalled = errors.New("job reported progress after all")

func (e *Engine) failStalled(ctx context.Context, id string) {
	j, err := e.transition(ctx, id, StatusFailed, func(j *Job, now time.Time) error {
		q := StallQuery{Now: now, Factor: e.stallFactor, Floor: StallFloor}
		if !q.Stalled(*j) { // re-checked on the fresh copy: it may have beaten since the listing
			return errNotStalled
		}
		j.Failure = &Failure{Code: CodeStalled, Detail: fmt.Sprintf(
			"The job reported no progress for %s (expected run time %s) and was stopped.",
			q.Window(*j).Round(time.Millisecond), j.Expected.Round(time.Millisecond))}
		return nil
	})
	switch {
	case err == nil:
		e.log.Warn("job stalled, failed by the watchdog", "job", id, "kind", j.Kind, "last_beat", j.LastBeat)
		e.cancelRunning(id, errStalled)
	case errors.Is(err, errNotStalled), errors.Is(err, ErrFinished):
	default:
		e.log.Error("watchdog: fail stalled job", "job", id, "err", err)
	}
}
