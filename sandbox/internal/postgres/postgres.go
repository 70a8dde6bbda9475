// Package postgres is the sandbox's database for running many replicas:
// PostgreSQL through pgx, with River on the same database. Notifications
// go through LISTEN/NOTIFY, so an event stream on one replica hears what a
// worker on another one did.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/accepted-dev/accepted/sandbox/internal/schema"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// DB is a PostgreSQL database.
type DB struct {
	pool   *pgxpool.Pool
	cfg    *pgxpool.Config
	log    *slog.Logger
	now    func() time.Time
	queue  *sqldb.RiverQueue[pgx.Tx]
	broker sqldb.Broker

	listenMu sync.Mutex
	channels []string      // what the listening connection LISTENs to
	wake     chan struct{} // a channel was added: LISTEN to it
	stop     context.CancelFunc
	done     chan struct{}
}

var _ sqldb.DB = (*DB)(nil)

// Open connects to the database at url (postgres://…).
func Open(ctx context.Context, rawURL string, log *slog.Logger, now func() time.Time) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", redact(rawURL), err)
	}
	if cfg.MaxConns < 20 {
		cfg.MaxConns = 20
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", redact(rawURL), err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	db := &DB{pool: pool, cfg: cfg, log: log, now: now, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	db.stop = stop
	go db.listen(lctx)
	return db, nil
}

// redact drops the password from a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a postgres URL that does not parse)"
	}
	return u.Redacted()
}

// Dialect implements sqldb.DB.
func (db *DB) Dialect() sqldb.Dialect { return sqldb.Postgres }

// Describe implements sqldb.DB.
func (db *DB) Describe() string {
	c := db.cfg.ConnConfig
	return fmt.Sprintf("postgres %s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Ping implements sqldb.DB.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Read implements sqldb.DB.
func (db *DB) Read() sqldb.Querier { return querier{db.pool} }

// Tx implements sqldb.DB.
func (db *DB) Tx(ctx context.Context, fn func(ctx context.Context, tx sqldb.Tx) error) error {
	ptx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	t := &tx{querier: querier{ptx}, db: db, ptx: ptx}
	if err := fn(ctx, t); err != nil {
		if rerr := ptx.Rollback(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("postgres: rollback: %w", rerr))
		}
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	for _, f := range t.after {
		f()
	}
	return nil
}

// NewQueue implements sqldb.DB.
func (db *DB) NewQueue(cfg *river.Config) (sqldb.Queue, error) {
	c, err := river.NewClient(riverpgxv5.New(db.pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: river client: %w", err)
	}
	db.queue = &sqldb.RiverQueue[pgx.Tx]{Client: c}
	return db.queue, nil
}

// migrateLock names the advisory lock that keeps replicas starting at once
// from migrating at once (rivermigrate takes no lock of its own).
const migrateLock = 0x616363657074 // "accept"

// Migrate implements sqldb.DB.
func (db *DB) Migrate(ctx context.Context, apply bool) (sqldb.MigrateResult, error) {
	var res sqldb.MigrateResult
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("postgres: migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return res, fmt.Errorf("postgres: waiting for the migration lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLock); err != nil {
			db.log.Warn("releasing the migration lock", "err", err)
		}
	}()
	res.River, res.RiverVersion, err = sqldb.MigrateRiver(ctx, riverpgxv5.New(db.pool), db.log, apply)
	if err != nil {
		return res, err
	}
	ms, err := schema.Migrations(sqldb.Postgres)
	if err != nil {
		return res, err
	}
	res.App, res.AppVersion, err = sqldb.ApplyMigrations(ctx, db, ms, db.now, apply)
	return res, err
}

// Close implements sqldb.DB.
func (db *DB) Close() error {
	db.stop()
	<-db.done
	db.pool.Close()
	return nil
}

// Listen implements sqldb.DB.
func (db *DB) Listen(ctx context.Context, channel string) (<-chan string, error) {
	if !validChannel(channel) {
		return nil, fmt.Errorf("postgres: channel %q: use lower-case letters, digits and underscores", channel)
	}
	ch := db.broker.Subscribe(ctx, channel)
	db.listenMu.Lock()
	if !slices.Contains(db.channels, channel) {
		db.channels = append(db.channels, channel)
		select {
		case db.wake <- struct{}{}:
		default:
		}
	}
	db.listenMu.Unlock()
	return ch, nil
}

func validChannel(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != "" && len(s) < 64
}

// errChannelAdded ends a listening connection so that the next one LISTENs
// to a channel added since.
var errChannelAdded = errors.New("a channel to listen to was added")

// listen keeps one connection LISTENing to every channel a Listen asked
// for and hands what arrives to the broker. After a lost connection it
// reconnects (backing off up to a few seconds) and tells every listener
// that notifications may have been missed.
func (db *DB) listen(ctx context.Context) {
	defer close(db.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errChannelAdded) {
			continue
		}
		db.log.Warn("postgres: listening connection lost; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (db *DB) listenOnce(ctx context.Context) error {
	// Drain a wake-up that the LISTENs below will cover.
	select {
	case <-db.wake:
	default:
	}
	conn, err := pgx.ConnectConfig(ctx, db.cfg.ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	db.listenMu.Lock()
	chans := slices.Clone(db.channels)
	db.listenMu.Unlock()
	for _, c := range chans {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{c}.Sanitize()); err != nil {
			return err
		}
	}
	// What was sent while nobody listened is unknown: before a reconnection,
	// and on the first connection too, since Listen answers before its
	// LISTEN runs here.
	db.broker.PublishAll()
	// A wait is cut short when a channel is added; pgx may close the
	// connection then, so the loop above starts a fresh one.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-db.wake:
			cancel()
		case <-wctx.Done():
		}
	}()
	for {
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return errChannelAdded
			}
			return err
		}
		db.broker.Publish(n.Channel, n.Payload)
	}
}

// tx is a write transaction.
type tx struct {
	querier
	db    *DB
	ptx   pgx.Tx
	after []func()
}

func (t *tx) Notify(channel, payload string) error {
	_, err := t.ptx.Exec(context.Background(), "SELECT pg_notify($1, $2)", channel, payload)
	if err != nil {
		return fmt.Errorf("postgres: notify %s: %w", channel, err)
	}
	return nil
}

func (t *tx) AfterCommit(f func()) { t.after = append(t.after, f) }

func (t *tx) Queue() sqldb.TxQueue {
	if t.db.queue == nil {
		return sqldb.NoQueue{}
	}
	return t.db.queue.TxQueue(t.ptx)
}

// querier runs statements on the pool or a transaction, with `?`
// placeholders rewritten.
type querier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, sqldb.Rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqldb.Row {
	return row{q.q.QueryRow(ctx, sqldb.Rebind(query), args...)}
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqldb.Rows, error) {
	r, err := q.q.Query(ctx, sqldb.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

type row struct{ r pgx.Row }

func (r row) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqldb.ErrNoRows
	}
	return err
}

type rows struct{ r pgx.Rows }

func (r rows) Next() bool             { return r.r.Next() }
func (r rows) Scan(dest ...any) error { return r.r.Scan(dest...) }
func (r rows) Err() error             { return r.r.Err() }
func (r rows) Close() error           { r.r.Close(); return r.r.Err() }
