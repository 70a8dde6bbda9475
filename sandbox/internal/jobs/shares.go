package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Fair admission. The queue is shared by everyone who can mint a key, so
// what one visitor may hold is bounded three ways, each exact across
// replicas but the global one:
//
//  1. an owner (API key) holds at most MaxUnfinishedPerOwner unfinished
//     jobs, and its network (the /24 or /64 its key was minted from) at
//     most MaxUnfinishedPerNetwork: guarded updates of a per-owner and a
//     per-network row, in the job's own transaction (ErrOwnerBusy,
//     ErrNetworkBusy);
//  2. below QueueSize unfinished jobs in all, that is all;
//  3. at QueueSize the heaviest users are refused (ErrQueueFull), but a
//     light one is still admitted, into a Reserve on top of QueueSize: an
//     owner with fewer than GuaranteedPerOwner unfinished jobs whose
//     network has fewer than GuaranteedPerNetwork. A newcomer's first
//     jobs are so never refused because others filled the queue, and a
//     visitor who would use the reserve to flood needs a fresh network
//     for every GuaranteedPerNetwork jobs.
//
// River runs due steps by priority first: a job's priority is set from
// its owner's and its network's load when it is queued (again when it is
// requeued), so a newcomer's steps go before those of a key with
// thousands due.

// ErrNetworkBusy means the owner's network has as many unfinished jobs as
// one network may.
var ErrNetworkBusy = errors.New("network has too many unfinished jobs")

// ShareError is a refusal by one of the shares: Err is ErrOwnerBusy,
// ErrNetworkBusy or ErrQueueFull; Limit is the share that is used up
// (for ErrQueueFull, QueueSize) and Guaranteed, for ErrQueueFull, how many
// unfinished jobs a key may have and still be admitted to a full queue.
type ShareError struct {
	Err        error
	Limit      int
	Network    string
	Guaranteed int
}

func (e *ShareError) Error() string {
	return fmt.Sprintf("%v (limit %d)", e.Err, e.Limit)
}

func (e *ShareError) Unwrap() error { return e.Err }

// Defaults of the shares (see Config).
const (
	// DefaultGuaranteedPerOwner is how many unfinished jobs a key may have
	// and still be admitted to a full queue.
	DefaultGuaranteedPerOwner = 5
	// networkShareDivisor and networkShareFloor: see DefaultNetworkShare.
	networkShareDivisor = 5
	networkShareFloor   = 100
	// reserveDivisor: Reserve defaults to a tenth of QueueSize.
	reserveDivisor = 10
)

// DefaultNetworkShare is MaxUnfinishedPerNetwork by default: a fifth of
// the queue, so a visitor needs five networks to fill it; but at least
// 100 jobs (or the whole of a smaller queue), so that a classroom behind
// one address is not refused on a small sandbox.
func DefaultNetworkShare(queueSize int) int {
	return max(queueSize/networkShareDivisor, min(queueSize, networkShareFloor))
}

// River priorities (1 runs first).
const (
	priorityLight = 1
	priorityHeavy = 4
)

// priority ranks work by its owner's and network's unfinished jobs: up to
// the guaranteed share 1, up to ten times it 2, up to a hundred times 3,
// beyond 4.
func (e *Engine) priority(owner, network int) int {
	tier := func(n, light int) int {
		switch {
		case n <= light:
			return priorityLight
		case n <= 10*light:
			return 2
		case n <= 100*light:
			return 3
		}
		return priorityHeavy
	}
	return max(tier(owner, e.cfg.GuaranteedPerOwner), tier(network, e.cfg.GuaranteedPerNetwork))
}

// takeSlots counts one more unfinished job for owner and network (network
// "" has no share), each unless at its limit: in a full queue (overflow)
// the limits are the guaranteed shares. It answers the counts after the
// job, for its priority, and a function that takes the network's slot,
// which the caller calls last in its transaction: the network's row is
// locked from that update to the commit, and every key of a network
// (every accept from one office, or one benchmark) queues on it, so the
// lock is taken when nothing is left but the commit. Until then the
// network's count is a read, which may be behind by the accepts in
// flight: it only sets the priority, and the slot taken enforces the
// share.
func (e *Engine) takeSlots(ctx context.Context, tx sqldb.Tx, owner, network string, overflow bool) (ownerN, networkN int, takeNetwork func() error, err error) {
	ownerMax, netMax := e.cfg.MaxUnfinishedPerOwner, e.cfg.MaxUnfinishedPerNetwork
	if overflow {
		ownerMax, netMax = min(ownerMax, e.cfg.GuaranteedPerOwner), min(netMax, e.cfg.GuaranteedPerNetwork)
	}
	// A refusal names the share that is used up: the owner's, its
	// network's, or else (in a full queue) the queue's.
	refuse := func() error {
		switch {
		case e.atLimit(ctx, tx, `job_owners`, `owner`, owner, e.cfg.MaxUnfinishedPerOwner):
			return &ShareError{Err: ErrOwnerBusy, Limit: e.cfg.MaxUnfinishedPerOwner, Network: network}
		case network != "" && e.atLimit(ctx, tx, `job_networks`, `network`, network, e.cfg.MaxUnfinishedPerNetwork):
			return &ShareError{Err: ErrNetworkBusy, Limit: e.cfg.MaxUnfinishedPerNetwork, Network: network}
		}
		return &ShareError{Err: ErrQueueFull, Limit: e.cfg.QueueSize, Network: network, Guaranteed: e.cfg.GuaranteedPerOwner}
	}
	ownerN, err = takeSlot(ctx, tx, `job_owners`, `owner`, owner, ownerMax)
	if errors.Is(err, errAtLimit) {
		return 0, 0, nil, refuse()
	}
	if err != nil || network == "" {
		return ownerN, 0, func() error { return nil }, err
	}
	if err := tx.QueryRow(ctx, `SELECT unfinished FROM job_networks WHERE network = ?`, network).Scan(&networkN); err != nil && !errors.Is(err, sqldb.ErrNoRows) {
		return 0, 0, nil, fmt.Errorf("jobs: network %s: %w", network, err)
	}
	networkN++
	if networkN > netMax {
		// Refused before the job's rows are written; the owner's slot
		// taken above is given back with the transaction.
		return 0, 0, nil, refuse()
	}
	return ownerN, networkN, func() error {
		_, err := takeSlot(ctx, tx, `job_networks`, `network`, network, netMax)
		if errors.Is(err, errAtLimit) {
			return refuse()
		}
		return err
	}, nil
}

// errAtLimit: a guarded update found its row at the limit.
var errAtLimit = errors.New("at the limit")

// takeSlot adds one to the unfinished count of name in table (job_owners
// by owner, job_networks by network) unless it has max already, and
// answers the count after: one statement, which locks the row, so the
// limit holds on every replica at once.
func takeSlot(ctx context.Context, tx sqldb.Tx, table, column, name string, max int) (int, error) {
	if max < 1 {
		return 0, errAtLimit
	}
	var n int
	err := tx.QueryRow(ctx, `INSERT INTO `+table+` (`+column+`, unfinished) VALUES (?, 1)
		ON CONFLICT (`+column+`) DO UPDATE SET unfinished = `+table+`.unfinished + 1 WHERE `+table+`.unfinished < ?
		RETURNING unfinished`, name, max).Scan(&n)
	if errors.Is(err, sqldb.ErrNoRows) {
		return 0, errAtLimit
	}
	if err != nil {
		return 0, fmt.Errorf("jobs: %s %s: %w", column, name, err)
	}
	return n, nil
}

// atLimit reports whether name's count in table is at max (a failure to
// read counts as at the limit: the refusal then names the share).
func (e *Engine) atLimit(ctx context.Context, tx sqldb.Tx, table, column, name string, max int) bool {
	var n int
	if err := tx.QueryRow(ctx, `SELECT unfinished FROM `+table+` WHERE `+column+` = ?`, name).Scan(&n); err != nil {
		return !errors.Is(err, sqldb.ErrNoRows)
	}
	return n >= max
}

// giveSlots counts one of owner's (and network's) jobs as finished.
func giveSlots(ctx context.Context, tx sqldb.Tx, owner, network string) error {
	if _, err := tx.Exec(ctx, `UPDATE job_owners SET unfinished = unfinished - 1 WHERE owner = ? AND unfinished > 0`, owner); err != nil {
		return fmt.Errorf("jobs: owner %s: %w", owner, err)
	}
	if network == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE job_networks SET unfinished = unfinished - 1 WHERE network = ? AND unfinished > 0`, network); err != nil {
		return fmt.Errorf("jobs: network %s: %w", network, err)
	}
	return nil
}

// load counts the unfinished jobs of owner and network as the shares see
// them, for the priority of a requeued job.
func (e *Engine) loadOf(ctx context.Context, tx sqldb.Tx, owner, network string) (ownerN, networkN int, err error) {
	err = tx.QueryRow(ctx, `SELECT COALESCE((SELECT unfinished FROM job_owners WHERE owner = ?), 0),
		COALESCE((SELECT unfinished FROM job_networks WHERE network = ?), 0)`, owner, network).Scan(&ownerN, &networkN)
	return ownerN, networkN, err
}

// recountNetworks fixes the networks whose count of unfinished jobs
// disagrees with the jobs, each in a transaction that first locks its row
// (see recount), and forgets networks with none.
func (e *Engine) recountNetworks(ctx context.Context) error {
	rows, err := e.db.Read().Query(ctx, `SELECT o.network FROM (
			SELECT network FROM job_networks UNION SELECT DISTINCT network FROM jobs WHERE status IN ('queued', 'processing') AND network <> ''
		) o LEFT JOIN job_networks c ON c.network = o.network
		WHERE COALESCE(c.unfinished, -1) <> (SELECT COUNT(*) FROM jobs WHERE jobs.network = o.network AND jobs.status IN ('queued', 'processing'))`)
	if err != nil {
		return fmt.Errorf("jobs: checking per-network counts: %w", err)
	}
	var networks []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			_ = rows.Close()
			return fmt.Errorf("jobs: checking per-network counts: %w", err)
		}
		networks = append(networks, n)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("jobs: checking per-network counts: %w", err)
	}
	for _, network := range networks {
		err := e.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO job_networks (network, unfinished) VALUES (?, 0) ON CONFLICT (network) DO NOTHING`, network); err != nil {
				return err
			}
			lock := `SELECT unfinished FROM job_networks WHERE network = ?`
			if e.db.Dialect() == sqldb.Postgres {
				lock += ` FOR UPDATE`
			}
			var was int
			if err := tx.QueryRow(ctx, lock, network).Scan(&was); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE network = ? AND status IN ('queued', 'processing')`, network).Scan(&n); err != nil {
				return err
			}
			if n != was {
				e.log.Warn("jobs: a network's count of unfinished jobs was wrong; fixed", "network", network, "was", was, "is", n)
			}
			_, err := tx.Exec(ctx, `UPDATE job_networks SET unfinished = ? WHERE network = ?`, n, network)
			return err
		})
		if err != nil {
			return fmt.Errorf("jobs: recounting network %s: %w", network, err)
		}
	}
	return nil
}

// forgetIdleShares drops the rows of networks with no unfinished job, so
// the table does not grow with every network ever seen (an owner's row
// goes with its key). takeSlot inserts a dropped row again.
func (e *Engine) forgetIdleShares(ctx context.Context, tx sqldb.Tx) error {
	// The condition is on the row itself, not a subquery: PostgreSQL
	// checks it again on a row a Submit changed meanwhile.
	if _, err := tx.Exec(ctx, `DELETE FROM job_networks WHERE unfinished = 0`); err != nil {
		return fmt.Errorf("janitor: forgetting idle networks: %w", err)
	}
	return nil
}
