package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

// Group commit. SQLite has one writer, so write transactions take turns;
// a turn's BEGIN IMMEDIATE and COMMIT cost more than the few statements of
// an accept or a job's step (two fifths of the writer's time in a profile
// of the accept load). Transactions that arrive while another holds the
// writer therefore wait together and run as one: each in a savepoint of
// its own, so that one that fails rolls back alone, then one COMMIT for
// all. A transaction that finds the writer free runs at once, alone.
//
// Whoever arrives first leads: it runs the batches until its own has
// committed, then hands the lead to the first transaction still waiting,
// so nobody waits for more than the batches ahead of it.

// maxBatch bounds the transactions committed together, and so how long
// the last of them waits for the others' statements.
const maxBatch = 64

// txRequest is one transaction waiting for its turn.
type txRequest struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx sqldb.Tx) error
	t    *tx
	err  error
	done chan struct{} // closed once err is final
	lead chan struct{} // closed when this request is to lead
}

// group queues the transactions waiting for the writer.
type group struct {
	mu      sync.Mutex
	leading bool // a leader is running batches
	waiting []*txRequest
	commits atomic.Int64 // transactions committed, each holding one batch
}

// panicked is a transaction function's panic, carried to its own goroutine
// to be raised there.
type panicked struct {
	v     any
	stack []byte
}

func (p panicked) Error() string { return fmt.Sprintf("panic in a transaction: %v\n%s", p.v, p.stack) }

// tx runs fn in a write transaction, alone or with others.
func (db *DB) groupTx(ctx context.Context, fn func(ctx context.Context, tx sqldb.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &txRequest{ctx: ctx, fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	g := &db.group
	g.mu.Lock()
	g.waiting = append(g.waiting, r)
	if g.leading {
		g.mu.Unlock()
		select {
		case <-r.done:
		case <-r.lead:
			db.leadUntil(r)
		}
	} else {
		g.leading = true
		g.mu.Unlock()
		db.leadUntil(r)
	}
	if p, ok := r.err.(panicked); ok {
		panic(p.v)
	}
	return r.err
}

// leadUntil runs batches of the waiting transactions until own's is done,
// then hands the lead on.
func (db *DB) leadUntil(own *txRequest) {
	g := &db.group
	for {
		g.mu.Lock()
		n := min(len(g.waiting), maxBatch)
		batch := append([]*txRequest(nil), g.waiting[:n]...)
		g.waiting = append(g.waiting[:0], g.waiting[n:]...)
		g.mu.Unlock()
		db.runBatch(batch)
		select {
		case <-own.done:
		default:
			continue // own is still waiting behind this batch
		}
		g.mu.Lock()
		if len(g.waiting) > 0 {
			close(g.waiting[0].lead)
		} else {
			g.leading = false
		}
		g.mu.Unlock()
		return
	}
}

// runBatch runs the transactions of batch as one, each in a savepoint when
// there are several, and tells each how it went.
func (db *DB) runBatch(batch []*txRequest) {
	finish := func(r *txRequest, err error) {
		r.err = err
		close(r.done)
	}
	// A statement interrupted by its context would roll back the whole
	// transaction, the others' work too: statements run to their end, and
	// a request whose context ended before its turn is not run.
	var live []*txRequest
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			finish(r, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	stx, err := db.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range live {
			finish(r, fmt.Errorf("sqlite: begin: %w", err))
		}
		return
	}
	alone := len(live) == 1
	var ok []*txRequest
	for _, r := range live {
		r.t = &tx{querier: querier{stx}, db: db, stx: stx}
		if alone {
			if r.err = run(r); r.err != nil {
				if rerr := stx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
					r.err = errors.Join(r.err, fmt.Errorf("sqlite: rollback: %w", rerr))
				}
				close(r.done)
				return
			}
			ok = append(ok, r)
			break
		}
		if _, err := stx.ExecContext(context.Background(), "SAVEPOINT batch"); err != nil {
			finish(r, fmt.Errorf("sqlite: savepoint: %w", err))
			continue
		}
		if r.err = run(r); r.err != nil {
			_, rerr := stx.ExecContext(context.Background(), "ROLLBACK TO batch")
			if rerr == nil {
				_, rerr = stx.ExecContext(context.Background(), "RELEASE batch")
			}
			if rerr != nil {
				// Some errors make SQLite roll the whole transaction back, and
				// the statements after would each commit on their own: stop,
				// and fail what this batch did and has left.
				r.err = errors.Join(r.err, fmt.Errorf("sqlite: rolling back to a savepoint: %w", rerr))
				close(r.done)
				broken := fmt.Errorf("sqlite: the transaction of a batch was rolled back by an error of another in it: %w", rerr)
				_ = stx.Rollback()
				for _, o := range ok {
					finish(o, broken)
				}
				for _, o := range live {
					if o.t == nil { // not run yet
						finish(o, broken)
					}
				}
				return
			}
			close(r.done)
			continue
		}
		if _, err := stx.ExecContext(context.Background(), "RELEASE batch"); err != nil {
			finish(r, fmt.Errorf("sqlite: releasing a savepoint: %w", err))
			continue
		}
		ok = append(ok, r)
	}
	if err := stx.Commit(); err != nil {
		for _, r := range ok {
			finish(r, fmt.Errorf("sqlite: commit: %w", err))
		}
		return
	}
	db.group.commits.Add(1)
	for _, r := range ok {
		for _, n := range r.t.notes {
			db.broker.Publish(n[0], n[1])
		}
		for _, f := range r.t.after {
			f()
		}
		finish(r, nil)
	}
}

// run calls the request's function on its tx, turning a panic into
// panicked.
func run(r *txRequest) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = panicked{v, debug.Stack()}
		}
	}()
	return r.fn(context.WithoutCancel(r.ctx), r.t)
}
