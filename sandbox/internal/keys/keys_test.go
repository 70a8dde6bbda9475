package keys_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/keys"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, db sqldb.DB, clk *clock.Fake, cfg keys.Config) *keys.Store {
	t.Helper()
	cfg.DB, cfg.Now, cfg.Logger = db, clk.Now, dbtest.Logger(t)
	s, err := keys.NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) }) // before the database closes
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), dbtest.Wait)
	t.Cleanup(cancel)
	return c
}

func mustIssue(t *testing.T, s *keys.Store, network string) (string, keys.Key) {
	t.Helper()
	plain, k, err := s.Issue(ctx(t), network)
	if err != nil {
		t.Fatalf("Issue from %s: %v", network, err)
	}
	return plain, k
}

func lastUsed(t *testing.T, db sqldb.DB, id string) time.Time {
	t.Helper()
	return sqldb.Time(int64(dbtest.Count(t, db, `SELECT last_used_at FROM api_keys WHERE id = ?`, id)))
}

// busy gives key id an unfinished job, as the job engine counts them.
func busy(t *testing.T, db sqldb.DB, id string) {
	t.Helper()
	dbtest.Exec(t, db, `INSERT INTO job_owners (owner, unfinished) VALUES (?, 1) ON CONFLICT (owner) DO UPDATE SET unfinished = 1`, id)
}

// sending gives key id a webhook still being delivered, due at next.
func sending(t *testing.T, db sqldb.DB, id string, next time.Time) {
	t.Helper()
	dbtest.Exec(t, db, `INSERT INTO webhook_messages (id, owner, job_id, url, type, payload, created_at, state, next_at, updated_at)
		VALUES (?, ?, ?, 'https://example.com/h', 'import.complete', ?, ?, 'sending', ?, ?)`,
		"msg_"+id, id, "job_"+id, []byte("{}"), sqldb.Nanos(epoch), sqldb.Nanos(next), sqldb.Nanos(epoch))
}

// TestLookup: a key is found by its plain text with the network it was
// minted from; junk and unknown keys are ErrUnknown.
func TestLookup(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		s := newStore(t, db, clock.NewFake(epoch), keys.Config{})
		plain, k := mustIssue(t, s, "203.0.113.0/24")
		got, err := s.Lookup(ctx(t), plain)
		if err != nil || got.ID != k.ID || got.Network != "203.0.113.0/24" || !got.CreatedAt.Equal(epoch) {
			t.Fatalf("Lookup = %+v, %v; want %+v", got, err, k)
		}
		for _, junk := range []string{"", "sk_sandbox_nope", "Bearer x", plain + "x"} {
			if _, err := s.Lookup(ctx(t), junk); !errors.Is(err, keys.ErrUnknown) {
				t.Errorf("Lookup(%q) = %v, want ErrUnknown", junk, err)
			}
		}
	})
}

// TestTouchAndCache: polling does not write on every request: a key's
// last use is written at most once a minute, and a looked-up key is
// answered from the cache for CacheTTL (a key deleted behind the store's
// back is honoured until then, and no longer).
func TestTouchAndCache(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		clk := clock.NewFake(epoch)
		s := newStore(t, db, clk, keys.Config{CacheTTL: 5 * time.Second})
		plain, k := mustIssue(t, s, "net")
		writes := 0
		last := lastUsed(t, db, k.ID)
		for i := range 600 { // ten minutes of polls, one a second
			clk.Advance(time.Second)
			if _, err := s.Lookup(ctx(t), plain); err != nil {
				t.Fatalf("poll %d: %v", i, err)
			}
			s.FlushTouches(ctx(t)) // what the store does within a second
			if now := lastUsed(t, db, k.ID); !now.Equal(last) {
				writes++
				last = now
			}
		}
		if writes < 9 || writes > 10 {
			t.Errorf("600 polls over ten minutes wrote last_used_at %d times, want one a minute (9 or 10)", writes)
		}
		if s.Cached() != 1 {
			t.Errorf("%d keys cached, want 1", s.Cached())
		}
		clk.Advance(5 * time.Second)
		if _, err := s.Lookup(ctx(t), plain); err != nil { // read afresh, cached for 5 s
			t.Fatal(err)
		}
		dbtest.Exec(t, db, `DELETE FROM api_keys WHERE id = ?`, k.ID)
		clk.Advance(4 * time.Second)
		if _, err := s.Lookup(ctx(t), plain); err != nil {
			t.Errorf("a cached key within CacheTTL: %v, want it still answered", err)
		}
		clk.Advance(time.Second)
		if _, err := s.Lookup(ctx(t), plain); !errors.Is(err, keys.ErrUnknown) {
			t.Errorf("a deleted key after CacheTTL: %v, want ErrUnknown", err)
		}
	})
}

// TestTouchLeavesTheRequest: a lookup that notes a use does not write it
// itself (a poll never waits for a write); the store writes it within
// about a second, and before a sweep chooses by it.
func TestTouchLeavesTheRequest(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		clk := clock.NewFake(epoch)
		s := newStore(t, db, clk, keys.Config{})
		plain, k := mustIssue(t, s, "net")
		before := lastUsed(t, db, k.ID)
		clk.Advance(2 * time.Minute)
		if _, err := s.Lookup(ctx(t), plain); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(t, db, k.ID); !got.Equal(before) {
			t.Fatalf("the lookup wrote the key's use itself (%v, was %v)", got, before)
		}
		deadline := time.Now().Add(10 * time.Second)
		for lastUsed(t, db, k.ID).Equal(before) {
			if time.Now().After(deadline) {
				t.Fatal("the key's use was not written within 10 s of the lookup (it should be within about 1 s)")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got, want := lastUsed(t, db, k.ID), clk.Now(); !got.Equal(want) {
			t.Errorf("last use written as %v, want %v", got, want)
		}
		// A use noted just before a sweep counts in it.
		clk.Advance(keys.DefaultTTL + time.Minute)
		if _, err := s.Lookup(ctx(t), plain); err != nil { // a fresh read: the cache entry expired
			t.Fatal(err)
		}
		if n, err := s.Sweep(ctx(t)); err != nil || n != 0 {
			t.Errorf("Sweep right after a use: %d deleted, %v; want none", n, err)
		}
	})
}

// TestCacheBounded: the lookup cache never holds more than CacheSize keys.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		s := newStore(t, db, clock.NewFake(epoch), keys.Config{CacheSize: 8})
		for i := range 30 {
			plain, _ := mustIssue(t, s, fmt.Sprint("net", i))
			if _, err := s.Lookup(ctx(t), plain); err != nil {
				t.Fatal(err)
			}
			if n := s.Cached(); n > 8 {
				t.Fatalf("%d keys cached, the cap is 8", n)
			}
		}
	})
}

// TestSweep: a key unused for the TTL is deleted with its secrets, its
// disabled endpoints and (through OnDelete) its inboxes, unless it has a
// job unfinished or a webhook still being delivered; jobs stay.
func TestSweep(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		clk := clock.NewFake(epoch)
		var deleted []string
		var mu sync.Mutex
		s := newStore(t, db, clk, keys.Config{TTL: 7 * 24 * time.Hour, OnDelete: []func(context.Context, sqldb.Tx, string) error{
			func(ctx context.Context, tx sqldb.Tx, id string) error {
				mu.Lock()
				deleted = append(deleted, id)
				mu.Unlock()
				_, err := tx.Exec(ctx, `DELETE FROM inboxes WHERE owner = ?`, id)
				return err
			},
		}})
		idlePlain, idle := mustIssue(t, s, "net")
		_, withJob := mustIssue(t, s, "net")
		_, withHook := mustIssue(t, s, "net")
		activePlain, _ := mustIssue(t, s, "net")
		if _, err := s.Lookup(ctx(t), idlePlain); err != nil { // cached: the sweep must forget it
			t.Fatal(err)
		}
		for _, id := range []string{idle.ID, withJob.ID, withHook.ID} {
			dbtest.Exec(t, db, `INSERT INTO webhook_secrets (owner, current, current_created) VALUES (?, 'whsec_x', 1)`, id)
			dbtest.Exec(t, db, `INSERT INTO inboxes (id, owner, created_at) VALUES (?, ?, 1)`, "inb_"+id, id)
			dbtest.Exec(t, db, `INSERT INTO jobs (id, owner, kind, status, created_at, updated_at, plan) VALUES (?, ?, 'report', 'succeeded', 1, 1, ?)`, "job_done_"+id, id, []byte("{}"))
		}
		dbtest.Exec(t, db, `INSERT INTO job_owners (owner, unfinished) VALUES (?, 0)`, idle.ID)
		busy(t, db, withJob.ID)
		sending(t, db, withHook.ID, epoch.Add(time.Hour))

		clk.Advance(6 * 24 * time.Hour)
		if _, err := s.Lookup(ctx(t), activePlain); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Sweep(ctx(t)); err != nil || n != 0 {
			t.Fatalf("Sweep before the TTL: %d deleted, %v; want none", n, err)
		}
		clk.Advance(24*time.Hour + time.Second)
		if n, err := s.Sweep(ctx(t)); err != nil || n != 1 {
			t.Fatalf("Sweep after the TTL: %d deleted, %v; want 1 (the idle key without work)", n, err)
		}
		if _, err := s.Lookup(ctx(t), idlePlain); !errors.Is(err, keys.ErrUnknown) {
			t.Errorf("the expired key: %v, want ErrUnknown at once on this replica", err)
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM api_keys`:                                           3,
			`SELECT COUNT(*) FROM webhook_secrets WHERE owner = '` + idle.ID + `'`:    0,
			`SELECT COUNT(*) FROM inboxes WHERE owner = '` + idle.ID + `'`:            0,
			`SELECT COUNT(*) FROM job_owners WHERE owner = '` + idle.ID + `'`:         0,
			`SELECT COUNT(*) FROM jobs WHERE owner = '` + idle.ID + `'`:               1,
			`SELECT COUNT(*) FROM webhook_secrets WHERE owner = '` + withJob.ID + `'`: 1,
			`SELECT COUNT(*) FROM inboxes WHERE owner = '` + withHook.ID + `'`:        1,
		} {
			if got := dbtest.Count(t, db, q); got != want {
				t.Errorf("%s = %d, want %d", q, got, want)
			}
		}
		if len(deleted) != 1 || deleted[0] != idle.ID {
			t.Errorf("OnDelete ran for %v, want [%s]", deleted, idle.ID)
		}
		// Their work done, the other two expire at the next sweep.
		dbtest.Exec(t, db, `UPDATE job_owners SET unfinished = 0`)
		dbtest.Exec(t, db, `UPDATE webhook_messages SET state = 'delivered'`)
		if n, err := s.Sweep(ctx(t)); err != nil || n != 2 {
			t.Fatalf("Sweep once their work is done: %d deleted, %v; want 2", n, err)
		}
	})
}

// TestEvictAtMax: at Max keys a newcomer is served: the least recently
// used key with no unfinished work makes room. Only when every key has
// work is the newcomer refused, with ErrFull and a Retry-After no later
// than the first of that work's expected ends.
func TestEvictAtMax(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		clk := clock.NewFake(epoch)
		const max = 3
		s := newStore(t, db, clk, keys.Config{Max: max})
		var plains []string
		for i := range max {
			p, _ := mustIssue(t, s, fmt.Sprint("net", i))
			plains = append(plains, p)
			clk.Advance(2 * time.Minute)
		}
		// Key 0 is used again: key 1 is now the least recently used.
		if _, err := s.Lookup(ctx(t), plains[0]); err != nil {
			t.Fatal(err)
		}
		newPlain, _ := mustIssue(t, s, "newcomer")
		if _, err := s.Lookup(ctx(t), plains[1]); !errors.Is(err, keys.ErrUnknown) {
			t.Errorf("the least recently used key: %v, want evicted", err)
		}
		for _, p := range []string{plains[0], plains[2], newPlain} {
			if _, err := s.Lookup(ctx(t), p); err != nil {
				t.Errorf("a kept key: %v", err)
			}
		}
		if n, _ := s.Count(ctx(t), ""); n != max {
			t.Fatalf("%d keys, the cap is %d", n, max)
		}
		// Every key busy: nothing can be evicted.
		rows, err := db.Read().Query(ctx(t), `SELECT id FROM api_keys`)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for rows.Next() {
			var id string
			_ = rows.Scan(&id)
			ids = append(ids, id)
		}
		_ = rows.Close()
		for i, id := range ids {
			if i == 0 {
				sending(t, db, id, clk.Now().Add(90*time.Second))
			} else {
				busy(t, db, id)
			}
		}
		_, _, err = s.Issue(ctx(t), "another")
		var full *keys.FullError
		if !errors.As(err, &full) || !errors.Is(err, keys.ErrFull) || full.Limit != max {
			t.Fatalf("Issue with every key busy: %v, want a FullError for ErrFull", err)
		}
		if full.RetryAfter < time.Second || full.RetryAfter > 90*time.Second {
			t.Errorf("Retry-After %v, want at most the 90 s until the first webhook attempt", full.RetryAfter)
		}
		if n, _ := s.Count(ctx(t), ""); n != max {
			t.Fatalf("%d keys after a refusal, want %d", n, max)
		}
	})
}

// TestNetworkShare: one network holds at most MaxPerNetwork keys: past
// it, minting evicts that network's own least recently used key, never
// another network's; when all of its keys are busy it is refused with
// ErrNetworkFull, and a newcomer from another network is still served.
func TestNetworkShare(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		clk := clock.NewFake(epoch)
		s := newStore(t, db, clk, keys.Config{Max: 100, MaxPerNetwork: 2})
		otherPlain, _ := mustIssue(t, s, "198.51.100.0/24") // the oldest of all
		clk.Advance(time.Minute)
		var ids []string
		for range 20 { // a flood from one network
			_, k := mustIssue(t, s, "203.0.113.0/24")
			ids = append(ids, k.ID)
			clk.Advance(time.Minute)
		}
		if n, _ := s.Count(ctx(t), "203.0.113.0/24"); n != 2 {
			t.Fatalf("the flooding network holds %d keys, its share is 2", n)
		}
		if _, err := s.Lookup(ctx(t), otherPlain); err != nil {
			t.Fatalf("another network's key was evicted by the flood: %v", err)
		}
		busy(t, db, ids[18])
		busy(t, db, ids[19])
		_, _, err := s.Issue(ctx(t), "203.0.113.0/24")
		var full *keys.FullError
		if !errors.As(err, &full) || !errors.Is(err, keys.ErrNetworkFull) || full.Limit != 2 {
			t.Fatalf("Issue from a network whose keys are all busy: %v, want ErrNetworkFull", err)
		}
		if _, _, err := s.Issue(ctx(t), "192.0.2.0/24"); err != nil {
			t.Fatalf("a newcomer from another network: %v", err)
		}
	})
}

// TestIssueConcurrent: Issues racing (on PostgreSQL, on many connections)
// never take the store past Max, and each is served by an eviction.
func TestIssueConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		s := newStore(t, db, clock.NewFake(epoch), keys.Config{Max: 5, MaxPerNetwork: 3})
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() {
				if _, _, err := s.Issue(ctx(t), fmt.Sprint("net", i%4)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Issue: %v", err)
		}
		if n, _ := s.Count(ctx(t), ""); n != 5 {
			t.Errorf("%d keys after 40 racing Issues, want the cap of 5", n)
		}
		for i := range 4 {
			if n, _ := s.Count(ctx(t), fmt.Sprint("net", i)); n > 3 {
				t.Errorf("net%d holds %d keys, its share is 3", i, n)
			}
		}
	})
}
