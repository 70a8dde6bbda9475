package sqldb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// The River pieces are generic over the driver's transaction type (pgx.Tx
// or *sql.Tx); the backends instantiate them.

// MigrateRiver applies River's migrations and answers the versions applied
// and the version the database is at. rivermigrate itself does nothing on a
// database migrated by a newer River: that is refused here with ErrTooNew.
func MigrateRiver[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], log *slog.Logger, apply bool) (applied []int, version int, err error) {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: log})
	if err != nil {
		return nil, 0, fmt.Errorf("river migrations: %w", err)
	}
	all := m.AllVersions()
	known := all[len(all)-1].Version
	// ExistingVersions fails on a version this River does not know.
	existing, err := m.ExistingVersions(ctx)
	if err != nil && strings.Contains(err.Error(), "not found in migrator bundle") {
		return nil, 0, fmt.Errorf("%w: River's tables were migrated by a newer River than this binary's (it knows versions up to %d): %v", ErrTooNew, known, err)
	}
	if !apply {
		if err != nil {
			return nil, 0, fmt.Errorf("%w: River's tables (%v); run `sandbox migrate`", ErrNotMigrated, err)
		}
		if len(existing) == 0 || existing[len(existing)-1].Version < known {
			return nil, 0, fmt.Errorf("%w: River's tables are not at version %d; run `sandbox migrate`", ErrNotMigrated, known)
		}
		return nil, known, nil
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range res.Versions {
		applied = append(applied, v.Version)
	}
	return applied, known, nil
}

// RiverQueue is a Queue over a River client.
type RiverQueue[TTx any] struct{ Client *river.Client[TTx] }

// Start implements Queue.
func (q RiverQueue[TTx]) Start(ctx context.Context) error { return q.Client.Start(ctx) }

// Stop implements Queue: a graceful stop until ctx ends, then running work
// is cancelled (it stays in the database and runs again on the next start,
// or on another replica).
func (q RiverQueue[TTx]) Stop(ctx context.Context) error {
	err := q.Client.Stop(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopAndCancelWait)
	defer cancel()
	return errors.Join(err, q.Client.StopAndCancel(stop))
}

// Insert implements Queue.
func (q RiverQueue[TTx]) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return q.Client.Insert(ctx, args, opts)
}

// TxQueue binds the client to one transaction.
func (q RiverQueue[TTx]) TxQueue(tx TTx) TxQueue { return riverTx[TTx]{q.Client, tx} }

type riverTx[TTx any] struct {
	c  *river.Client[TTx]
	tx TTx
}

func (r riverTx[TTx]) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return r.c.InsertTx(ctx, r.tx, args, opts)
}

func (r riverTx[TTx]) Cancel(ctx context.Context, id int64) error {
	if id == 0 {
		return nil
	}
	_, err := r.c.JobCancelTx(ctx, r.tx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil
	}
	return err
}

// NoQueue is the TxQueue of a transaction before NewQueue was called.
type NoQueue struct{}

var errNoQueue = errors.New("sqldb: no River client yet: call NewQueue first")

// Insert implements TxQueue.
func (NoQueue) Insert(context.Context, river.JobArgs, *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return nil, errNoQueue
}

// Cancel implements TxQueue.
func (NoQueue) Cancel(context.Context, int64) error { return errNoQueue }

// stopAndCancelWait bounds how long a stop waits for cancelled work to
// return, after the graceful part ran out.
const stopAndCancelWait = 5 * time.Second
