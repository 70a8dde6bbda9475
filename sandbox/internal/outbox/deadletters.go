package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// A dead letter is a message that gave up: its last attempt was final and
// not a delivery (no attempt left, an address refused, a 410 Gone), or it
// was stored as failed, never sent (over a share, a payload refused). It
// stays one until a redelivery sends it again, or Retention forgets it.

// DeadLetter is a message that gave up.
type DeadLetter struct {
	MessageID, EventType, JobID, URL string
	// State is webhooks.OutcomeFailed or OutcomeDisabled.
	State string
	// Attempts counts the automatic attempts made: 0 for a message never sent.
	Attempts int
	// GaveUpAt is when it became final.
	GaveUpAt time.Time
	// Last is the last line of its delivery log (the reason it was not
	// sent, for a message never sent); zero when the log is empty.
	Last webhooks.Attempt
	// Sendable: it has a payload a redelivery can send (a message stored
	// because its payload was refused has none).
	Sendable bool
}

// DeadCursor is a place in an owner's dead letters, newest first: the last
// one of the previous page.
type DeadCursor struct {
	GaveUpAt time.Time
	ID       string
}

// MaxDeadLetters bounds one page of DeadLetters.
const MaxDeadLetters = 100

// DeadLetters answers up to limit of owner's dead letters after the
// cursor, newest first, and whether more follow. They are ordered by
// (GaveUpAt, MessageID) descending and a page starts strictly after its
// cursor, so a message that gives up while a client pages cannot make
// another repeat or be skipped.
func (o *Outbox) DeadLetters(ctx context.Context, owner string, after DeadCursor, limit int) ([]DeadLetter, bool, error) {
	if limit < 1 || limit > MaxDeadLetters {
		return nil, false, fmt.Errorf("outbox: dead letters page of %d, want 1..%d", limit, MaxDeadLetters)
	}
	var q strings.Builder
	q.WriteString(`SELECT m.id, m.type, m.job_id, m.url, m.state, m.attempts, m.updated_at,
		CASE WHEN length(m.payload) > 0 THEN 1 ELSE 0 END,
		(SELECT a.doc FROM webhook_attempts a WHERE a.message_id = m.id ORDER BY a.seq DESC LIMIT 1)
		FROM webhook_messages m WHERE m.owner = ? AND m.state IN (?, ?)`)
	args := []any{owner, webhooks.OutcomeFailed, webhooks.OutcomeDisabled}
	if after.ID != "" {
		at := sqldb.Nanos(after.GaveUpAt)
		q.WriteString(` AND (m.updated_at < ? OR (m.updated_at = ? AND m.id < ?))`)
		args = append(args, at, at, after.ID)
	}
	q.WriteString(` ORDER BY m.updated_at DESC, m.id DESC LIMIT ?`)
	args = append(args, limit+1)
	rows, err := o.cfg.DB.Read().Query(ctx, q.String(), args...)
	if err != nil {
		return nil, false, fmt.Errorf("outbox: listing dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, limit)
	for rows.Next() {
		var (
			d        DeadLetter
			at       int64
			sendable int
			doc      []byte
		)
		if err := rows.Scan(&d.MessageID, &d.EventType, &d.JobID, &d.URL, &d.State, &d.Attempts, &at, &sendable, &doc); err != nil {
			_ = rows.Close()
			return nil, false, fmt.Errorf("outbox: listing dead letters: %w", err)
		}
		d.GaveUpAt, d.Sendable = sqldb.Time(at), sendable == 1
		if len(doc) > 0 {
			if err := json.Unmarshal(doc, &d.Last); err != nil {
				_ = rows.Close()
				return nil, false, fmt.Errorf("outbox: reading the last attempt of %s: %w", d.MessageID, err)
			}
		}
		out = append(out, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, false, fmt.Errorf("outbox: listing dead letters: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
