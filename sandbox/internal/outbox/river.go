package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// deliverArgs is the River job that delivers one message: one attempt per
// run, snoozing in between so that a message waiting hours for its retry
// holds no worker.
type deliverArgs struct {
	MessageID string `json:"message_id"`
}

func (deliverArgs) Kind() string { return "accepted_webhook" }

// insertOpts: River's own attempts count errors of the outbox (a database
// that did not answer), not delivery attempts: snoozes do not count.
var insertOpts = river.InsertOpts{Queue: Queue, MaxAttempts: 20}

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	o *Outbox
}

func (w *deliverWorker) Work(ctx context.Context, rj *river.Job[deliverArgs]) error {
	return w.o.attempt(ctx, rj.ID, rj.Args.MessageID)
}

// Timeout bounds one run: one attempt, and the two transactions around it.
func (w *deliverWorker) Timeout(*river.Job[deliverArgs]) time.Duration {
	return w.o.attemptTimeout() + 10*time.Second
}

// NextRetry paces runs that failed (the database, not the receiver):
// 1 s, 2 s, 4 s … up to 5 min.
func (w *deliverWorker) NextRetry(rj *river.Job[deliverArgs]) time.Time {
	return time.Now().Add(min(time.Second<<min(max(rj.Attempt-1, 0), 9), 5*time.Minute))
}

// maintenanceArgs runs Recover and the janitor; periodic, on the leader.
type maintenanceArgs struct{}

func (maintenanceArgs) Kind() string { return "accepted_webhook_maintenance" }

type maintenanceWorker struct {
	river.WorkerDefaults[maintenanceArgs]
	o *Outbox
}

func (w *maintenanceWorker) Work(ctx context.Context, _ *river.Job[maintenanceArgs]) error {
	return errors.Join(w.o.Recover(ctx), w.o.Sweep(ctx))
}

// MaintainEvery is how often the leader looks for messages whose River job
// is gone, and for messages past their retention.
const MaintainEvery = 30 * time.Second

// Register adds the outbox's workers to workers.
func (o *Outbox) Register(workers *river.Workers) error {
	for _, err := range []error{
		river.AddWorkerSafely(workers, &deliverWorker{o: o}),
		river.AddWorkerSafely(workers, &maintenanceWorker{o: o}),
	} {
		if err != nil {
			return fmt.Errorf("outbox: registering River workers: %w", err)
		}
	}
	return nil
}

// PeriodicJobs are the outbox's maintenance, which River's leader inserts
// every MaintainEvery.
func (o *Outbox) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(MaintainEvery),
		func() (river.JobArgs, *river.InsertOpts) {
			return maintenanceArgs{}, &river.InsertOpts{Queue: Queue, MaxAttempts: 1}
		},
		&river.PeriodicJobOpts{ID: "accepted_webhook_maintenance"})}
}

// attempt makes one attempt at message id for its River job riverID, then
// records it and what it changes in one transaction, outside of which the
// request is made. It answers a snooze until the next attempt, nil when
// the message is final (or this run is stale), or an error for River to
// retry the run (the attempt then did not count).
func (o *Outbox) attempt(ctx context.Context, riverID int64, id string) error {
	m, err := scanMessage(o.cfg.DB.Read().QueryRow(ctx, `SELECT `+messageColumns+` FROM webhook_messages WHERE id = ?`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil // forgotten
	}
	if err != nil {
		return fmt.Errorf("outbox: reading %s: %w", id, err)
	}
	if m.state != StateSending || m.riverID != riverID {
		return nil // delivered, or another River job delivers it now
	}
	now := o.cfg.Clock.Now()
	if wait := m.nextAt.Sub(now); wait > 0 {
		return o.snooze(wait) // early: the clock is not River's, or MaxSnooze cut the wait
	}
	a := webhooks.Attempt{MessageID: m.id, EventType: m.typ, Number: m.attempts + 1, At: now, URL: m.url, Manual: m.manual}
	if m.manual {
		a.Number = 1
	}
	disabledAt, disabled, err := o.Disabled(ctx, m.owner, m.url)
	if err != nil {
		return err
	}
	var res webhooks.Result
	if disabled {
		res.Err = "not sent: the endpoint was disabled after answering 410 Gone at " + disabledAt.UTC().Format(time.RFC3339)
	} else {
		// A share of the workers per endpoint and per network: over it,
		// the message waits its turn without counting an attempt.
		release, ok := o.acquire(m.url, m.network)
		if !ok {
			return o.snooze(o.busyWait())
		}
		defer release()
		secrets, err := o.cfg.Secrets(ctx, m.owner)
		if err != nil {
			return fmt.Errorf("outbox: the signing secrets of %s: %w", m.owner, err)
		}
		signer, err := webhooks.NewSigner(secrets...)
		if err != nil {
			res.Err = "not sent: " + err.Error()
		} else {
			res = o.sender.Send(ctx, webhooks.Request{URL: m.url, ID: m.id, At: now, Payload: m.payload, Signer: signer, Timeout: o.timeoutFor(a.Number)})
		}
		if res.Canceled {
			// Stopping: the attempt does not count; River runs it again.
			return fmt.Errorf("outbox: attempt at %s cut short: %w", m.id, context.Cause(ctx))
		}
	}
	a.StatusCode, a.Latency, a.Error = res.Status, res.Latency, res.Err
	var delay time.Duration
	last := m.manual || a.Number >= len(o.cfg.Schedule)
	switch {
	case disabled:
		a.Outcome, a.Final = webhooks.OutcomeDisabled, true
	case res.Delivered():
		a.Outcome, a.Final = webhooks.OutcomeDelivered, true
	case res.Status == http.StatusGone:
		a.Outcome, a.Final = webhooks.OutcomeDisabled, true
		a.Error = "410 Gone: the endpoint is disabled and gets no more deliveries until it is enabled again"
	case res.Blocked || last:
		a.Outcome, a.Final = webhooks.OutcomeFailed, true
	default:
		a.Outcome = webhooks.OutcomeRetrying
		delay = o.nextDelay(a.Number, res.RetryAfter)
		a.NextAttemptAt = a.At.Add(delay)
	}
	stale := false
	err = o.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		state, attempts := StateSending, m.attempts
		if a.Final {
			state = a.Outcome
		}
		if !m.manual {
			attempts = a.Number
		}
		// Guarded by what was read: a run that lost a race with another
		// (a rescued River job on a replica that was thought dead) records
		// nothing.
		n, err := tx.Exec(ctx, `UPDATE webhook_messages SET state = ?, attempts = ?, next_at = ?, last_error = ?, updated_at = ?, manual = ?
			WHERE id = ? AND river_id = ? AND state = ? AND attempts = ? AND manual = ?`,
			state, attempts, sqldb.Nanos(a.NextAttemptAt), a.Error, sqldb.Nanos(now), sqldb.Bool(m.manual && !a.Final),
			m.id, riverID, StateSending, m.attempts, sqldb.Bool(m.manual))
		if err != nil {
			return err
		}
		if n == 0 {
			stale = true
			return nil
		}
		if _, err := o.record(ctx, tx, a); err != nil {
			return err
		}
		if res.Status == http.StatusGone && !disabled {
			_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (owner, url, disabled_at) VALUES (?, ?, ?)
				ON CONFLICT (owner, url) DO UPDATE SET disabled_at = excluded.disabled_at`, m.owner, m.url, sqldb.Nanos(now))
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: recording an attempt at %s: %w", m.id, err)
	}
	if stale {
		o.log.Warn("outbox: an attempt raced another run of the same message and was not recorded", "msg_id", m.id)
		return nil
	}
	o.logAttempt(ctx, m, a)
	if o.cfg.OnAttempt != nil {
		o.cfg.OnAttempt(a)
	}
	if a.Final {
		return nil
	}
	return o.snooze(delay)
}

// busyWait is BusyWait with ±50% jitter, so messages waiting for one
// endpoint do not all come back at once.
func (o *Outbox) busyWait() time.Duration {
	o.randMu.Lock()
	u := o.cfg.Rand.Float64()
	o.randMu.Unlock()
	return time.Duration(float64(o.cfg.BusyWait) * (0.5 + u))
}

func (o *Outbox) snooze(d time.Duration) error {
	if o.cfg.MaxSnooze > 0 {
		d = min(d, o.cfg.MaxSnooze)
	}
	return river.JobSnooze(max(d, 0))
}

func (o *Outbox) logAttempt(ctx context.Context, m message, a webhooks.Attempt) {
	level := slog.LevelDebug
	switch a.Outcome {
	case webhooks.OutcomeRetrying:
		level = slog.LevelInfo
	case webhooks.OutcomeFailed, webhooks.OutcomeDisabled:
		level = slog.LevelWarn
	}
	o.log.Log(ctx, level, "webhook attempt", "msg_id", a.MessageID, "type", a.EventType, "job", m.jobID, "owner", m.owner,
		"endpoint", o.cfg.Name(m.url), "attempt", a.Number, "manual", a.Manual, "status", a.StatusCode, "latency", a.Latency,
		"outcome", a.Outcome, "error", a.Error)
}

// maintenanceBatch bounds one pass of Recover and Sweep.
const maintenanceBatch = 500

// Recover gives a River job to every message still being delivered whose
// River job is gone or finished (River gave up on it after repeated
// errors, or it was deleted): it resumes when its next attempt is due. The
// leader runs it every MaintainEvery.
func (o *Outbox) Recover(ctx context.Context) error {
	rows, err := o.cfg.DB.Read().Query(ctx, `SELECT m.id, m.river_id, m.next_at FROM webhook_messages m LEFT JOIN river_job r ON r.id = m.river_id
		WHERE m.state = 'sending' AND (r.id IS NULL OR r.state IN ('completed', 'discarded', 'cancelled')) LIMIT ?`, maintenanceBatch)
	if err != nil {
		return fmt.Errorf("outbox: listing orphaned messages: %w", err)
	}
	type orphan struct {
		id      string
		riverID int64
		next    time.Time
	}
	var list []orphan
	for rows.Next() {
		var x orphan
		var next int64
		if err := rows.Scan(&x.id, &x.riverID, &next); err != nil {
			_ = rows.Close()
			return fmt.Errorf("outbox: listing orphaned messages: %w", err)
		}
		x.next = sqldb.Time(next)
		list = append(list, x)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("outbox: listing orphaned messages: %w", err)
	}
	now := o.cfg.Clock.Now()
	for _, x := range list {
		err := o.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
			// Only if nothing changed since the listing.
			var still int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_messages WHERE id = ? AND state = ? AND river_id = ?`,
				x.id, StateSending, x.riverID).Scan(&still); err != nil || still == 0 {
				return err
			}
			opts := insertOpts
			if wait := x.next.Sub(now); wait > 0 {
				opts.ScheduledAt = time.Now().Add(wait)
			}
			return o.queue(ctx, tx, x.id, &opts)
		})
		if err != nil {
			return fmt.Errorf("outbox: requeueing %s: %w", x.id, err)
		}
		o.log.Info("webhook requeued: its River job was gone", "msg_id", x.id)
	}
	return nil
}

// Sweep forgets messages final for longer than Retention (their attempts
// go with them), and endpoints disabled longer than Retention plus the
// whole schedule, when no message sent before the 410 can still be trying.
func (o *Outbox) Sweep(ctx context.Context) error {
	now := o.cfg.Clock.Now()
	var span time.Duration
	for _, d := range o.cfg.Schedule {
		span += d
	}
	span = o.scale(span) + o.scale(o.cfg.MaxRetryAfter)*time.Duration(len(o.cfg.Schedule))
	err := o.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_messages WHERE id IN (SELECT id FROM webhook_messages
			WHERE state <> 'sending' AND updated_at < ? ORDER BY updated_at LIMIT ?)`,
			sqldb.Nanos(now.Add(-o.cfg.Retention)), maintenanceBatch); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE disabled_at < ?`, sqldb.Nanos(now.Add(-o.cfg.Retention-span)))
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: forgetting old messages: %w", err)
	}
	return nil
}
