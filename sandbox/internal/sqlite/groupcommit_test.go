package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

func groupDB(t *testing.T) *DB {
	t.Helper()
	db, err := Memory(t.Context(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Tx(t.Context(), func(ctx context.Context, tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE rows (n INTEGER PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

func rowsIn(t *testing.T, db *DB) map[int]bool {
	t.Helper()
	rs, err := db.Read().Query(t.Context(), `SELECT n FROM rows`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rs.Close() }()
	got := map[int]bool{}
	for rs.Next() {
		var n int
		if err := rs.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[n] = true
	}
	return got
}

// holdWriter runs a transaction that keeps the writer until release is
// closed, and answers once it holds it.
func holdWriter(t *testing.T, db *DB, release <-chan struct{}) <-chan error {
	t.Helper()
	holding, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	select {
	case <-holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the first transaction did not get the writer within 10 s")
	}
	return done
}

// done waits for wg, failing the test if that takes 10 s (a batch that
// never commits must fail, not hang).
func done(t *testing.T, what string, wg *sync.WaitGroup) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end within 10 s", what)
	}
}

// released answers the error of the transaction holdWriter started, once
// it ends, failing the test if that takes 10 s.
func released(t *testing.T, first <-chan error) error {
	t.Helper()
	select {
	case err := <-first:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the transaction holding the writer did not end within 10 s of its release")
		return nil
	}
}

// waitQueued waits until n transactions wait for the writer.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.group.mu.Lock()
		q := len(db.group.waiting)
		db.group.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d transactions waiting for the writer after 10 s, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit: transactions that wait together commit together, and
// each still stands alone: one that fails or panics rolls back only its
// own writes, notifies nobody and runs no AfterCommit; the others commit,
// notify and run theirs.
func TestGroupCommit(t *testing.T) {
	db := groupDB(t)
	heard := make(chan string, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	notes, err := db.Listen(ctx, "rows")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for p := range notes {
			heard <- p
		}
	}()

	release := make(chan struct{})
	first := holdWriter(t, db, release)
	const n = 40
	var after atomic.Int64
	errs := make([]error, n)
	panics := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO rows (n) VALUES (?)`, i); err != nil {
					return err
				}
				_ = tx.Notify("rows", fmt.Sprint(i))
				tx.AfterCommit(func() { after.Add(1) })
				switch {
				case i%5 == 1:
					return errors.New("refused")
				case i%7 == 2:
					panic(fmt.Sprint("boom ", i))
				}
				return nil
			})
		})
	}
	waitQueued(t, db, n)
	before := db.group.commits.Load()
	close(release)
	if err := released(t, first); err != nil {
		t.Fatal(err)
	}
	done(t, "the transactions that waited together", &wg)

	got := rowsIn(t, db)
	want := 0
	for i := range n {
		failed, panicked := i%5 == 1, i%5 != 1 && i%7 == 2
		switch {
		case failed && (errs[i] == nil || errs[i].Error() != "refused"):
			t.Errorf("transaction %d: %v, want its own error", i, errs[i])
		case panicked && panics[i] != fmt.Sprint("boom ", i):
			t.Errorf("transaction %d: panic %v in its caller, want its own", i, panics[i])
		case !failed && !panicked && (errs[i] != nil || panics[i] != nil):
			t.Errorf("transaction %d: %v %v, want it committed", i, errs[i], panics[i])
		}
		if ok := !failed && !panicked; got[i] != ok {
			t.Errorf("row %d stored: %v, want %v", i, got[i], ok)
		} else if ok {
			want++
		}
	}
	if a := after.Load(); a != int64(want) {
		t.Errorf("%d AfterCommit functions ran, want %d (one per committed transaction)", a, want)
	}
	for range want {
		select {
		case <-heard:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d notifications within 10 s", want)
		}
	}
	select {
	case p := <-heard:
		t.Errorf("a notification of a transaction that rolled back: %q", p)
	case <-time.After(50 * time.Millisecond):
	}
	// 40 transactions waited together: they commit in one batch (64 at
	// most), after the one that held the writer.
	if c := db.group.commits.Load() - before; c != 2 {
		t.Errorf("%d commits for the holder and %d transactions that waited together, want 2", c, n)
	}
}

// TestGroupCommitStopsWhenTheTransactionIsGone: a transaction whose error
// ended the whole SQLite transaction (here it ran ROLLBACK itself) must not
// let the batch's later statements each commit on their own: every
// transaction of the batch fails and nothing of it is stored.
func TestGroupCommitStopsWhenTheTransactionIsGone(t *testing.T) {
	db := groupDB(t)
	release := make(chan struct{})
	first := holdWriter(t, db, release)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO rows (n) VALUES (?)`, i); err != nil {
					return err
				}
				if i == 2 {
					if _, err := tx.Exec(ctx, `ROLLBACK`); err != nil {
						return err
					}
					return errors.New("rolled everything back")
				}
				return nil
			})
		})
		// Queue them in order, so that the breaking one is in the middle.
		waitQueued(t, db, i+1)
	}
	close(release)
	if err := released(t, first); err != nil {
		t.Fatal(err)
	}
	done(t, "the broken batch", &wg)
	for i, err := range errs {
		if err == nil {
			t.Errorf("transaction %d succeeded in a batch whose transaction was rolled back", i)
		}
	}
	if got := rowsIn(t, db); len(got) != 0 {
		t.Errorf("rows stored: %v, want none", got)
	}
	// The writer is usable again.
	if err := db.Tx(t.Context(), func(ctx context.Context, tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO rows (n) VALUES (100)`)
		return err
	}); err != nil {
		t.Fatalf("a transaction after the broken batch: %v", err)
	}
}

// TestGroupCommitSkipsEndedContexts: a transaction whose context ended
// while it waited is not run; it answers its context's error.
func TestGroupCommitSkipsEndedContexts(t *testing.T) {
	db := groupDB(t)
	release := make(chan struct{})
	first := holdWriter(t, db, release)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error { ran <- struct{}{}; return nil })
	}()
	waitQueued(t, db, 1)
	cancel()
	close(release)
	if err := released(t, first); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a transaction whose context ended: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a transaction whose context ended did not answer within 10 s")
	}
	select {
	case <-ran:
		t.Error("a transaction whose context ended while it waited was run")
	default:
	}
}

// BenchmarkGroupCommit is small write transactions (an insert each, as an
// accept's rows are a few), one caller at a time and 16 at once: with 16,
// those that wait for the writer commit together. It reports the
// transactions committed per batch.
func BenchmarkGroupCommit(b *testing.B) {
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			db, err := Memory(b.Context(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			if err := db.Tx(b.Context(), func(ctx context.Context, tx sqldb.Tx) error {
				_, err := tx.Exec(ctx, `CREATE TABLE rows (n INTEGER PRIMARY KEY, body BLOB NOT NULL)`)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 500)
			var next atomic.Int64
			before := db.group.commits.Load()
			b.ResetTimer()
			if callers == 1 {
				for b.Loop() {
					insertRow(b, db, next.Add(1), body)
				}
			} else {
				b.SetParallelism((callers + 1) / 2) // × GOMAXPROCS (2 here) goroutines
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						insertRow(b, db, next.Add(1), body)
					}
				})
			}
			b.StopTimer()
			if c := db.group.commits.Load() - before; c > 0 {
				b.ReportMetric(float64(next.Load())/float64(c), "tx/commit")
			}
		})
	}
}

func insertRow(b *testing.B, db *DB, n int64, body []byte) {
	if err := db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO rows (n, body) VALUES (?, ?)`, n, body)
		return err
	}); err != nil {
		b.Error(err)
	}
}
