package secrets

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestRotationAndGrace(t *testing.T) {
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		ctx := context.Background()
		fake := clock.NewFake(time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC))
		s := New(db, fake, time.Hour)
		first, err := s.Get(ctx, "key_a")
		if err != nil || !strings.HasPrefix(first.Current.Value, webhooks.SecretPrefix) || first.Previous != nil || !first.Current.CreatedAt.Equal(fake.Now()) {
			t.Fatalf("first: %+v %v", first, err)
		}
		if again, _ := s.Get(ctx, "key_a"); again.Current != first.Current {
			t.Error("Get made a new secret")
		}
		if other, _ := s.Get(ctx, "key_b"); other.Current.Value == first.Current.Value {
			t.Error("two owners share a secret")
		}
		fake.Advance(time.Minute)
		rot, err := s.Rotate(ctx, "key_a")
		if err != nil || rot.Previous == nil || rot.Previous.Value != first.Current.Value || !rot.Previous.ExpiresAt.Equal(fake.Now().Add(time.Hour)) ||
			!rot.Current.CreatedAt.Equal(fake.Now()) {
			t.Fatalf("after rotation: %+v %v", rot, err)
		}
		if a := rot.Active(); len(a) != 2 || a[0] != rot.Current.Value || a[1] != first.Current.Value {
			t.Errorf("Active %v", a)
		}
		// A restarted process, or another replica, signs with the same two.
		if got, _ := New(db, fake, time.Hour).Active(ctx, "key_a"); len(got) != 2 || got[0] != rot.Current.Value {
			t.Errorf("another store on the database: %v", got)
		}
		fake.Advance(time.Hour)
		if after, _ := s.Get(ctx, "key_a"); after.Previous != nil || len(after.Active()) != 1 || after.Current != rot.Current {
			t.Errorf("after the grace window: %+v", after)
		}
		// Rotating twice drops the older previous secret at once.
		r1, _ := s.Rotate(ctx, "key_a")
		r2, _ := s.Rotate(ctx, "key_a")
		if r2.Previous.Value != r1.Current.Value {
			t.Errorf("previous %q, want %q", r2.Previous.Value, r1.Current.Value)
		}
		// A first rotation makes the first secret, then replaces it.
		if r, err := s.Rotate(ctx, "key_c"); err != nil || r.Previous == nil || r.Previous.Value == r.Current.Value {
			t.Errorf("first rotation: %+v %v", r, err)
		}
		if _, err := s.Get(ctx, ""); err != ErrNoOwner {
			t.Errorf("empty owner: %v", err)
		}
		if _, err := s.Rotate(ctx, ""); err != ErrNoOwner {
			t.Errorf("empty owner: %v", err)
		}
	})
}

// TestConcurrent checks that replicas asking at once agree: one first
// secret, and rotations that take turns, each replacing the one before.
func TestConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		open := b.Database(t)
		db := open(t, dbtest.Logger(t))
		stores := []*Store{New(db, clock.Real(), 0)}
		if b.Shared {
			stores = append(stores, New(open(t, dbtest.Logger(t)), clock.Real(), 0))
		}
		const n = 8
		var wg sync.WaitGroup
		firsts := make([]string, n)
		for i := range n {
			wg.Go(func() {
				set, err := stores[i%len(stores)].Get(ctx, "key_a")
				if err != nil {
					t.Error(err)
				}
				firsts[i] = set.Current.Value
			})
		}
		wg.Wait()
		for _, v := range firsts {
			if v != firsts[0] {
				t.Fatalf("concurrent first use made different secrets: %v", firsts)
			}
		}
		sets := make([]Set, n)
		for i := range n {
			wg.Go(func() {
				set, err := stores[i%len(stores)].Rotate(ctx, "key_a")
				if err != nil {
					t.Error(err)
				}
				sets[i] = set
			})
		}
		wg.Wait()
		// The rotations form one chain from the first secret: each
		// previous is the current of exactly one other, or the first.
		prevOf := map[string]string{}
		for _, s := range sets {
			if s.Previous == nil {
				t.Fatalf("rotation without a previous secret: %+v", s)
			}
			if _, dup := prevOf[s.Previous.Value]; dup {
				t.Fatalf("two rotations replaced the same secret: they did not take turns")
			}
			prevOf[s.Previous.Value] = s.Current.Value
		}
		cur, steps := firsts[0], 0
		for next, ok := prevOf[cur]; ok; next, ok = prevOf[cur] {
			cur, steps = next, steps+1
		}
		if steps != n {
			t.Errorf("the chain of rotations has %d links, want %d", steps, n)
		}
	})
}
