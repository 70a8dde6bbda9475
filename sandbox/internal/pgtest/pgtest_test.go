package pgtest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Two tests running at the same time each get a database of their own: once both have created a
// table, neither sees the other's.
func TestParallelTestsDoNotSeeEachOther(t *testing.T) {
	var created sync.WaitGroup
	created.Add(2)
	tables := map[string]string{"apples": "pears", "pears": "apples"}
	for mine, theirs := range tables {
		t.Run(mine, func(t *testing.T) {
			t.Parallel()
			// Done however this test ends, so that a failure here does not stall the other test.
			done := sync.OnceFunc(created.Done)
			defer done()

			conn := mustConnect(t, URL(t))
			mustExec(t, conn, "CREATE TABLE "+mine+" (id int)")
			done()
			waitFor(t, &created, "the other test to create its table (both run in parallel: -parallel 2 or more)")

			var mineFound, theirsFound bool
			err := conn.QueryRow(t.Context(),
				"SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL", mine, theirs).Scan(&mineFound, &theirsFound)
			if err != nil {
				t.Fatal(err)
			}
			if !mineFound || theirsFound {
				t.Errorf("table %s found: %v (want true); table %s of the other test found: %v (want false)",
					mine, mineFound, theirs, theirsFound)
			}
		})
	}
}

// A URL reaches, with pgx, a new and empty database of the name it gives.
func TestURLIsAFreshDatabase(t *testing.T) {
	t.Parallel()
	raw := URL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(EnvURL) == "" && u.Query().Get("sslmode") != "disable" {
		t.Errorf("URL %s: want sslmode=disable for the local cluster", u.Redacted())
	}
	conn := mustConnect(t, raw)
	var database string
	var tables int
	err = conn.QueryRow(t.Context(), `SELECT current_database(),
		(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')`,
	).Scan(&database, &tables)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(u.Path, "/"); database != want || tables != 0 {
		t.Errorf("connected to database %q with %d relations in public; want %q with none", database, tables, want)
	}
	if a, b := URL(t), URL(t); a == b || a == raw {
		t.Errorf("two more calls gave %s and %s after %s; want a new database each time", a, b, raw)
	}
}

// A test's database is dropped when it ends, even when the test left a connection open.
func TestDatabaseIsDroppedAfterItsTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("uses a database", func(t *testing.T) {
		// Registered before URL's cleanup, so it runs after the drop (cleanups run last first):
		// the drop must not wait for a connection that the test left open.
		var conn *pgx.Conn
		t.Cleanup(func() {
			if conn != nil {
				conn.Close(context.Background())
			}
		})
		raw := URL(t)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		conn, err = pgx.Connect(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, "CREATE TABLE kept (id int)")
	})
	if t.Failed() || t.Skipped() || name == "" {
		return
	}

	srv, err := sharedServer(t)
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := srv.admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestDatabaseName(t *testing.T) {
	a, b := databaseName("TestX/sub-test #1"), databaseName("TestX/sub-test #1")
	if a == b || !strings.HasPrefix(a, "t_testx_sub_test__1_") {
		t.Errorf("databaseName gave %q and %q; want distinct names starting t_testx_sub_test__1_", a, b)
	}
	if long := databaseName(strings.Repeat("x", 200)); len(long) > 63 {
		t.Errorf("databaseName gave %d bytes; PostgreSQL keeps 63", len(long))
	}
}

func TestHighestBinDir(t *testing.T) {
	root := t.TempDir()
	var dirs []string
	for _, version := range []string{"9.6", "15", "10", "16"} {
		dir := filepath.Join(root, version, "bin")
		dirs = append(dirs, dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		tools := []string{"initdb", "pg_ctl"}
		if version == "16" {
			tools = tools[:1] // a client-only install: no server to start
		}
		for _, tool := range tools {
			if err := os.WriteFile(filepath.Join(dir, tool), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := highestBinDir(dirs), filepath.Join(root, "15", "bin"); got != want {
		t.Errorf("highestBinDir = %s; want %s", got, want)
	}
	if got := highestBinDir(nil); got != "" {
		t.Errorf("highestBinDir(nil) = %q; want none", got)
	}
}

// BenchmarkDatabase is what each test pays for its database: CREATE DATABASE, then DROP DATABASE.
func BenchmarkDatabase(b *testing.B) {
	srv, err := sharedServer(b)
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		name := databaseName(b.Name())
		if err := srv.createDatabase(name); err != nil {
			b.Fatal(err)
		}
		if err := srv.dropDatabase(name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdStart is what the first test of a binary pays: initdb and start (and the stop at
// the end, which Main pays).
func BenchmarkColdStart(b *testing.B) {
	for b.Loop() {
		c, err := startCluster()
		if err != nil {
			b.Skip(err)
		}
		b.ReportMetric(float64(c.initdbTook.Milliseconds()), "initdb-ms")
		b.ReportMetric(float64(c.startTook.Milliseconds()), "start-ms")
		if err := c.stop(); err != nil {
			b.Fatal(err)
		}
	}
}

func mustConnect(t *testing.T, raw string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func waitFor(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	const limit = 30 * time.Second
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("waited %v for %s", limit, what)
	}
}
