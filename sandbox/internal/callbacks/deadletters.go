package callbacks

import (
	"context"

	"github.com/accepted-dev/accepted/sandbox/internal/outbox"
)

// DeadLetters answers a page of owner's webhooks that gave up, newest
// first (see outbox.DeadLetters), and whether more follow.
func (s *Service) DeadLetters(ctx context.Context, owner string, after outbox.DeadCursor, limit int) ([]outbox.DeadLetter, bool, error) {
	return s.cfg.Outbox.DeadLetters(ctx, owner, after, limit)
}
