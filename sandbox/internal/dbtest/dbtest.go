// Package dbtest runs a test suite on every database backend the sandbox
// has (SQLite, and PostgreSQL through pgtest), so each store is checked by
// one suite against every adapter, in the style of testing/fstest. A
// package that uses it needs its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
package dbtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/accepted-dev/accepted/sandbox/internal/pgtest"
	"github.com/accepted-dev/accepted/sandbox/internal/postgres"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/sqlite"
)

// Wait bounds every wait of a suite and every database call of this
// package: a test fails with what it waited for, it never hangs.
const Wait = 15 * time.Second

// Backend is one implementation of sqldb.DB.
type Backend struct {
	Name string
	// Database makes a new, empty database and answers a function that
	// opens a handle on it (migrated, closed when the test ends); call it
	// again for a second handle, as a restarted process or another
	// replica would have.
	Database func(t testing.TB) func(t testing.TB, log *slog.Logger) sqldb.DB
	// Shared: handles on one database hear each other's notifications
	// (PostgreSQL's LISTEN/NOTIFY). SQLite's stay in their handle (one
	// process owns the file), so two "replicas" there share one handle.
	Shared bool
}

// Open answers a new, empty, migrated database on b.
func (b Backend) Open(t testing.TB, log *slog.Logger) sqldb.DB {
	t.Helper()
	return b.Database(t)(t, log)
}

// Backends are SQLite and PostgreSQL.
func Backends() []Backend {
	return []Backend{
		{
			Name: "sqlite",
			Database: func(t testing.TB) func(testing.TB, *slog.Logger) sqldb.DB {
				path := filepath.Join(t.TempDir(), "sandbox.db")
				if err := copyTemplate(path); err != nil {
					t.Fatal(err)
				}
				return func(t testing.TB, log *slog.Logger) sqldb.DB {
					t.Helper()
					return migrated(t, func(ctx context.Context) (sqldb.DB, error) { return sqlite.Open(ctx, path, log, time.Now) })
				}
			},
		},
		{
			Name: "postgres",
			Database: func(t testing.TB) func(testing.TB, *slog.Logger) sqldb.DB {
				url := pgtest.URL(t)
				return func(t testing.TB, log *slog.Logger) sqldb.DB {
					t.Helper()
					return migrated(t, func(ctx context.Context) (sqldb.DB, error) { return postgres.Open(ctx, url, log, time.Now) })
				}
			},
			Shared: true,
		},
	}
}

// Each runs f on every backend, each in a parallel subtest named after it.
func Each(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// EachDB runs f on a fresh database of every backend.
func EachDB(t *testing.T, f func(t *testing.T, db sqldb.DB)) {
	t.Helper()
	Each(t, func(t *testing.T, b Backend) { f(t, b.Open(t, Logger(t))) })
}

// Main runs a package's tests: it migrates a SQLite template that every
// SQLite database of the tests starts as a copy of (the migrations, run
// through a C library translated to Go, cost most of a small test's CPU
// time under -race), and runs pgtest.Main. It answers the exit code.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dbtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if template, err = newTemplate(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return pgtest.Main(m)
}

// template is the migrated SQLite database Main made; "" outside Main,
// where each database migrates itself.
var template string

func newTemplate(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	path := filepath.Join(dir, "template.db")
	db, err := sqlite.Open(ctx, path, nil, time.Now)
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx, true)
	if err := errors.Join(err, db.Close()); err != nil {
		return "", fmt.Errorf("migrating the SQLite template: %w", err)
	}
	return path, nil
}

// copyTemplate copies the template to path (with its write-ahead log, if
// closing it left one); without a template it does nothing.
func copyTemplate(path string) error {
	if template == "" {
		return nil
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(template + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(path+suffix, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// closeOnce is a database whose Close may be called early by a test and
// again by the cleanup.
type closeOnce struct {
	sqldb.DB
	once func() error
}

func (c closeOnce) Close() error { return c.once() }

func migrated(t testing.TB, open func(ctx context.Context) (sqldb.DB, error)) sqldb.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	db, err := open(ctx)
	if err != nil {
		t.Fatalf("opening the database: %v", err)
	}
	c := closeOnce{DB: db, once: sync.OnceValue(db.Close)}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing the database: %v", err)
		}
	})
	if _, err := db.Migrate(ctx, true); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	return c
}

// Logger logs warnings and errors to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// Queue builds and starts a River client on db whose queues each run up
// to workers jobs and look for work every 20 ms; it stops when the test
// ends (or earlier, with the answered stop, which is idempotent).
func Queue(t testing.TB, db sqldb.DB, log *slog.Logger, workers *river.Workers, queues []string, periodic []*river.PeriodicJob) (q sqldb.Queue, stop func()) {
	t.Helper()
	qs := map[string]river.QueueConfig{}
	for _, name := range queues {
		qs[name] = river.QueueConfig{MaxWorkers: 8, FetchPollInterval: 20 * time.Millisecond}
	}
	q, err := db.NewQueue(&river.Config{
		ID:                "test_" + rand.Text(),
		Workers:           workers,
		Logger:            log,
		TestOnly:          true,
		FetchPollInterval: 20 * time.Millisecond,
		FetchCooldown:     5 * time.Millisecond,
		Queues:            qs,
		PeriodicJobs:      periodic,
	})
	if err != nil {
		t.Fatalf("NewQueue: %v", err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatalf("starting the queue: %v", err)
	}
	stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Wait)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stopping the queue: %v", err)
		}
	})
	t.Cleanup(stop)
	return q, stop
}

// WaitFor polls cond until it holds, failing the test after Wait with what
// it waited for and the last state cond described.
func WaitFor(t testing.TB, what string, cond func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", Wait, what, state)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Count answers a single-integer query.
func Count(t testing.TB, db sqldb.DB, query string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	var n int
	if err := db.Read().QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Exec runs a statement in a transaction of its own.
func Exec(t testing.TB, db sqldb.DB, query string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	var n int64
	err := db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		var err error
		n, err = tx.Exec(ctx, query, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
