package jobs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// TestMain runs the tests through dbtest.Main (a migrated SQLite template
// every SQLite test starts from a copy of, and the throwaway PostgreSQL
// cluster pgtest starts for the package).
//
// The tests spend much of their time waiting for databases and River's
// polls: unless -parallel says otherwise, twice as many run at once as
// there are CPUs (at least 4).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", strconv.Itoa(max(4, 2*runtime.GOMAXPROCS(0)))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(dbtest.Main(m))
}

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	ownerA = "key_a"
	ownerB = "key_b"
	// waitMax bounds every wait of the suite: a test fails with what it
	// waited for, it never hangs until go test's timeout.
	waitMax = 30 * time.Second
)

// The kinds every test engine runs. Their Message and Result are what a
// flow's Work would be; the plan decides the steps and how the job ends.
const (
	kindOK       jobs.Kind = "ok"        // Result answers okOutput
	kindFail     jobs.Kind = "fail"      // Result answers jobs.Fail(codeFromWork, …)
	kindError    jobs.Kind = "error"     // Result answers a plain error holding secretText
	kindPanic    jobs.Kind = "panic"     // Result panics
	kindMsgPanic jobs.Kind = "msg_panic" // Message panics

	okOutput     = `{"ok":true}`
	codeFromWork = "report_too_large"
	secretText   = "secret db password wrong"
	panicText    = "nil map somewhere"
	riverRunKind = "accepted_job" // the River kind of runWorker
)

const (
	defaultWorkers = 4
	// defaultMaxSnooze is how often a waiting job looks at the (fake) clock
	// again: small, so a test that moves the clock does not wait long, but
	// not so small that jobs waiting on a clock that stands still keep the
	// CPU busy (every look is a transaction and two round trips through
	// River, which -race makes slow on SQLite).
	defaultMaxSnooze = 100 * time.Millisecond
)

func kinds() map[jobs.Kind]jobs.Work {
	msg := func(j jobs.Job, step int) string { return fmt.Sprintf("step %d of %d", step+1, j.Plan.Steps) }
	return map[jobs.Kind]jobs.Work{
		kindOK: {Message: msg, Result: func(context.Context, jobs.Job) ([]byte, error) { return []byte(okOutput), nil }},
		kindFail: {Message: msg, Result: func(context.Context, jobs.Job) ([]byte, error) {
			return nil, fmt.Errorf("rendering: %w", jobs.Fail(codeFromWork, "The report has too many rows."))
		}},
		kindError: {Message: msg, Result: func(context.Context, jobs.Job) ([]byte, error) {
			return []byte("partial"), errors.New(secretText)
		}},
		kindPanic:    {Message: msg, Result: func(context.Context, jobs.Job) ([]byte, error) { panic(panicText) }},
		kindMsgPanic: {Message: func(jobs.Job, int) string { panic(panicText) }, Result: func(context.Context, jobs.Job) ([]byte, error) { return nil, nil }},
	}
}

// plan is a plan that succeeds after steps steps, interval apart.
func plan(steps int, interval time.Duration) jobs.Plan {
	return jobs.Plan{Steps: steps, Interval: interval, FailAt: -1}
}

// testLog collects what the engine, River and the database log, and shows
// it when the test fails.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
	log *slog.Logger
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{}
	l.log = slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Registered first, so it runs last: after every engine and queue has
	// stopped writing.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", l.String())
		}
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// setup says how to build a test engine.
type setup struct {
	clk     clock.Clock // default: the real clock
	workers int         // River's MaxWorkers for jobs.QueueJobs (default 4)
	idle    bool        // build the queue but do not start it (start it with env.startQueue)
	noQueue bool        // no River client at all: an engine that only reads and watches
	// maintenance runs the engine's periodic jobs (the watchdog and
	// janitor, recovery) on River's leader; without it tests call Sweep
	// and Recover themselves.
	maintenance bool
	config      func(*jobs.Config)
}

// env is one engine and its River queue on a database.
type env struct {
	t    testing.TB
	db   sqldb.DB
	e    *jobs.Engine
	q    sqldb.Queue
	clk  *clock.Fake // nil on the real clock
	log  *testLog
	stop func() // stops the queue and closes the engine; idempotent
	// stopQueue stops the queue (the engine goes on); idempotent.
	stopQueue func()
	// startQueue starts the queue of an idle env.
	startQueue func()
}

// newEnv opens a database on b and builds a started engine on it.
func newEnv(t testing.TB, b dbtest.Backend, s setup) *env {
	t.Helper()
	log := newTestLog(t)
	return newEnvOn(t, b.Open(t, log.log), log, s)
}

// fake is a fake clock at epoch.
func fake() *clock.Fake { return clock.NewFake(epoch) }

// newEnvOn builds an engine on db, starts it and (unless s.idle) its queue;
// both stop when the test ends.
func newEnvOn(t testing.TB, db sqldb.DB, log *testLog, s setup) *env {
	t.Helper()
	cfg := jobs.Config{
		DB:        db,
		Clock:     s.clk,
		Logger:    log.log,
		Kinds:     kinds(),
		MaxSnooze: defaultMaxSnooze,
	}
	if s.config != nil {
		s.config(&cfg)
	}
	e, err := jobs.New(cfg)
	if err != nil {
		t.Fatalf("jobs.New: %v", err)
	}
	v := &env{t: t, db: db, e: e, log: log}
	v.clk, _ = s.clk.(*clock.Fake)
	if !s.noQueue {
		workers := river.NewWorkers()
		if err := e.Register(workers); err != nil {
			t.Fatalf("Register: %v", err)
		}
		rc := &river.Config{
			ID:                clientID(),
			Workers:           workers,
			Logger:            log.log,
			TestOnly:          true,
			FetchPollInterval: pollEvery(db.Dialect()),
			FetchCooldown:     5 * time.Millisecond,
			Queues:            map[string]river.QueueConfig{jobs.QueueJobs: {MaxWorkers: cmpOr(s.workers, defaultWorkers)}},
		}
		if s.maintenance {
			rc.Queues[jobs.QueueMaintenance] = river.QueueConfig{MaxWorkers: 1}
			rc.PeriodicJobs = e.PeriodicJobs()
		}
		q, err := db.NewQueue(rc)
		if err != nil {
			t.Fatalf("NewQueue: %v", err)
		}
		v.q = q
	}
	started := false
	v.stopQueue = sync.OnceFunc(func() {
		if !started {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitMax)
		defer cancel()
		if err := v.q.Stop(ctx); err != nil {
			t.Errorf("stopping the queue: %v", err)
		}
	})
	v.stop = sync.OnceFunc(func() {
		v.stopQueue()
		ctx, cancel := context.WithTimeout(context.Background(), waitMax)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("closing the engine: %v", err)
		}
	})
	t.Cleanup(v.stop)
	if err := e.Start(context.Background()); err != nil {
		t.Fatalf("engine Start: %v", err)
	}
	v.startQueue = func() {
		t.Helper()
		if err := v.q.Start(context.Background()); err != nil {
			t.Fatalf("queue Start: %v", err)
		}
		started = true
	}
	if !s.idle && !s.noQueue {
		v.startQueue()
	}
	return v
}

// pollEvery is River's FetchPollInterval: how soon a snoozed job is looked
// at again when nothing else wakes River. On SQLite, which has no LISTEN,
// River finds all its work by polling, and every poll costs CPU time (a
// statement parsed by SQLite compiled to Go, which -race slows down
// manyfold): an idle SQLite queue polling every 20ms kept most of a CPU
// busy.
func pollEvery(d sqldb.Dialect) time.Duration {
	if d == sqldb.SQLite {
		return 100 * time.Millisecond
	}
	return 20 * time.Millisecond
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// clientID is a River client id unique in every database.
func clientID() string { return "test_" + rand.Text() }

func (v *env) submit(owner string, kind jobs.Kind, p jobs.Plan) jobs.Job {
	v.t.Helper()
	j, err := v.e.Submit(context.Background(), jobs.Spec{Kind: kind, Owner: owner, Input: []byte(`{"in":1}`), Plan: p})
	if err != nil {
		v.t.Fatalf("Submit %s %+v: %v", kind, p, err)
	}
	return j
}

// waitFor polls cond until it holds, failing the test after waitMax with
// what it waited for and the last state cond described.
func waitFor(t testing.TB, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", waitMax, what, state)
		}
		time.Sleep(pause)
	}
}

// waitJob polls owner's job until pred holds.
func (v *env) waitJob(owner, id, what string, pred func(jobs.Job) bool) jobs.Job {
	v.t.Helper()
	var j jobs.Job
	waitFor(v.t, fmt.Sprintf("job %s: %s", id, what), func() (bool, string) {
		var err error
		j, err = v.e.Get(context.Background(), owner, id)
		if err != nil {
			return false, err.Error()
		}
		return pred(j), describe(j)
	})
	return j
}

func describe(j jobs.Job) string {
	return fmt.Sprintf("%s v%d step %d/%d %d%% %q failure %+v", j.Status, j.Version, j.Step, j.Plan.Steps, j.Percent, j.Message, j.Failure)
}

func isProcessing(j jobs.Job) bool { return j.Status == jobs.StatusProcessing }
func isTerminal(j jobs.Job) bool   { return j.Status.Terminal() }
func atStep(n int) func(jobs.Job) bool {
	return func(j jobs.Job) bool { return j.Step >= n || j.Status.Terminal() }
}

// watchToEnd follows a job to its terminal state and answers every state
// seen, the snapshot first.
func watchToEnd(e *jobs.Engine, owner, id string) ([]jobs.Job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	defer cancel()
	cur, updates, stop, err := e.Watch(ctx, owner, id)
	if err != nil {
		return nil, fmt.Errorf("Watch %s: %w", id, err)
	}
	defer stop()
	return collect(ctx, cur, updates)
}

// collect reads updates until the channel closes.
func collect(ctx context.Context, cur jobs.Job, updates <-chan jobs.Job) ([]jobs.Job, error) {
	seen := []jobs.Job{cur}
	for {
		select {
		case j, ok := <-updates:
			if !ok {
				if last := seen[len(seen)-1]; !last.Status.Terminal() {
					return seen, fmt.Errorf("job %s: updates closed at %s, want a terminal state", cur.ID, describe(last))
				}
				return seen, nil
			}
			seen = append(seen, j)
		case <-ctx.Done():
			return seen, fmt.Errorf("job %s: waited %v for its terminal state; %d states seen, the last %s", cur.ID, waitMax, len(seen), describe(seen[len(seen)-1]))
		}
	}
}

func (v *env) watchToEnd(owner, id string) []jobs.Job {
	v.t.Helper()
	seen, err := watchToEnd(v.e, owner, id)
	if err != nil {
		v.t.Fatal(err)
	}
	return seen
}

func (v *env) terminal(owner, id string) jobs.Job {
	v.t.Helper()
	seen := v.watchToEnd(owner, id)
	return seen[len(seen)-1]
}

// checkSequence checks what a watcher saw of one job: versions rise, the
// status only moves forward (states in between may have coalesced) and
// stops at a terminal one, the percentage never falls and is 100 exactly on
// success.
func checkSequence(seen []jobs.Job) error {
	var errs []error
	for i, cur := range seen {
		if (cur.Percent == 100) != (cur.Status == jobs.StatusSucceeded) {
			errs = append(errs, fmt.Errorf("state %d: %s at %d%%", i, cur.Status, cur.Percent))
		}
		if cur.Percent < 0 || cur.Percent > 100 {
			errs = append(errs, fmt.Errorf("state %d: percent %d", i, cur.Percent))
		}
		if i == 0 {
			continue
		}
		prev := seen[i-1]
		if cur.Version <= prev.Version {
			errs = append(errs, fmt.Errorf("state %d: version %d after %d", i, cur.Version, prev.Version))
		}
		// A watcher may miss states (they coalesce), never go back.
		if prev.Status.Terminal() || rank(cur.Status) < rank(prev.Status) {
			errs = append(errs, fmt.Errorf("state %d: moved %s -> %s", i, prev.Status, cur.Status))
		}
		if cur.Percent < prev.Percent {
			errs = append(errs, fmt.Errorf("state %d: percent %d after %d", i, cur.Percent, prev.Percent))
		}
		if cur.UpdatedAt.Before(prev.UpdatedAt) {
			errs = append(errs, fmt.Errorf("state %d: updated_at %v after %v", i, cur.UpdatedAt, prev.UpdatedAt))
		}
	}
	return errors.Join(errs...)
}

// count answers a COUNT(*) (or any single integer) query.
func count(t testing.TB, db sqldb.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Read().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// riverID answers the id of the River job that drives job id.
func riverID(t testing.TB, db sqldb.DB, id string) int64 {
	t.Helper()
	var rid int64
	if err := db.Read().QueryRow(context.Background(), `SELECT river_id FROM jobs WHERE id = ?`, id).Scan(&rid); err != nil {
		t.Fatalf("river_id of %s: %v", id, err)
	}
	return rid
}

// riverState answers the state of a River job, "" when it is gone.
func riverState(t testing.TB, db sqldb.DB, rid int64) string {
	t.Helper()
	var state string
	err := db.Read().QueryRow(context.Background(), `SELECT CAST(state AS TEXT) FROM river_job WHERE id = ?`, rid).Scan(&state)
	if errors.Is(err, sqldb.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatalf("state of River job %d: %v", rid, err)
	}
	return state
}

func (v *env) waitRiverState(rid int64, what string, ok func(state string) bool) string {
	v.t.Helper()
	var state string
	waitFor(v.t, fmt.Sprintf("River job %d %s", rid, what), func() (bool, string) {
		state = riverState(v.t, v.db, rid)
		return ok(state), "state " + state
	})
	return state
}

func in(values ...string) func(string) bool {
	return func(s string) bool {
		for _, v := range values {
			if s == v {
				return true
			}
		}
		return false
	}
}

// exec runs a statement in a transaction of its own.
func exec(t testing.TB, db sqldb.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	err := db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, query, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// unfinished answers owner's count of unfinished jobs as the cap sees it.
func unfinished(t testing.TB, db sqldb.DB, owner string) int {
	t.Helper()
	return count(t, db, `SELECT COALESCE(SUM(unfinished), 0) FROM job_owners WHERE owner = ?`, owner)
}
