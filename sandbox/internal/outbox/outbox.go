// Package outbox delivers webhooks durably. A message is written to the
// database in the caller's transaction (the one that ends a job, so a job's
// end and its webhook commit together or not at all), with a River job
// that delivers it: one attempt per run, then a snooze until the next
// attempt on the Standard Webhooks schedule. A restart or a dead replica
// delays a webhook, never drops it, and every attempt carries the same
// webhook-id.
//
// What an answer means:
//   - 2xx: delivered.
//   - 410 Gone: the endpoint (an owner's URL) is disabled: no further
//     attempts for this message or any other to it until Enable (or a
//     Redeliver, which enables it).
//   - 3xx: a failure, never followed (the Location goes in the error).
//   - 429, 5xx, timeouts, connection errors, and every other 4xx: retried on
//     the schedule. Standard Webhooks treats any non-2xx as a failed attempt
//     and only 410 as a reason to stop; a 400 or 401 is usually a receiver's
//     bug or a secret mid-rotation, which a later attempt may get past.
//   - An address refused by safedial: failed at once; retrying cannot fix a
//     callback that points into a private network.
//
// A Retry-After (seconds or HTTP-date) longer than the next scheduled delay
// replaces it, capped by MaxRetryAfter.
package outbox

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Queue is the River queue deliveries (and the outbox's maintenance) run
// in; the River client must run it.
const Queue = "webhooks"

// StateSending is a message's state while an attempt is due or under way;
// the final states are webhooks.OutcomeDelivered, OutcomeFailed and
// OutcomeDisabled.
const StateSending = "sending"

// ErrNotSent is returned for a job that has no message (yet).
var ErrNotSent = errors.New("no webhook message for this job")

// Clock is what the outbox needs of the sandbox clock: it stamps attempts
// and decides when the next one is due.
type Clock interface{ Now() time.Time }

// Config configures an Outbox. DB, Client and Secrets are required.
type Config struct {
	DB sqldb.DB
	// Client sends the requests. Build it with safedial so addresses are
	// checked at connect time. Redirects are never followed, whatever
	// Client.CheckRedirect says.
	Client *http.Client
	// Secrets answers the owner's active signing secrets, current first;
	// each attempt is signed with them afresh.
	Secrets func(ctx context.Context, owner string) ([]string, error)
	Clock   Clock // the wall clock when nil
	Logger  *slog.Logger

	// TimeScale multiplies every delay: the schedule, Retry-After and the
	// attempt timeout. 1 (the default when 0) is real time; 0.001 turns
	// the 76-hour schedule into 76 seconds.
	TimeScale float64
	// Schedule is the delay before each attempt; the first is usually 0.
	// webhooks.StandardSchedule when nil.
	Schedule []time.Duration
	// JitterFraction spreads each retry delay uniformly within ±fraction:
	// 0.1 when 0, none when negative.
	JitterFraction float64
	// Rand is the jitter source; seed it in tests. A randomly seeded PCG
	// when nil. The outbox serialises its use.
	Rand *rand.Rand
	// MaxRetryAfter caps a receiver's Retry-After (before scaling), so a
	// receiver cannot park a message forever. 24 h when 0.
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds one attempt, from dialling to the response
	// headers; it is scaled too but never below MinAttemptTimeout.
	// 10 s and 250 ms when 0.
	AttemptTimeout, MinAttemptTimeout time.Duration
	// MaxPendingPerOwner and MaxPending bound the messages still being
	// delivered (including those waiting hours for a retry), of one owner
	// and of all (1,000 and 10,000 when 0); MaxPendingPerNetwork those of
	// one network's owners together (a fifth of MaxPending when 0). A
	// message beyond them is stored as failed, not sent, with the reason in
	// its delivery log: the job that produced it still ends. At MaxPending
	// a light owner is still served, into PendingReserve more (a tenth of
	// MaxPending when 0): one with fewer than GuaranteedPerOwner pending
	// (5 when 0) whose network has fewer than GuaranteedPerNetwork (4 ×
	// GuaranteedPerOwner when 0). See shares.go.
	MaxPendingPerOwner, MaxPending           int
	MaxPendingPerNetwork, PendingReserve     int
	GuaranteedPerOwner, GuaranteedPerNetwork int
	// MaxInFlightPerEndpoint and MaxInFlightPerNetwork bound the attempts
	// under way at once on this replica to one endpoint (a URL's host) and
	// for the owners of one network (4 and 8 when 0), so a receiver that
	// hangs until the attempt timeout holds that many delivery workers at
	// most; a message over them waits BusyWait (500 ms when 0) without
	// counting an attempt.
	MaxInFlightPerEndpoint, MaxInFlightPerNetwork int
	BusyWait                                      time.Duration
	// MaxSnooze is the longest a delivery waits before it looks at the
	// clock again; 0 waits for the whole delay, which is right for the
	// wall clock. A fake clock's time only moves when a test moves it, so
	// tests set a short one.
	MaxSnooze time.Duration
	// Retention is how long a message is kept once final, for its
	// delivery log (24 h when 0); the job it reports on is no longer
	// readable by then. An endpoint disabled by a 410 is forgotten after
	// Retention plus the (scaled) schedule.
	Retention time.Duration
	// MaxAttemptsLogged bounds one message's delivery log, newest kept
	// (100 when 0): manual redeliveries could grow it without end.
	MaxAttemptsLogged int
	UserAgent         string // "Accepted-Webhooks/1" when empty
	// Name is how logs name an endpoint, so it must hold no secret: a
	// URL's query string or user info often carries a token, an inbox
	// URL its credential. webhooks.RedactURL when nil.
	Name func(url string) string
	// OnAttempt, when set, is told of every attempt recorded (after its
	// transaction committed), for metrics.
	OnAttempt func(a webhooks.Attempt)
}

// Outbox stores webhooks and delivers them on River.
type Outbox struct {
	cfg    Config
	sender *webhooks.Sender
	log    *slog.Logger

	randMu sync.Mutex

	inflightMu sync.Mutex
	inflight   map[string]int // attempts under way, per endpoint and per network
}

// New checks cfg and returns an outbox. Register its River workers and
// periodic jobs on the River client of cfg.DB.
func New(cfg Config) (*Outbox, error) {
	if cfg.DB == nil || cfg.Client == nil || cfg.Secrets == nil {
		return nil, errors.New("outbox: Config needs a DB, a Client and Secrets")
	}
	if cfg.TimeScale < 0 {
		return nil, fmt.Errorf("outbox: negative time scale %v", cfg.TimeScale)
	}
	cfg.TimeScale = cmp.Or(cfg.TimeScale, 1)
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Schedule == nil {
		cfg.Schedule = webhooks.StandardSchedule()
	}
	if len(cfg.Schedule) == 0 {
		return nil, errors.New("outbox: empty retry schedule")
	}
	cfg.Schedule = slices.Clone(cfg.Schedule)
	switch {
	case cfg.JitterFraction == 0:
		cfg.JitterFraction = 0.1
	case cfg.JitterFraction < 0:
		cfg.JitterFraction = 0
	case cfg.JitterFraction >= 1:
		return nil, fmt.Errorf("outbox: jitter fraction %v must be below 1", cfg.JitterFraction)
	}
	if cfg.Rand == nil {
		var seed [16]byte
		_, _ = crand.Read(seed[:])
		cfg.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	cfg.MaxRetryAfter = cmp.Or(cfg.MaxRetryAfter, 24*time.Hour)
	cfg.AttemptTimeout = cmp.Or(cfg.AttemptTimeout, 10*time.Second)
	cfg.MinAttemptTimeout = cmp.Or(cfg.MinAttemptTimeout, 250*time.Millisecond)
	cfg.MaxPendingPerOwner = cmp.Or(cfg.MaxPendingPerOwner, 1000)
	cfg.MaxPending = cmp.Or(cfg.MaxPending, 10_000)
	cfg.MaxPendingPerNetwork = cmp.Or(cfg.MaxPendingPerNetwork, max(cfg.MaxPending/5, 1))
	cfg.PendingReserve = cmp.Or(cfg.PendingReserve, cfg.MaxPending/10)
	cfg.GuaranteedPerOwner = cmp.Or(cfg.GuaranteedPerOwner, 5)
	cfg.GuaranteedPerNetwork = cmp.Or(cfg.GuaranteedPerNetwork, 4*cfg.GuaranteedPerOwner)
	cfg.MaxInFlightPerEndpoint = cmp.Or(cfg.MaxInFlightPerEndpoint, 4)
	cfg.MaxInFlightPerNetwork = cmp.Or(cfg.MaxInFlightPerNetwork, 8)
	cfg.BusyWait = cmp.Or(cfg.BusyWait, 500*time.Millisecond)
	cfg.Retention = cmp.Or(cfg.Retention, 24*time.Hour)
	cfg.MaxAttemptsLogged = cmp.Or(cfg.MaxAttemptsLogged, 100)
	if cfg.MaxPendingPerOwner < 0 || cfg.MaxPending < 0 || cfg.MaxSnooze < 0 || cfg.Retention < 0 || cfg.MaxAttemptsLogged < 0 ||
		cfg.MaxPendingPerNetwork < 0 || cfg.PendingReserve < 0 || cfg.GuaranteedPerOwner < 0 || cfg.GuaranteedPerNetwork < 0 ||
		cfg.MaxInFlightPerEndpoint < 0 || cfg.MaxInFlightPerNetwork < 0 || cfg.BusyWait < 0 {
		return nil, errors.New("outbox: negative bound in Config")
	}
	if cfg.Name == nil {
		cfg.Name = webhooks.RedactURL
	}
	return &Outbox{cfg: cfg, sender: webhooks.NewSender(cfg.Client, cfg.UserAgent), log: cfg.Logger, inflight: map[string]int{}}, nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Webhook is a message to deliver, and to whom.
type Webhook struct {
	// Owner is whose secrets sign it and whose endpoint it goes to: a
	// 410 disables URL for this owner only.
	Owner string
	// Network is the owner's network: pending messages are shared per
	// network too. "" has no share.
	Network string
	URL     string
	// JobID is the job it reports on: one message per job.
	JobID   string
	Message webhooks.Message
}

// Enqueue stores w and queues its first attempt, in tx: both commit with
// whatever else tx writes, or neither does. It fails only when the
// database does: a message that cannot be sent (a payload too large, the
// owner's share of pending messages used up) is stored as failed with the
// reason as its one attempt, so its delivery log says why.
func (o *Outbox) Enqueue(ctx context.Context, tx sqldb.Tx, w Webhook) error {
	now := o.cfg.Clock.Now()
	payload, err := w.Message.Payload()
	notSent := ""
	if err != nil {
		notSent, payload = err.Error(), []byte{}
	} else if notSent, err = o.full(ctx, tx, w.Owner, w.Network); err != nil {
		return err
	}
	state := StateSending
	if notSent != "" {
		state = webhooks.OutcomeFailed
	}
	n, err := tx.Exec(ctx, `INSERT INTO webhook_messages (id, owner, network, job_id, url, type, payload, created_at, state, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
		w.Message.ID, w.Owner, w.Network, w.JobID, w.URL, w.Message.Type, payload, sqldb.Nanos(now), state, sqldb.Nanos(now))
	if err != nil {
		return fmt.Errorf("outbox: storing %s: %w", w.Message.ID, err)
	}
	if n == 0 {
		o.log.Warn("outbox: job already has a webhook message; not queued again", "job", w.JobID, "msg_id", w.Message.ID)
		return nil
	}
	if notSent != "" {
		o.log.Warn("webhook not sent", "msg_id", w.Message.ID, "job", w.JobID, "endpoint", o.cfg.Name(w.URL), "reason", notSent)
		_, err := o.record(ctx, tx, webhooks.Attempt{MessageID: w.Message.ID, EventType: w.Message.Type, Number: 1, At: now, URL: w.URL,
			Final: true, Outcome: webhooks.OutcomeFailed, Error: "not sent: " + notSent})
		return err
	}
	opts := insertOpts
	if first := o.scale(o.cfg.Schedule[0]); first > 0 {
		opts.ScheduledAt = time.Now().Add(first)
		if _, err := tx.Exec(ctx, `UPDATE webhook_messages SET next_at = ? WHERE id = ?`, sqldb.Nanos(now.Add(first)), w.Message.ID); err != nil {
			return fmt.Errorf("outbox: storing %s: %w", w.Message.ID, err)
		}
	}
	return o.queue(ctx, tx, w.Message.ID, &opts)
}

// queue inserts the River job that delivers message id, in tx, and names
// it on the message: a run of any other River job for it is stale.
func (o *Outbox) queue(ctx context.Context, tx sqldb.Tx, id string, opts *river.InsertOpts) error {
	res, err := tx.Queue().Insert(ctx, deliverArgs{MessageID: id}, opts)
	if err != nil {
		return fmt.Errorf("outbox: queueing %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_messages SET river_id = ? WHERE id = ?`, res.Job.ID, id); err != nil {
		return fmt.Errorf("outbox: queueing %s: %w", id, err)
	}
	return nil
}

// message is a row of webhook_messages.
type message struct {
	id, owner, network, jobID, url, typ, state string
	payload                                    []byte
	attempts                                   int
	nextAt                                     time.Time
	manual                                     bool
	riverID                                    int64
}

const messageColumns = `id, owner, job_id, url, type, payload, state, attempts, next_at, manual, river_id, network`

func scanMessage(r sqldb.Row) (message, error) {
	var m message
	var next int64
	var manual int
	err := r.Scan(&m.id, &m.owner, &m.jobID, &m.url, &m.typ, &m.payload, &m.state, &m.attempts, &next, &manual, &m.riverID, &m.network)
	m.nextAt, m.manual = sqldb.Time(next), manual == 1
	return m, err
}

// Log is what became of a message: the delivery log of its job.
type Log struct {
	MessageID, EventType, URL string
	// State is StateSending while an attempt is due or under way, then
	// the last attempt's outcome.
	State    string
	Attempts []webhooks.Attempt // oldest first
}

// Log answers the message of owner's job, and whether there is one.
func (o *Outbox) Log(ctx context.Context, owner, jobID string) (Log, bool, error) {
	m, err := scanMessage(o.cfg.DB.Read().QueryRow(ctx, `SELECT `+messageColumns+` FROM webhook_messages WHERE job_id = ?`, jobID))
	if errors.Is(err, sqldb.ErrNoRows) || err == nil && m.owner != owner {
		return Log{}, false, nil
	}
	if err != nil {
		return Log{}, false, fmt.Errorf("outbox: reading the message of %s: %w", jobID, err)
	}
	l := Log{MessageID: m.id, EventType: m.typ, URL: m.url, State: m.state, Attempts: []webhooks.Attempt{}}
	rows, err := o.cfg.DB.Read().Query(ctx, `SELECT doc FROM webhook_attempts WHERE message_id = ? ORDER BY seq`, m.id)
	if err != nil {
		return Log{}, false, fmt.Errorf("outbox: reading the attempts of %s: %w", m.id, err)
	}
	for rows.Next() {
		var doc []byte
		var a webhooks.Attempt
		if err := rows.Scan(&doc); err != nil {
			_ = rows.Close()
			return Log{}, false, fmt.Errorf("outbox: reading the attempts of %s: %w", m.id, err)
		}
		if err := json.Unmarshal(doc, &a); err != nil {
			_ = rows.Close()
			return Log{}, false, fmt.Errorf("outbox: reading an attempt of %s: %w", m.id, err)
		}
		l.Attempts = append(l.Attempts, a)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return Log{}, false, fmt.Errorf("outbox: reading the attempts of %s: %w", m.id, err)
	}
	return l, true, nil
}

// Disabled reports whether owner's url answered 410 Gone, and when.
func (o *Outbox) Disabled(ctx context.Context, owner, url string) (time.Time, bool, error) {
	var at int64
	err := o.cfg.DB.Read().QueryRow(ctx, `SELECT disabled_at FROM webhook_endpoints WHERE owner = ? AND url = ?`, owner, url).Scan(&at)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("outbox: reading an endpoint: %w", err)
	}
	return sqldb.Time(at), true, nil
}

// Enable lets deliveries to owner's url resume after a 410 Gone.
func (o *Outbox) Enable(ctx context.Context, owner, url string) error {
	err := o.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE owner = ? AND url = ?`, owner, url)
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: enabling an endpoint: %w", err)
	}
	return nil
}

// Redeliver sends the message of owner's job again, with the same id, as
// a manual redelivery: one attempt, recorded with Manual set and Number 1,
// and no automatic retries (the developer asked for it and watches the
// result; a fresh 76-hour schedule per click would multiply traffic). It
// enables the endpoint if a 410 disabled it. It answers the message id, and
// refuses with webhooks.ErrAlreadyPending while an attempt is due or under
// way (automatic or manual), with ErrNotSent when the job has no message.
func (o *Outbox) Redeliver(ctx context.Context, owner, jobID string) (string, error) {
	var id string
	err := o.cfg.DB.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		q := `SELECT ` + messageColumns + ` FROM webhook_messages WHERE job_id = ?`
		if o.cfg.DB.Dialect() == sqldb.Postgres {
			q += ` FOR UPDATE`
		}
		m, err := scanMessage(tx.QueryRow(ctx, q, jobID))
		if errors.Is(err, sqldb.ErrNoRows) || err == nil && m.owner != owner {
			return ErrNotSent
		}
		if err != nil {
			return err
		}
		id = m.id
		if m.state == StateSending {
			return webhooks.ErrAlreadyPending
		}
		if len(m.payload) == 0 {
			// Stored unsendable (a payload refused when it was made).
			return fmt.Errorf("%w: message %s was never sendable", ErrNotSent, m.id)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE owner = ? AND url = ?`, m.owner, m.url); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_messages SET state = ?, manual = 1, next_at = 0, updated_at = ? WHERE id = ?`,
			StateSending, sqldb.Nanos(o.cfg.Clock.Now()), m.id); err != nil {
			return err
		}
		return o.queue(ctx, tx, m.id, &insertOpts)
	})
	switch {
	case errors.Is(err, webhooks.ErrAlreadyPending):
		return id, fmt.Errorf("%w: %s", webhooks.ErrAlreadyPending, id)
	case errors.Is(err, ErrNotSent):
		return id, err
	case err != nil:
		return id, fmt.Errorf("outbox: redelivering the webhook of %s: %w", jobID, err)
	}
	o.log.Debug("webhook redelivery queued", "msg_id", id, "job", jobID)
	return id, nil
}

// record writes attempt a to the delivery log of its message, keeping the
// newest MaxAttemptsLogged, and answers its sequence number.
func (o *Outbox) record(ctx context.Context, tx sqldb.Tx, a webhooks.Attempt) (int, error) {
	doc, err := json.Marshal(a)
	if err != nil {
		return 0, fmt.Errorf("outbox: encoding an attempt: %w", err)
	}
	var seq int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_attempts WHERE message_id = ?`, a.MessageID).Scan(&seq); err != nil {
		return 0, fmt.Errorf("outbox: numbering an attempt: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (message_id, seq, doc) VALUES (?, ?, ?)`, a.MessageID, seq, doc); err != nil {
		return 0, fmt.Errorf("outbox: recording an attempt: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM webhook_attempts WHERE message_id = ? AND seq <= ?`, a.MessageID, seq-o.cfg.MaxAttemptsLogged); err != nil {
		return 0, fmt.Errorf("outbox: trimming the delivery log: %w", err)
	}
	return seq, nil
}

func (o *Outbox) scale(t time.Duration) time.Duration {
	return time.Duration(float64(t) * o.cfg.TimeScale)
}

// nextDelay is the wait after failed attempt n: the schedule's next step,
// scaled and jittered, or the receiver's Retry-After (capped, scaled) when
// that is longer.
func (o *Outbox) nextDelay(n int, retryAfter time.Duration) time.Duration {
	delay := o.scale(o.cfg.Schedule[n])
	if f := o.cfg.JitterFraction; f > 0 && delay > 0 {
		o.randMu.Lock()
		u := o.cfg.Rand.Float64()
		o.randMu.Unlock()
		delay = time.Duration(float64(delay) * (1 + f*(2*u-1)))
	}
	return max(delay, o.scale(min(retryAfter, o.cfg.MaxRetryAfter)))
}

func (o *Outbox) attemptTimeout() time.Duration {
	return max(o.scale(o.cfg.AttemptTimeout), o.cfg.MinAttemptTimeout)
}

// failingAfter is how many failed attempts in a row make a message's
// endpoint "repeatedly failing": its next attempts get a quarter of the
// timeout, so a receiver that hangs holds a worker for less.
const failingAfter = 3

// timeoutFor is the timeout of attempt number n of a message.
func (o *Outbox) timeoutFor(n int) time.Duration {
	if n > failingAfter {
		return max(o.attemptTimeout()/4, o.cfg.MinAttemptTimeout)
	}
	return o.attemptTimeout()
}
