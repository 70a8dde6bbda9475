// Package pgtest gives each test its own fresh, empty PostgreSQL database on a real server, so the
// PostgreSQL adapters are tested against PostgreSQL itself, in parallel, with nothing to set up by
// hand and nothing downloaded at test time.
//
// A package that uses it needs this TestMain, which runs the tests and then stops the cluster that
// pgtest started (URL fails the test without it):
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// The server is the one that ACCEPTED_TEST_DATABASE_URL names (a postgres:// URL of a role that
// may create databases) or, when that is unset, a throwaway cluster that the first URL call starts
// from the server binaries on PATH or under /usr/lib/postgresql/*/bin: one per test binary, in a
// new temp dir (on /dev/shm when it has room) on a free loopback port, with durability off, stopped
// and removed when the test binary ends, however it ends. Without those binaries the tests skip,
// unless CI is set: CI must run them.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names the environment variable that points the tests at a server of your own.
const EnvURL = "ACCEPTED_TEST_DATABASE_URL"

// opTimeout bounds each statement pgtest runs for a test (CREATE and DROP DATABASE, the first
// ping): long enough for a loaded CI machine, short enough that a stuck server fails the test.
const opTimeout = 30 * time.Second

// errNoBinaries means there is no server to start: the tests skip, or fail in CI.
var errNoBinaries = errors.New("pgtest: no PostgreSQL server binaries (initdb and pg_ctl) on PATH or under /usr/lib/postgresql/*/bin")

// shared is the one server of this test binary. It is package state, unlike the rest of the
// project, because it lives exactly as long as the test binary does, and Main and URL, the only
// ways in, are called from code that has no other place to keep it.
var shared struct {
	mu     sync.Mutex
	inMain bool    // Main is running the tests, so it will stop the cluster
	srv    *server // the server, once started or dialled
	err    error   // why there is none; kept, so that every test fails at once with the same error
}

// Main runs the tests and then stops the cluster that URL started, if it did. It returns the exit
// code for os.Exit, non-zero also when the cluster could not be stopped.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.inMain = false
	if shared.srv != nil {
		if err := shared.srv.close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	return code
}

// URL returns the URL of a new, empty database that belongs to this test alone, and drops the
// database when the test ends (terminating any connection the test left open).
func URL(tb testing.TB) string {
	tb.Helper()
	srv, err := sharedServer(tb)
	if errors.Is(err, errNoBinaries) {
		msg := err.Error() + ": install them (Debian: apt-get install postgresql) or set " + EnvURL +
			" to a postgres:// URL of a role that may create databases"
		if os.Getenv("CI") == "" {
			tb.Skip(msg)
		}
		tb.Fatal(msg + " (CI is set: the PostgreSQL tests must run there)")
	}
	if err != nil {
		tb.Fatal(err)
	}

	name := databaseName(tb.Name())
	if err := srv.createDatabase(name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := srv.dropDatabase(name); err != nil {
			tb.Error(err)
		}
	})
	u := *srv.url
	u.Path = "/" + name
	return u.String()
}

// sharedServer returns the binary's server, starting or dialling it on first use. Tests that ask
// while it starts wait for it on the mutex; the start itself has deadlines.
func sharedServer(tb testing.TB) (*server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		return nil, errors.New("pgtest: URL needs the package's TestMain to call pgtest.Main, " +
			"which stops the cluster when the tests end: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = openServer(tb)
	}
	return shared.srv, shared.err
}

// server is where the tests' databases are made: an admin connection pool on the cluster pgtest
// started, or on the server EnvURL names.
type server struct {
	url     *url.URL // the admin URL; a test's URL differs only in its path (the database)
	admin   *pgxpool.Pool
	cluster *cluster // nil for a server of EnvURL's
}

func openServer(tb testing.TB) (*server, error) {
	if raw := os.Getenv(EnvURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// The value is not printed: it may hold a password.
			return nil, fmt.Errorf("pgtest: %s is not a postgres:// URL", EnvURL)
		}
		return dial(u, nil)
	}

	c, err := startCluster()
	if err != nil {
		return nil, err
	}
	srv, err := dial(c.url(), c)
	if err != nil {
		return nil, errors.Join(err, c.stop())
	}
	tb.Logf("pgtest: started a PostgreSQL cluster at %s in %v (initdb %v, start %v; binaries in %s)",
		srv.url.Redacted(), (c.initdbTook + c.startTook).Round(time.Millisecond),
		c.initdbTook.Round(time.Millisecond), c.startTook.Round(time.Millisecond), c.binDir)
	return srv, nil
}

// dial opens the admin pool and waits until the server answers.
func dial(u *url.URL, c *cluster) (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect to %s: %w", u.Redacted(), err)
	}
	// pg_ctl has waited for the server to be ready; the retries cover a server of EnvURL's that is
	// still starting (a CI service, say).
	for {
		err = pool.Ping(ctx)
		if err == nil {
			return &server{url: u, admin: pool, cluster: c}, nil
		}
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("pgtest: waited %v for PostgreSQL at %s to accept connections: %w%s",
				opTimeout, u.Redacted(), err, c.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *server) close() error {
	s.admin.Close()
	if s.cluster == nil {
		return nil
	}
	return s.cluster.stop()
}

func (s *server) createDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create database %s on %s: %w%s", name, s.url.Redacted(), err, s.cluster.logTail())
	}
	return nil
}

// dropDatabase drops with FORCE (PostgreSQL 13 and later), so a connection that the test forgot to
// close does not leave the database behind.
func (s *server) dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s on %s: %w%s", name, s.url.Redacted(), err, s.cluster.logTail())
	}
	return nil
}

// databaseName is unique (60 random bits) and starts with the test's name, so a database that a
// killed run left on a server of EnvURL's says where it came from.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(strings.ToLower(rand.Text()[:12]))
	return b.String()
}
