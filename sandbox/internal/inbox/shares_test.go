package inbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

func receive(t *testing.T, s *Store, id string, body []byte) {
	t.Helper()
	if _, err := s.Receive(context.Background(), id, http.Header{"Content-Type": {"application/json"}}, body); err != nil {
		t.Fatalf("Receive: %v", err)
	}
}

func deliveries(t *testing.T, db sqldb.DB, id string) int {
	t.Helper()
	return dbtest.Count(t, db, `SELECT COUNT(*) FROM inbox_deliveries WHERE inbox_id = ?`, id)
}

// TestByteBudget: stored deliveries of all inboxes stay within MaxBytes:
// a flood into one inbox drops that inbox's oldest deliveries, never a
// newcomer's, and each inbox's count of bytes matches what it stores.
func TestByteBudget(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		const budget = 64 << 10
		s := newStore(t, db, "", func(c *Config) { c.Deliveries, c.MaxBytes = 100, budget })
		flood, newcomer := mustCreate(t, s, "key_flood"), mustCreate(t, s, "key_newcomer")
		body := []byte(`{"pad":"` + strings.Repeat("x", 4000) + `"}`)
		receive(t, s, newcomer.ID, []byte(`{"hello":1}`))
		for range 60 {
			receive(t, s, flood.ID, body)
			if used, err := s.Usage(context.Background()); err != nil || used > budget {
				t.Fatalf("stored deliveries take %d bytes (%v), the budget is %d", used, err, budget)
			}
		}
		receive(t, s, newcomer.ID, []byte(`{"hello":2}`))
		if n := deliveries(t, db, newcomer.ID); n != 2 {
			t.Errorf("the newcomer's inbox keeps %d deliveries, want both", n)
		}
		if n := deliveries(t, db, flood.ID); n >= 60 || n < 5 {
			t.Errorf("the flooded inbox keeps %d of 60 deliveries, want its newest within the budget", n)
		}
		if bad := dbtest.Count(t, db, `SELECT COUNT(*) FROM inboxes i WHERE stored_bytes <>
			(SELECT COALESCE(SUM(stored_bytes), 0) FROM inbox_deliveries d WHERE d.inbox_id = i.id)`); bad != 0 {
			t.Errorf("%d inboxes count their bytes wrong", bad)
		}
		// The newest flood delivery is the one kept last.
		ds, err := s.Deliveries(context.Background(), "key_flood", flood.ID)
		if err != nil || len(ds) == 0 || ds[0].Seq != 60 {
			t.Errorf("the flooded inbox's newest delivery: %v (%v), want seq 60", len(ds), err)
		}
	})
}

// TestIdleInboxesExpire: Sweep deletes an inbox with nothing received,
// changed or created for TTL, ends its subscriptions, and keeps the others.
func TestIdleInboxesExpire(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
		s := newStore(t, db, "", func(c *Config) { c.Clock, c.TTL = clk, 24*time.Hour })
		idle, used, changed := mustCreate(t, s, "key_a"), mustCreate(t, s, "key_b"), mustCreate(t, s, "key_c")
		sub, cancel, err := s.Subscribe(context.Background(), idle.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		clk.Advance(20 * time.Hour)
		receive(t, s, used.ID, []byte(`{}`))
		if _, err := s.SetBehaviour(context.Background(), "key_c", changed.ID, Behaviour{Status: 503, Remaining: 1}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(5 * time.Hour)
		if n, err := s.Sweep(context.Background()); err != nil || n != 1 {
			t.Fatalf("Sweep: %d deleted, %v; want the idle one", n, err)
		}
		if _, err := s.Get(context.Background(), "key_a", idle.ID); err != ErrNotFound {
			t.Errorf("the idle inbox: %v, want ErrNotFound", err)
		}
		select {
		case _, ok := <-sub:
			if ok {
				t.Error("the idle inbox's subscription got a delivery, want it closed")
			}
		case <-time.After(dbtest.Wait):
			t.Fatalf("the idle inbox's subscription was not closed within %v", dbtest.Wait)
		}
		for _, ib := range []Inbox{used, changed} {
			if _, err := s.Get(context.Background(), ib.Owner, ib.ID); err != nil {
				t.Errorf("an active inbox: %v", err)
			}
		}
		clk.Advance(24 * time.Hour)
		if n, err := s.Sweep(context.Background()); err != nil || n != 2 {
			t.Fatalf("Sweep a day later: %d deleted, %v; want 2", n, err)
		}
	})
}

// TestFullStoreDropsTheHeaviestNetwork: at MaxInboxes, a creation drops
// the least recently active inbox of the network whose keys hold the
// most, so a network flooding the store churns its own inboxes, not an
// older one of another network.
func TestFullStoreDropsTheHeaviestNetwork(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		for owner, network := range map[string]string{"key_old": "198.51.100.0/24", "key_new": "192.0.2.0/24"} {
			dbtest.Exec(t, db, `INSERT INTO api_keys (digest, id, network, created_at, last_used_at) VALUES (?, ?, ?, 1, 1)`, []byte(owner), owner, network)
		}
		for i := range 5 {
			owner := fmt.Sprint("key_flood_", i)
			dbtest.Exec(t, db, `INSERT INTO api_keys (digest, id, network, created_at, last_used_at) VALUES (?, ?, '203.0.113.0/24', 1, 1)`, []byte(owner), owner)
		}
		s := newStore(t, db, "", func(c *Config) { c.PerOwner, c.MaxInboxes = 3, 6 })
		old := mustCreate(t, s, "key_old") // the oldest of all
		for i := range 20 {
			mustCreate(t, s, fmt.Sprint("key_flood_", i%5))
			if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inboxes`); n > 6 {
				t.Fatalf("%d inboxes, the cap is 6", n)
			}
		}
		if _, err := s.Get(context.Background(), "key_old", old.ID); err != nil {
			t.Fatalf("another network's older inbox was dropped by the flood: %v", err)
		}
		newcomer := mustCreate(t, s, "key_new")
		for _, ib := range []Inbox{old, newcomer} {
			if _, err := s.Get(context.Background(), ib.Owner, ib.ID); err != nil {
				t.Errorf("%s's inbox: %v", ib.Owner, err)
			}
		}
		// A key's deletion takes its inboxes.
		err := db.Tx(context.Background(), func(ctx context.Context, tx sqldb.Tx) error { return s.DropOwner(ctx, tx, "key_old") })
		if err != nil {
			t.Fatal(err)
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inboxes WHERE owner = 'key_old'`); n != 0 {
			t.Errorf("key_old keeps %d inboxes after DropOwner", n)
		}
	})
}
