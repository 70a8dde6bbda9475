package outbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/safedial"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// loopbackClient is the safedial client allowing 127.0.0.1, where the
// httptest receivers listen.
func loopbackClient() *http.Client {
	return safedial.Policy{Allow: netip.Addr.IsLoopback}.Client()
}

// env is an outbox on a database with a started River queue, on a fake
// clock that only the test moves (deliveries look at it every 2 ms).
type env struct {
	t     *testing.T
	db    sqldb.DB
	o     *Outbox
	clk   *clock.Fake
	log   *slog.Logger
	stop  func() // stops the queue; idempotent
	queue sqldb.Queue
}

// newEnv builds an outbox with no jitter (unless cfg says otherwise) and
// starts its queue.
func newEnv(t *testing.T, db sqldb.DB, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, db: db, clk: clock.NewFake(testStart), log: dbtest.Logger(t)}
	e.start(mod)
	return e
}

// start builds the outbox and a River queue for it, as a (re)started
// process does.
func (e *env) start(mod func(*Config)) {
	e.t.Helper()
	cfg := Config{
		DB: e.db, Client: loopbackClient(), Clock: e.clk, Logger: e.log, JitterFraction: -1, MaxSnooze: 2 * time.Millisecond,
		Secrets: func(context.Context, string) ([]string, error) { return []string{testSecret}, nil },
	}
	if mod != nil {
		mod(&cfg)
	}
	o, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	workers := river.NewWorkers()
	if err := o.Register(workers); err != nil {
		e.t.Fatal(err)
	}
	e.o = o
	e.queue, e.stop = dbtest.Queue(e.t, e.db, e.log, workers, []string{Queue}, o.PeriodicJobs())
}

// enqueue stores a message for owner to url in a transaction of its own,
// as the job engine's OnFinish would, and answers it with its job id.
func (e *env) enqueue(owner, url string) (webhooks.Message, string) {
	e.t.Helper()
	msg := webhooks.NewMessage("import.complete", testStart, map[string]any{"import_id": "imp_123", "imported": 42})
	job := jobs.NewID()
	err := e.db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
		return e.o.Enqueue(ctx, tx, Webhook{Owner: owner, URL: url, JobID: job, Message: msg})
	})
	if err != nil {
		e.t.Fatalf("Enqueue: %v", err)
	}
	return msg, job
}

func (e *env) logOf(owner, job string) Log {
	e.t.Helper()
	l, ok, err := e.o.Log(context.Background(), owner, job)
	if err != nil || !ok {
		e.t.Fatalf("Log of %s: %v, %v", job, ok, err)
	}
	return l
}

// drive plays the fake clock forward: whenever the last attempt of job's
// message waits for a retry, the clock jumps to it, so a 76-hour schedule
// runs in milliseconds. It answers the log once until holds.
func (e *env) drive(owner, job, what string, until func(Log) bool) Log {
	e.t.Helper()
	var l Log
	dbtest.WaitFor(e.t, fmt.Sprintf("the delivery log of %s: %s", job, what), func() (bool, string) {
		l = e.logOf(owner, job)
		if until(l) {
			return true, ""
		}
		if n := len(l.Attempts); n > 0 && l.State == StateSending {
			if next := l.Attempts[n-1].NextAttemptAt; next.After(e.clk.Now()) {
				e.clk.Set(next)
			}
		}
		return false, describe(l)
	})
	return l
}

// final drives job's message to a final state.
func (e *env) final(owner, job string) Log {
	e.t.Helper()
	return e.drive(owner, job, "a final state", func(l Log) bool { return l.State != StateSending })
}

func describe(l Log) string {
	s := fmt.Sprintf("state %s,", l.State)
	for _, a := range l.Attempts {
		s += fmt.Sprintf(" [#%d %s %d %q next %v]", a.Number, a.Outcome, a.StatusCode, a.Error, a.NextAttemptAt)
	}
	return s
}

func delays(l Log) []time.Duration {
	var out []time.Duration
	for _, a := range l.Attempts {
		if !a.NextAttemptAt.IsZero() {
			out = append(out, a.NextAttemptAt.Sub(a.At))
		}
	}
	return out
}

type captured struct {
	Header http.Header
	Body   []byte
}

type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func (r *receiver) Requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

// newReceiver starts a receiver on 127.0.0.1; answer is called with the
// 1-based number of the request.
func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, captured{r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}
