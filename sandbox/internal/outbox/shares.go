package outbox

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// Fair shares of the outbox. Pending messages (still being delivered,
// retries included) are bounded per owner, per network and in all; at
// the global bound a light owner (few pending, in a light network) is
// still served, into a reserve, so that one visitor's undeliverable
// webhooks cannot refuse another's. Delivery workers are shared per
// endpoint and per network, on each replica: a receiver that hangs holds
// a few workers, never all of them.

// full says why owner (of network) may not have one more message pending,
// or "". Counting stops at each bound: the cost stays the same however
// many are pending.
func (o *Outbox) full(ctx context.Context, tx sqldb.Tx, owner, network string) (string, error) {
	count := func(where string, limit int, args ...any) (int, error) {
		var n int
		err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM webhook_messages WHERE state = 'sending'`+where+` LIMIT ?) AS p`,
			append(args, limit)...).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("outbox: counting pending messages: %w", err)
		}
		return n, nil
	}
	mine, err := count(` AND owner = ?`, o.cfg.MaxPendingPerOwner, owner)
	if err != nil {
		return "", err
	}
	if mine >= o.cfg.MaxPendingPerOwner {
		return fmt.Sprintf("%v: this API key has %d webhooks still being delivered (retries included), as many as one key may", webhooks.ErrQueueFull, mine), nil
	}
	ours := 0
	if network != "" {
		if ours, err = count(` AND network = ?`, o.cfg.MaxPendingPerNetwork, network); err != nil {
			return "", err
		}
		if ours >= o.cfg.MaxPendingPerNetwork {
			return fmt.Sprintf("%v: the API keys of your network (%s) have %d webhooks still being delivered, as many as one network may", webhooks.ErrQueueFull, network, ours), nil
		}
	}
	all, err := count(``, o.cfg.MaxPending+o.cfg.PendingReserve)
	if err != nil {
		return "", err
	}
	light := mine < o.cfg.GuaranteedPerOwner && ours < o.cfg.GuaranteedPerNetwork
	if all >= o.cfg.MaxPending+o.cfg.PendingReserve || all >= o.cfg.MaxPending && !light {
		return fmt.Sprintf("%v: the sandbox has %d webhooks still being delivered, as many as it holds (a key with fewer than %d pending is still served)",
			webhooks.ErrQueueFull, all, o.cfg.GuaranteedPerOwner), nil
	}
	return "", nil
}

// endpoint names a URL's host for the in-flight share: its scheme and
// host, lower case.
func endpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// acquire takes an in-flight slot for an attempt to raw's endpoint by an
// owner of network, unless either is at its share on this replica.
func (o *Outbox) acquire(raw, network string) (release func(), ok bool) {
	keys := []string{"e " + endpoint(raw)}
	limits := []int{o.cfg.MaxInFlightPerEndpoint}
	if network != "" {
		keys, limits = append(keys, "n "+network), append(limits, o.cfg.MaxInFlightPerNetwork)
	}
	o.inflightMu.Lock()
	defer o.inflightMu.Unlock()
	for i, k := range keys {
		if o.inflight[k] >= limits[i] {
			return nil, false
		}
	}
	for _, k := range keys {
		o.inflight[k]++
	}
	return func() {
		o.inflightMu.Lock()
		defer o.inflightMu.Unlock()
		for _, k := range keys {
			if o.inflight[k]--; o.inflight[k] <= 0 {
				delete(o.inflight, k)
			}
		}
	}, true
}

// InFlight is how many attempts are under way on this replica (for tests).
func (o *Outbox) InFlight(raw string) int {
	o.inflightMu.Lock()
	defer o.inflightMu.Unlock()
	return o.inflight["e "+endpoint(raw)]
}
