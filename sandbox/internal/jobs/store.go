package jobs

import (
	"context"
	"time"
)

// Store keeps jobs. The engine is its only user, so the engine defines it;
// memstore implements it in memory, and the shape is chosen so that a SQL
// store (one jobs table, one tombstone table or a nullable body) can too:
// every method is a single indexed statement and nothing needs a callback
// evaluated inside the database.
type Store interface {
	// Create inserts j. It answers ErrExists when the id is taken, live or
	// tombstoned.
	Create(ctx context.Context, j Job) error
	// Get answers the job, ErrNotFound, or ErrGone for an expired job. With
	// ErrGone the returned Job carries only ID and Owner (the tombstone), so
	// the engine can still answer ErrNotFound to another owner.
	Get(ctx context.Context, id string) (Job, error)
	// Update replaces the stored job if its Version still equals j.Version
	// (compare-and-swap; SQL: UPDATE … WHERE id=$1 AND version=$2) and
	// returns what is stored now, with Version+1. A stale j gets
	// ErrVersionConflict, a missing one ErrNotFound, an expired one ErrGone.
	Update(ctx context.Context, j Job) (Job, error)
	// ListStalled answers up to limit processing jobs whose worker has been
	// silent too long according to q (see StallQuery.Stalled for the rule
	// and its SQL form).
	ListStalled(ctx context.Context, q StallQuery, limit int) ([]Job, error)
	// ListExpired answers up to limit terminal jobs with ExpiresAt <= now.
	// SQL: WHERE expires_at <= $1 (expires_at is NULL until terminal).
	ListExpired(ctx context.Context, now time.Time, limit int) ([]Job, error)
	// Expire drops the job's body and keeps a tombstone (id, owner) so Get
	// answers ErrGone rather than ErrNotFound. Expiring a tombstone is a
	// no-op; a missing id is ErrNotFound.
	Expire(ctx context.Context, id string) error
	// Count answers the number of live (not tombstoned) jobs.
	Count(ctx context.Context) (int, error)
}

// StallQuery is the dead-man's switch rule handed to the store, as plain
// values a database can use in a WHERE clause.
type StallQuery struct {
	Now    time.Time
	Factor float64       // silence allowed, as a multiple of Expected
	Floor  time.Duration // never less silence allowed than this
}

// Window is how long job j may stay silent before it counts as stalled.
func (q StallQuery) Window(j Job) time.Duration {
	return max(time.Duration(q.Factor*float64(j.Expected)), q.Floor)
}

// Stalled reports whether j is processing and its last beat is older than
// its window. In SQL:
//
//	WHERE status = 'processing'
//	  AND last_beat < $now - GREATEST($factor * expected, $floor)
//
// with an index on (status, last_beat) narrowing the scan.
func (q StallQuery) Stalled(j Job) bool {
	return j.Status == StatusProcessing && j.LastBeat.Add(q.Window(j)).Before(q.Now)
}
