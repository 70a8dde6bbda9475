package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Depth answers, for every owner together, how many messages are still
// being delivered (an attempt due, under way, or waiting for its retry)
// and how many gave up: failed after the last attempt, or to an endpoint
// disabled by 410 Gone. Those dead letters are kept for Retention, each
// with its delivery log, and can be redelivered.
func (o *Outbox) Depth(ctx context.Context) (pending, dead int, err error) {
	rows, err := o.cfg.DB.Read().Query(ctx, `SELECT state, COUNT(*) FROM webhook_messages GROUP BY state`)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: counting messages: %w", err)
	}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			_ = rows.Close()
			return 0, 0, fmt.Errorf("outbox: counting messages: %w", err)
		}
		switch state {
		case StateSending:
			pending = n
		case webhooks.OutcomeFailed, webhooks.OutcomeDisabled:
			dead += n
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, 0, fmt.Errorf("outbox: counting messages: %w", err)
	}
	return pending, dead, nil
}
