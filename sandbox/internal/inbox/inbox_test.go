package inbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func newStore(t *testing.T, db sqldb.DB, secret string, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{DB: db, Clock: clock.Real(), Logger: dbtest.Logger(t), PerOwner: 2, Deliveries: 3,
		Secrets: func(context.Context, string) ([]string, error) { return []string{secret}, nil }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mustCreate(t *testing.T, s *Store, owner string) Inbox {
	t.Helper()
	ib, err := s.Create(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	return ib
}

func signed(t *testing.T, secret string, body []byte) http.Header {
	t.Helper()
	s, err := webhooks.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, _ := s.Sign("msg_1", now, body)
	h := http.Header{}
	h.Set(webhooks.HeaderID, "msg_1")
	h.Set(webhooks.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhooks.HeaderSignature, sig)
	return h
}

// next waits for one delivery on ch.
func next(t *testing.T, ch <-chan Delivery, what string) Delivery {
	t.Helper()
	select {
	case d, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the subscription closed", what)
		}
		return d
	case <-time.After(dbtest.Wait):
		t.Fatalf("%s: no delivery within %v", what, dbtest.Wait)
		return Delivery{}
	}
}

func TestReceiveVerifiesBehavesAndBounds(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		secret, _ := webhooks.NewSecret()
		s := newStore(t, db, secret, nil)
		ib := mustCreate(t, s, "key_a")
		body := []byte(`{"type":"import.complete","timestamp":"2026-01-31T09:30:00Z","data":{}}`)

		ans, err := s.Receive(ctx, ib.ID, signed(t, secret, body), body)
		if err != nil || ans.Status != http.StatusNoContent || !ans.Delivery.Verification.Valid || ans.Delivery.Verification.Secret != "current" || ans.Delivery.Seq != 1 {
			t.Fatalf("signed delivery: %+v %v", ans, err)
		}
		if ans, _ := s.Receive(ctx, ib.ID, http.Header{}, body); ans.Delivery.Verification.Valid {
			t.Error("an unsigned delivery verified")
		}

		if _, err := s.SetBehaviour(ctx, "key_b", ib.ID, Behaviour{Status: 503, Remaining: 1}); err != ErrNotFound {
			t.Errorf("another owner set the behaviour: %v", err)
		}
		got, err := s.SetBehaviour(ctx, "key_a", ib.ID, Behaviour{Status: 503, Remaining: 2, RetryAfter: 7})
		if err != nil || got.Behaviour != (Behaviour{Status: 503, Remaining: 2, RetryAfter: 7}) {
			t.Fatalf("SetBehaviour: %+v %v", got, err)
		}
		for i, want := range []int{503, 503, 204} {
			ans, _ := s.Receive(ctx, ib.ID, http.Header{}, body)
			if ans.Status != want || (want == 503) != (ans.RetryAfter == 7) {
				t.Errorf("delivery %d answered %d (Retry-After %d), want %d", i, ans.Status, ans.RetryAfter, want)
			}
		}
		if g, _ := s.Get(ctx, "key_a", ib.ID); g.Received != 5 || g.Behaviour != (Behaviour{}) {
			t.Errorf("inbox after 5 deliveries: %+v", g)
		}
		ds, _ := s.Deliveries(ctx, "key_a", ib.ID)
		if len(ds) != 3 || ds[0].Answered != 204 || ds[2].Answered != 503 || ds[0].Seq != 5 || ds[2].Seq != 3 {
			t.Errorf("kept %d deliveries, newest first: %+v", len(ds), ds)
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inbox_deliveries WHERE inbox_id = ?`, ib.ID); n != 3 {
			t.Errorf("%d deliveries stored, want 3", n)
		}
		if _, err := s.Deliveries(ctx, "key_b", ib.ID); err != ErrNotFound {
			t.Errorf("another owner listed deliveries: %v", err)
		}
		if _, err := s.Get(ctx, "key_a", "inb_junk"); err != ErrNotFound {
			t.Errorf("junk id: %v", err)
		}

		// A third inbox drops the owner's oldest, deliveries and all.
		mustCreate(t, s, "key_a")
		mustCreate(t, s, "key_a")
		if _, err := s.Get(ctx, "key_a", ib.ID); err != ErrNotFound {
			t.Errorf("oldest inbox kept: %v", err)
		}
		if _, err := s.Receive(ctx, ib.ID, http.Header{}, body); err != ErrNotFound {
			t.Errorf("delivery to a dropped inbox: %v", err)
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inbox_deliveries WHERE inbox_id = ?`, ib.ID); n != 0 {
			t.Errorf("%d deliveries of a dropped inbox kept", n)
		}
	})
}

func TestLargeAndBinaryBodies(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		s := newStore(t, db, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil)
		ib := mustCreate(t, s, "key_a")
		big := make([]byte, MaxBody+10)
		for i := range big {
			big[i] = 'x'
		}
		big[0] = 0xff // not UTF-8
		ans, err := s.Receive(context.Background(), ib.ID, http.Header{"X-Test": {"1"}}, big)
		if err != nil || !ans.Delivery.Truncated || ans.Delivery.BodyBytes != MaxBody+10 {
			t.Fatalf("big body: %+v %v", ans.Delivery.Truncated, err)
		}
		ds, _ := s.Deliveries(context.Background(), "key_a", ib.ID)
		if len(ds) != 1 || ds[0].Body != ans.Delivery.Body || ds[0].Headers["X-Test"][0] != "1" || !ds[0].ReceivedAt.Equal(ans.Delivery.ReceivedAt) {
			t.Errorf("stored delivery differs from the answered one")
		}
	})
}

// TestCapsAcrossReplicas creates inboxes for one owner from two stores
// (two replicas on PostgreSQL) at once: the per-owner cap holds exactly.
func TestCapsAcrossReplicas(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		open := b.Database(t)
		db := open(t, dbtest.Logger(t))
		stores := []*Store{newStore(t, db, "", func(c *Config) { c.PerOwner = 3; c.MaxInboxes = 7 })}
		if b.Shared {
			stores = append(stores, newStore(t, open(t, dbtest.Logger(t)), "", func(c *Config) { c.PerOwner = 3; c.MaxInboxes = 7 }))
		}
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				if _, err := stores[i%len(stores)].Create(context.Background(), "key_a"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inboxes WHERE owner = 'key_a'`); n != 3 {
			t.Errorf("key_a has %d inboxes, want 3", n)
		}
		// The global cap drops the oldest of other owners.
		for i := range 6 {
			mustCreate(t, stores[0], fmt.Sprintf("key_%d", i))
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inboxes`); n != 7 {
			t.Errorf("%d inboxes, want the cap of 7", n)
		}
		if n := dbtest.Count(t, db, `SELECT COUNT(*) FROM inboxes WHERE owner = 'key_a'`); n != 1 {
			t.Errorf("key_a has %d inboxes after the global cap dropped its oldest, want 1", n)
		}
	})
}

func TestSubscribeNeverBlocksTheReceiver(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		s := newStore(t, db, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", func(c *Config) { c.Deliveries = 100 })
		ib := mustCreate(t, s, "key_a")
		ch, cancel, err := s.Subscribe(ctx, ib.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			for range subscriberBuffer * 3 {
				_, _ = s.Receive(ctx, ib.ID, http.Header{}, []byte(`{}`))
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(dbtest.Wait):
			t.Fatal("Receive blocked on a subscriber that does not read")
		}
		dbtest.WaitFor(t, "a full subscriber buffer", func() (bool, string) {
			return len(ch) == subscriberBuffer, fmt.Sprintf("%d buffered", len(ch))
		})
		for i := range subscriberBuffer {
			if d := <-ch; d.Seq <= i {
				t.Errorf("delivery %d has seq %d: out of order", i, d.Seq)
			}
		}
		cancel()
		cancel()
		for range ch {
		}
		idle, err := New(Config{DB: db, Clock: clock.Real()})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := idle.Subscribe(ctx, ib.ID, 0); !errors.Is(err, ErrNotStarted) {
			t.Errorf("Subscribe before Start: %v", err)
		}
	})
}

// TestSubscribeHearsEveryReplica: a subscriber on one replica hears what
// another replica received, catches up on what arrived before it
// subscribed, and is ended when its inbox is dropped.
func TestSubscribeHearsEveryReplica(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		open := b.Database(t)
		dbA := open(t, dbtest.Logger(t))
		dbB := dbA
		if b.Shared {
			dbB = open(t, dbtest.Logger(t))
		}
		a := newStore(t, dbA, "", func(c *Config) { c.Deliveries = 100 })
		r := newStore(t, dbB, "", func(c *Config) { c.Deliveries = 100 })
		ib := mustCreate(t, a, "key_a")
		// One delivery before the subscription, as a stream that read the
		// inbox (received 0) and subscribed a moment later would miss.
		if _, err := r.Receive(ctx, ib.ID, http.Header{}, []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
		ch, cancel, err := a.Subscribe(ctx, ib.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		if d := next(t, ch, "the delivery before the subscription"); d.Seq != 1 || d.Body != `{"n":1}` {
			t.Errorf("caught up with %+v", d)
		}
		for i := 2; i <= 4; i++ {
			if _, err := r.Receive(ctx, ib.ID, http.Header{}, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
				t.Fatal(err)
			}
			if d := next(t, ch, "a delivery to the other replica"); d.Seq != i || d.Body != fmt.Sprintf(`{"n":%d}`, i) {
				t.Errorf("heard %+v, want delivery %d", d, i)
			}
		}
		// Dropped (the owner's cap is 20 by default here): the stream ends.
		for range DefaultPerOwner {
			mustCreate(t, r, "key_a")
		}
		select {
		case _, open := <-ch:
			if open {
				t.Error("a delivery after the drop")
			}
		case <-time.After(dbtest.Wait):
			t.Fatal("the subscription of a dropped inbox stayed open")
		}
	})
}
