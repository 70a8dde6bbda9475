package outbox

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func TestRedeliver(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		var answer atomic.Int64
		answer.Store(http.StatusNoContent)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(answer.Load())) })
		e := newEnv(t, db, nil)
		msg, job := e.enqueue("key_a", rc.URL)
		e.final("key_a", job)

		if _, err := e.o.Redeliver(ctx, "key_b", job); !errors.Is(err, ErrNotSent) {
			t.Errorf("another owner's redelivery: %v, want ErrNotSent", err)
		}
		if _, err := e.o.Redeliver(ctx, "key_a", jobs.NewID()); !errors.Is(err, ErrNotSent) {
			t.Errorf("redelivery of a job without a message: %v, want ErrNotSent", err)
		}
		id, err := e.o.Redeliver(ctx, "key_a", job)
		if err != nil || id != msg.ID {
			t.Fatalf("Redeliver: %q, %v", id, err)
		}
		l := e.final("key_a", job)
		if a := l.Attempts[1]; len(l.Attempts) != 2 || !a.Manual || a.Number != 1 || a.Outcome != "delivered" || a.MessageID != msg.ID || l.State != "delivered" {
			t.Fatalf("after a redelivery: %s", describe(l))
		}
		reqs := rc.Requests()
		if len(reqs) != 2 || reqs[0].Header.Get(webhooks.HeaderID) != reqs[1].Header.Get(webhooks.HeaderID) {
			t.Fatalf("a redelivery must carry the same webhook-id")
		}

		// A failed redelivery is one attempt: no retry is scheduled.
		answer.Store(http.StatusBadGateway)
		if _, err := e.o.Redeliver(ctx, "key_a", job); err != nil {
			t.Fatal(err)
		}
		l = e.final("key_a", job)
		if a := l.Attempts[2]; a.Outcome != "failed" || a.StatusCode != 502 || !a.NextAttemptAt.IsZero() || l.State != "failed" {
			t.Fatalf("failed redelivery: %s", describe(l))
		}
		time.Sleep(50 * time.Millisecond)
		if n := len(rc.Requests()); n != 3 {
			t.Errorf("%d requests after a failed redelivery, want 3 (no retries)", n)
		}

		// Refused while an attempt is due: automatic or manual.
		answer.Store(http.StatusServiceUnavailable)
		_, pending := e.enqueue("key_a", rc.URL)
		e.drive("key_a", pending, "a first attempt", func(l Log) bool { return len(l.Attempts) == 1 })
		if id, err := e.o.Redeliver(ctx, "key_a", pending); !errors.Is(err, webhooks.ErrAlreadyPending) || id == "" {
			t.Errorf("redelivery while retrying: %q, %v, want ErrAlreadyPending", id, err)
		}

		// A 410 disables the URL; a redelivery enables it again.
		answer.Store(http.StatusGone)
		_, gone := e.enqueue("key_a", rc.URL+"/gone")
		if l := e.final("key_a", gone); l.State != "disabled" {
			t.Fatalf("after a 410: %s", describe(l))
		}
		answer.Store(http.StatusOK)
		if _, err := e.o.Redeliver(ctx, "key_a", gone); err != nil {
			t.Fatal(err)
		}
		if _, disabled, _ := e.o.Disabled(ctx, "key_a", rc.URL+"/gone"); disabled {
			t.Error("a redelivery did not enable the endpoint")
		}
		if l := e.final("key_a", gone); l.State != "delivered" || !l.Attempts[1].Manual {
			t.Errorf("redelivery after a 410: %s", describe(l))
		}
	})
}

// A 410 from one message stops the retries already scheduled for others to
// the same endpoint.
func TestGoneStopsOtherPendingRetries(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		var gone atomic.Bool
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if gone.Load() {
				w.WriteHeader(http.StatusGone)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		e := newEnv(t, db, nil)
		_, first := e.enqueue("key_a", rc.URL)
		l := e.drive("key_a", first, "a first attempt", func(l Log) bool { return len(l.Attempts) == 1 })
		gone.Store(true)
		_, second := e.enqueue("key_a", rc.URL)
		if l := e.final("key_a", second); l.State != "disabled" || l.Attempts[0].StatusCode != 410 {
			t.Fatalf("second message: %s", describe(l))
		}
		before := len(rc.Requests())
		e.clk.Set(l.Attempts[0].NextAttemptAt) // the first message's retry is due
		l = e.final("key_a", first)
		if a := l.Attempts[1]; l.State != "disabled" || a.StatusCode != 0 || !strings.Contains(a.Error, "not sent") || len(rc.Requests()) != before {
			t.Fatalf("first message after the 410: %s; %d requests (was %d)", describe(l), len(rc.Requests()), before)
		}
	})
}

// TestEnqueueCommitsWithTheCaller: a message and its River job belong to
// the caller's transaction.
func TestEnqueueCommitsWithTheCaller(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		rc := newReceiver(t, status(http.StatusNoContent))
		e := newEnv(t, db, nil)
		msg := webhooks.NewMessage("import.complete", testStart, map[string]any{})
		job := jobs.NewID()
		boom := errors.New("the job's end failed to commit")
		err := db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
			if err := e.o.Enqueue(ctx, tx, Webhook{Owner: "key_a", URL: rc.URL, JobID: job, Message: msg}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM webhook_messages`); n != 0 {
			t.Errorf("%d messages after a rollback", n)
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM river_job WHERE kind = 'accepted_webhook'`); n != 0 {
			t.Errorf("%d River jobs after a rollback", n)
		}
		// One message per job: a second Enqueue for it is dropped.
		_, job2 := e.enqueue("key_a", rc.URL)
		err = db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
			return e.o.Enqueue(ctx, tx, Webhook{Owner: "key_a", URL: rc.URL, JobID: job2, Message: msg})
		})
		if err != nil {
			t.Fatal(err)
		}
		e.final("key_a", job2)
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM webhook_messages`); n != 1 {
			t.Errorf("%d messages for one job", n)
		}
		time.Sleep(50 * time.Millisecond)
		if n := len(rc.Requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// TestBounds: the shares of pending messages, and a payload too large.
// The job's end is never refused: the message is stored as failed with the
// reason.
func TestBounds(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		slow := newReceiver(t, status(http.StatusServiceUnavailable))
		ok := newReceiver(t, status(http.StatusNoContent))
		e := newEnv(t, db, func(c *Config) { c.MaxPendingPerOwner, c.MaxPending = 2, 3 })
		_, a1 := e.enqueue("key_flood", slow.URL)
		_, a2 := e.enqueue("key_flood", slow.URL)
		_, a3 := e.enqueue("key_flood", slow.URL)
		if l := e.logOf("key_flood", a3); l.State != "failed" || len(l.Attempts) != 1 || !strings.Contains(l.Attempts[0].Error, "not sent: webhook queue full") {
			t.Errorf("beyond the owner's share: %s", describe(l))
		}
		for _, j := range []string{a1, a2} {
			if l := e.logOf("key_flood", j); l.State != StateSending {
				t.Errorf("within the share: %s", describe(l))
			}
		}
		// Another key still gets its webhook (R42)…
		_, b1 := e.enqueue("key_newcomer", ok.URL)
		if l := e.final("key_newcomer", b1); l.State != "delivered" {
			t.Errorf("a newcomer's webhook: %s", describe(l))
		}
		// …until the global bound: 2 of key_flood's + 1 more pending.
		_, b2 := e.enqueue("key_other", slow.URL)
		_, b3 := e.enqueue("key_third", ok.URL)
		if l := e.logOf("key_other", b2); l.State != StateSending {
			t.Errorf("within the global bound: %s", describe(l))
		}
		if l := e.logOf("key_third", b3); l.State != "failed" || !strings.Contains(l.Attempts[0].Error, "as many as it holds") {
			t.Errorf("beyond the global bound: %s", describe(l))
		}

		tooBig := webhooks.NewMessage("import.complete", testStart, strings.Repeat("x", webhooks.PayloadLimit))
		job := jobs.NewID()
		err := db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
			return e.o.Enqueue(ctx, tx, Webhook{Owner: "key_big", URL: ok.URL, JobID: job, Message: tooBig})
		})
		if err != nil {
			t.Fatalf("Enqueue of a payload too large: %v, want it stored as failed", err)
		}
		if l := e.logOf("key_big", job); l.State != "failed" || !strings.Contains(l.Attempts[0].Error, "too large") {
			t.Errorf("a payload too large: %s", describe(l))
		}
		if _, err := e.o.Redeliver(context.Background(), "key_big", job); !errors.Is(err, ErrNotSent) {
			t.Errorf("redelivery of an unsendable message: %v", err)
		}
	})
}

// TestSurvivesRestart (R41): a message waiting for its retry when its
// process stops is delivered by the next one (a restart, or another
// replica on PostgreSQL), with the same webhook-id, its attempts counted
// on.
func TestSurvivesRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		open := b.Database(t)
		var fail atomic.Bool
		fail.Store(true)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if fail.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		e := newEnv(t, open(t, dbtest.Logger(t)), nil)
		msg, job := e.enqueue("key_a", rc.URL)
		l := e.drive("key_a", job, "a first attempt", func(l Log) bool { return len(l.Attempts) == 1 })
		e.stop()
		if err := e.db.Close(); err != nil {
			t.Fatal(err)
		}

		fail.Store(false)
		next := &env{t: t, db: open(t, dbtest.Logger(t)), clk: e.clk, log: e.log}
		next.start(nil)
		next.clk.Set(l.Attempts[0].NextAttemptAt)
		l = next.final("key_a", job)
		if l.State != "delivered" || len(l.Attempts) != 2 || l.Attempts[1].Number != 2 || l.MessageID != msg.ID {
			t.Fatalf("after the restart: %s", describe(l))
		}
		reqs := rc.Requests()
		if len(reqs) != 2 || reqs[1].Header.Get(webhooks.HeaderID) != msg.ID {
			t.Errorf("%d requests; the retry must carry webhook-id %s", len(reqs), msg.ID)
		}
	})
}

// TestCutAttemptDoesNotCount: an attempt cut short by a stop is not
// recorded, and the next process makes it again.
func TestCutAttemptDoesNotCount(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		arrived := make(chan struct{}, 4)
		var hang atomic.Bool
		hang.Store(true)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			if hang.Load() {
				arrived <- struct{}{}
				<-r.Context().Done()
			}
		})
		e := newEnv(t, db, func(c *Config) { c.AttemptTimeout = time.Minute })
		_, job := e.enqueue("key_a", rc.URL)
		select {
		case <-arrived:
		case <-time.After(dbtest.Wait):
			t.Fatal("no attempt arrived")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = e.queue.Stop(ctx) // graceful part runs out: the attempt is cancelled
		if l := e.logOf("key_a", job); len(l.Attempts) != 0 || l.State != StateSending {
			t.Fatalf("a cut attempt was recorded: %s", describe(l))
		}
		hang.Store(false)
		e.start(nil)
		if l := e.final("key_a", job); l.State != "delivered" || len(l.Attempts) != 1 || l.Attempts[0].Number != 1 {
			t.Fatalf("after the restart: %s", describe(l))
		}
	})
}

// TestRecover: a message whose River job is gone (River gave up after
// repeated errors, or it was deleted) gets a new one.
func TestRecover(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		var fail atomic.Bool
		fail.Store(true)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if fail.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		e := newEnv(t, db, nil)
		_, job := e.enqueue("key_a", rc.URL)
		l := e.drive("key_a", job, "a first attempt", func(l Log) bool { return len(l.Attempts) == 1 })
		e.stop()
		dbtest.Exec(t, db, `DELETE FROM river_job WHERE kind = 'accepted_webhook'`)
		fail.Store(false)
		e.start(nil)
		e.clk.Set(l.Attempts[0].NextAttemptAt)
		time.Sleep(50 * time.Millisecond)
		if l := e.logOf("key_a", job); len(l.Attempts) != 1 {
			t.Fatalf("an attempt without a River job: %s", describe(l))
		}
		if err := e.o.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := e.o.Recover(context.Background()); err != nil { // nothing left to do
			t.Fatal(err)
		}
		if l := e.final("key_a", job); l.State != "delivered" || len(l.Attempts) != 2 {
			t.Fatalf("after Recover: %s", describe(l))
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM river_job WHERE kind = 'accepted_webhook'`); n != 1 {
			t.Errorf("%d River jobs after two Recovers, want 1", n)
		}
	})
}

// TestSweep forgets what is past its retention, and nothing else.
func TestSweep(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		ok := newReceiver(t, status(http.StatusNoContent))
		slow := newReceiver(t, status(http.StatusServiceUnavailable))
		gone := newReceiver(t, status(http.StatusGone))
		e := newEnv(t, db, func(c *Config) {
			c.Retention = time.Hour
			c.Schedule = []time.Duration{0, 2 * time.Hour}
			c.MaxRetryAfter = time.Minute
		})
		_, done := e.enqueue("key_a", ok.URL)
		e.final("key_a", done)
		_, off := e.enqueue("key_a", gone.URL)
		e.final("key_a", off)
		_, pending := e.enqueue("key_a", slow.URL)
		e.drive("key_a", pending, "a first attempt", func(l Log) bool { return len(l.Attempts) == 1 })
		e.stop() // the clock jumps below: no more attempts
		e.clk.Advance(time.Hour + time.Minute)
		if err := e.o.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := e.o.Log(ctx, "key_a", done); found {
			t.Error("a delivered message past its retention was kept")
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM webhook_attempts a LEFT JOIN webhook_messages m ON m.id = a.message_id WHERE m.id IS NULL`); n != 0 {
			t.Errorf("%d attempts of forgotten messages kept", n)
		}
		if l, found, _ := e.o.Log(ctx, "key_a", pending); !found || l.State != StateSending {
			t.Error("a pending message was forgotten")
		}
		if _, disabled, _ := e.o.Disabled(ctx, "key_a", gone.URL); !disabled {
			t.Error("a disabled endpoint was forgotten while a message sent before its 410 could still be retrying")
		}
		e.clk.Advance(2*time.Hour + 2*time.Minute)
		if err := e.o.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if _, disabled, _ := e.o.Disabled(ctx, "key_a", gone.URL); disabled {
			t.Error("a disabled endpoint was kept past its retention and the schedule")
		}
	})
}

func TestNewConfig(t *testing.T) {
	db := dbtest.Backends()[0].Open(t, dbtest.Logger(t))
	secrets := func(context.Context, string) ([]string, error) { return nil, nil }
	base := Config{DB: db, Client: loopbackClient(), Secrets: secrets, Logger: slog.New(slog.DiscardHandler)}
	if _, err := New(base); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no db":          func(c *Config) { c.DB = nil },
		"no client":      func(c *Config) { c.Client = nil },
		"no secrets":     func(c *Config) { c.Secrets = nil },
		"negative scale": func(c *Config) { c.TimeScale = -1 },
		"empty schedule": func(c *Config) { c.Schedule = []time.Duration{} },
		"jitter ≥ 1":     func(c *Config) { c.JitterFraction = 1 },
		"negative bound": func(c *Config) { c.MaxPending = -1 },
	} {
		cfg := base
		mod(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
