// Package sqldb is what the sandbox's stores need of a SQL database, the
// same on every backend: write transactions whose notifications and
// after-commit hooks fire only once they commit, reads outside them,
// notifications across processes, versioned migrations, and a River job
// queue in the same database (so a job and the rows it belongs with commit
// together). The sqlite and postgres packages implement it.
//
// SQL is written once, for both backends: `?` placeholders (rewritten to
// $n for PostgreSQL), times and durations as BIGINT nanoseconds, bytes as
// BLOB/BYTEA, flags as integers.
package sqldb

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Dialect names a backend where its SQL differs.
type Dialect string

// The backends.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNoRows is returned by Row.Scan when the query found nothing, on every
// backend.
var ErrNoRows = errors.New("sqldb: no rows in result set")

// Row is one result row.
type Row interface{ Scan(dest ...any) error }

// Rows iterates over results; Close it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Querier runs statements.
type Querier interface {
	// Exec runs a statement and answers the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Tx is a write transaction.
type Tx interface {
	Querier
	// Notify sends payload to the listeners of channel once the transaction
	// commits, on every process that listens; never if it rolls back.
	Notify(channel, payload string) error
	// AfterCommit runs f once the transaction has committed.
	AfterCommit(f func())
	// Queue is the job queue, inside this transaction.
	Queue() TxQueue
}

// TxQueue is River inside a transaction: jobs inserted or cancelled there
// commit (or roll back) with the rest.
type TxQueue interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	// Cancel cancels a River job; an unknown id is not an error (the job
	// may have finished and been cleaned up).
	Cancel(ctx context.Context, id int64) error
}

// Queue is the River client of a database.
type Queue interface {
	Start(ctx context.Context) error
	// Stop lets running work finish until ctx ends, then cancels it.
	Stop(ctx context.Context) error
	// Insert inserts a job in a transaction of its own.
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// DB is one database.
type DB interface {
	Dialect() Dialect
	// Tx runs fn in a write transaction and commits it when fn returns nil.
	// Never call the DB from inside fn other than through tx: SQLite has one
	// writing connection, and fn holds it.
	Tx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Read runs queries outside a transaction; each sees what had committed
	// when it started.
	Read() Querier
	// Listen answers the payloads sent with Tx.Notify on channel, from any
	// process, until ctx ends. A payload of "" means notifications may have
	// been missed (the connection to the database was lost and is back):
	// listeners re-read what they follow.
	Listen(ctx context.Context, channel string) (<-chan string, error)
	// NewQueue builds the River client of this database.
	NewQueue(cfg *river.Config) (Queue, error)
	// Migrate brings River's schema and the sandbox's to this binary's
	// versions, refusing a database newer than the binary (ErrTooNew).
	// With apply false it changes nothing and answers ErrNotMigrated when
	// something is left to apply.
	Migrate(ctx context.Context, apply bool) (MigrateResult, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// Describe names the database for logs (a path, or a URL without password).
	Describe() string
	Close() error
}

// Nanos stores a time: Unix nanoseconds, 0 for the zero time.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Time reads a time stored with Nanos, in UTC.
func Time(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Rebind rewrites `?` placeholders as PostgreSQL's $1, $2 … . Statements
// must not hold a literal question mark.
func Rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Bool stores a flag as an integer, the same on both backends.
func Bool(b bool) int {
	if b {
		return 1
	}
	return 0
}
