package sqlite

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"

	"modernc.org/sqlite"
)

// database/sql asks the driver to prepare every statement it runs outside
// sql.Stmt, and River's queries and ours all run that way: profiles of the
// accept path showed more than 40% of the CPU parsing SQL. Each connection
// here keeps its prepared statements by text and runs them again, as
// SQLite's own sqlite3_prepare_v3 with SQLITE_PREPARE_PERSISTENT is meant
// to be used. A statement still open (rows not yet closed) is never reused:
// a second use meanwhile prepares a statement of its own.

// stmtCacheSize bounds the statements kept per connection: River's queries
// and ours number about a hundred.
const stmtCacheSize = 256

// connector opens connections that cache their statements.
type connector struct {
	dsn string
	drv *sqlite.Driver
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	base, ok := conn.(baseConn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("sqlite: the driver's connection lacks an interface the statement cache needs")
	}
	return &cachingConn{base: base, stmts: map[string]*cached{}, lru: list.New()}, nil
}

func (c connector) Driver() driver.Driver { return c.drv }

// baseConn is what modernc.org/sqlite's connection implements.
type baseConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type cachingConn struct {
	base  baseConn
	stmts map[string]*cached
	lru   *list.List // of query texts, most recently used first
}

type cached struct {
	stmt driver.Stmt
	busy bool // rows of it are open
	elem *list.Element
}

// A driver.Conn is used by one goroutine at a time (database/sql's
// promise), so the cache needs no lock.

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.base.Prepare(query) }
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.base.PrepareContext(ctx, query)
}
func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.base.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.base.BeginTx(ctx, opts)
}
func (c *cachingConn) Ping(ctx context.Context) error           { return c.base.Ping(ctx) }
func (c *cachingConn) ResetSession(ctx context.Context) error   { return c.base.ResetSession(ctx) }
func (c *cachingConn) IsValid() bool                            { return c.base.IsValid() }
func (c *cachingConn) CheckNamedValue(*driver.NamedValue) error { return driver.ErrSkip }

func (c *cachingConn) Close() error {
	var errs []error
	for q, e := range c.stmts {
		errs = append(errs, e.stmt.Close())
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.base.Close())...)
}

// take answers the cached statement of query, marked busy, or nil when it
// is busy already (the caller runs the query uncached).
func (c *cachingConn) take(ctx context.Context, query string) (*cached, error) {
	if e := c.stmts[query]; e != nil {
		if e.busy {
			return nil, nil
		}
		e.busy = true
		c.lru.MoveToFront(e.elem)
		return e, nil
	}
	st, err := c.base.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	e := &cached{stmt: st, busy: true, elem: c.lru.PushFront(query)}
	c.stmts[query] = e
	for c.lru.Len() > stmtCacheSize {
		old := c.lru.Back()
		oq := old.Value.(string)
		if oe := c.stmts[oq]; oe.busy {
			break // in use: evicted later
		}
		c.lru.Remove(old)
		_ = c.stmts[oq].stmt.Close()
		delete(c.stmts, oq)
	}
	return e, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.base.ExecContext(ctx, query, args)
	}
	defer func() { e.busy = false }()
	return e.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	e, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return c.base.QueryContext(ctx, query, args)
	}
	rows, err := e.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		e.busy = false
		return nil, err
	}
	return &cachedRows{Rows: rows, done: func() { e.busy = false }}, nil
}

// cachedRows frees its statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	done func()
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}
