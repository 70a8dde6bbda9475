// Package sqlite is the sandbox's embedded database: a SQLite file through
// modernc.org/sqlite (pure Go, no cgo), with River on the same file. It is
// the default backend: nothing to install, and a restart keeps everything.
//
// As River's SQLite documentation advises, all writes go through one
// connection, in WAL mode with a busy timeout; reads go through a pool of
// read-only connections, which WAL lets run beside the writer. One process
// owns the file: notifications stay in the process.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"modernc.org/sqlite"

	"github.com/accepted-dev/accepted/sandbox/internal/schema"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// DB is a SQLite database file.
type DB struct {
	path   string
	temp   string // a directory to remove on Close (Memory)
	write  *sql.DB
	read   *sql.DB
	log    *slog.Logger
	now    func() time.Time
	broker sqldb.Broker
	queue  *sqldb.RiverQueue[*sql.Tx]
	readQ  querier
	group  group // write transactions waiting for their turn
}

var _ sqldb.DB = (*DB)(nil)

// Open opens (creating it and its directory if needed) the database at
// path. now stamps migrations.
func Open(ctx context.Context, path string, log *slog.Logger, now func() time.Time) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlite: creating the data directory: %w", err)
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade that can fail busy
	drv := &sqlite.Driver{}
	write := sql.OpenDB(connector{dsn: "file:" + abs + "?" + q.Encode(), drv: drv})
	write.SetMaxOpenConns(1)
	// The writer must create the file (and switch it to WAL) before a
	// read-only connection can open it.
	if err := write.PingContext(ctx); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", abs, err)
	}
	var mode string
	if err := write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: %s: journal mode %q, want wal (a file system without shared memory?): %v", abs, mode, err)
	}
	rq := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "query_only(1)"} {
		rq.Add("_pragma", p)
	}
	rq.Set("mode", "ro")
	read := sql.OpenDB(connector{dsn: "file:" + abs + "?" + rq.Encode(), drv: drv})
	read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	read.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	db := &DB{path: abs, write: write, read: read, log: log, now: now}
	db.readQ = querier{read}
	return db, nil
}

// Memory opens a database that lives as long as the process: a file in a
// temporary directory, removed by Close. It is the same engine as a file,
// so it behaves the same.
func Memory(ctx context.Context, log *slog.Logger, now func() time.Time) (*DB, error) {
	dir, err := os.MkdirTemp("", "accepted-memory-")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db, err := Open(ctx, filepath.Join(dir, "sandbox.db"), log, now)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	db.temp = dir
	return db, nil
}

// Dialect implements sqldb.DB.
func (db *DB) Dialect() sqldb.Dialect { return sqldb.SQLite }

// Describe implements sqldb.DB.
func (db *DB) Describe() string {
	if db.temp != "" {
		return "memory (a temporary SQLite file, removed at exit)"
	}
	return "sqlite " + db.path
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Ping implements sqldb.DB.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// Read implements sqldb.DB.
func (db *DB) Read() sqldb.Querier { return db.readQ }

// Tx implements sqldb.DB. Transactions that wait for the writer together
// commit together (see groupTx).
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context, tx sqldb.Tx) error) error {
	return db.groupTx(ctx, fn)
}

// Listen implements sqldb.DB: one process owns the file, so notifications
// never leave it.
func (db *DB) Listen(ctx context.Context, channel string) (<-chan string, error) {
	return db.broker.Subscribe(ctx, channel), nil
}

// NewQueue implements sqldb.DB.
func (db *DB) NewQueue(cfg *river.Config) (sqldb.Queue, error) {
	c, err := river.NewClient(riversqlite.New(db.write), cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlite: river client: %w", err)
	}
	db.queue = &sqldb.RiverQueue[*sql.Tx]{Client: c}
	return db.queue, nil
}

// Migrate implements sqldb.DB.
func (db *DB) Migrate(ctx context.Context, apply bool) (sqldb.MigrateResult, error) {
	var res sqldb.MigrateResult
	var err error
	res.River, res.RiverVersion, err = sqldb.MigrateRiver(ctx, riversqlite.New(db.write), db.log, apply)
	if err != nil {
		return res, err
	}
	ms, err := schema.Migrations(sqldb.SQLite)
	if err != nil {
		return res, err
	}
	res.App, res.AppVersion, err = sqldb.ApplyMigrations(ctx, db, ms, db.now, apply)
	return res, err
}

// Close implements sqldb.DB.
func (db *DB) Close() error {
	err := errors.Join(db.read.Close(), db.write.Close())
	if db.temp != "" {
		err = errors.Join(err, os.RemoveAll(db.temp))
	}
	return err
}

// tx is a write transaction.
type tx struct {
	querier
	db    *DB
	stx   *sql.Tx
	notes [][2]string
	after []func()
}

func (t *tx) Notify(channel, payload string) error {
	t.notes = append(t.notes, [2]string{channel, payload})
	return nil
}

func (t *tx) AfterCommit(f func()) { t.after = append(t.after, f) }

func (t *tx) Queue() sqldb.TxQueue {
	if t.db.queue == nil {
		return sqldb.NoQueue{}
	}
	return t.db.queue.TxQueue(t.stx)
}

// querier runs statements on a *sql.DB or *sql.Tx.
type querier struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	return row{q.q.QueryRowContext(ctx, query, args...)}
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	return q.q.QueryContext(ctx, query, args...)
}

type row struct{ r *sql.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqldb.ErrNoRows
	}
	return err
}
