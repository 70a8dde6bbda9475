package outbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/webhooks"
)

// enqueueFrom stores a message for owner of network to url.
func (e *env) enqueueFrom(owner, network, url string) string {
	e.t.Helper()
	msg := webhooks.NewMessage("import.complete", testStart, map[string]any{"import_id": "imp_123"})
	job := jobs.NewID()
	err := e.db.Tx(e.t.Context(), func(ctx context.Context, tx sqldb.Tx) error {
		return e.o.Enqueue(ctx, tx, Webhook{Owner: owner, Network: network, URL: url, JobID: job, Message: msg})
	})
	if err != nil {
		e.t.Fatalf("Enqueue: %v", err)
	}
	return job
}

func pending(t testing.TB, db sqldb.DB) int {
	t.Helper()
	return dbtest.Count(t, db, `SELECT COUNT(*) FROM webhook_messages WHERE state = 'sending'`)
}

// TestParkedWebhooksRefuseNoNewcomer: a receiver told to answer 503 with
// Retry-After 86400 parks every webhook sent to it for a day. Keys of one
// network park at most their network's share; when parked webhooks fill
// the outbox, a newcomer's webhook is still sent (from a reserve that a
// heavy key cannot use), and the reserve itself is bounded.
func TestParkedWebhooksRefuseNoNewcomer(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		park := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "86400")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		ok := newReceiver(t, status(http.StatusNoContent))
		const perKey, perNet, all, reserve = 3, 5, 10, 3
		e := newEnv(t, db, func(c *Config) {
			c.MaxPendingPerOwner, c.MaxPendingPerNetwork, c.MaxPending, c.PendingReserve = perKey, perNet, all, reserve
			c.GuaranteedPerOwner, c.GuaranteedPerNetwork = 1, 2
		})
		notSent := func(owner, job, want string) {
			t.Helper()
			if l := e.logOf(owner, job); l.State != "failed" || len(l.Attempts) != 1 || !strings.Contains(l.Attempts[0].Error, want) {
				t.Errorf("%s: %s; want not sent: %q", owner, describe(l), want)
			}
		}
		// One network parks its share across keys; a fresh key of it is refused.
		for i := range perNet {
			e.enqueueFrom(fmt.Sprint("key_a", i/perKey), "203.0.113.0/24", park.URL)
		}
		notSent("key_a9", e.enqueueFrom("key_a9", "203.0.113.0/24", park.URL), "the API keys of your network (203.0.113.0/24) have 5 webhooks")
		// A second network parks its share: the outbox is full.
		for i := range perNet {
			e.enqueueFrom(fmt.Sprint("key_b", i/perKey), "198.51.100.0/24", park.URL)
		}
		if n := pending(t, db); n != all {
			t.Fatalf("%d webhooks pending, want the outbox full at %d", n, all)
		}
		dbtest.WaitFor(t, "every parked webhook to have had its attempt and to wait a day", func() (bool, string) {
			n := dbtest.Count(t, db, `SELECT COUNT(*) FROM webhook_messages WHERE state = 'sending' AND attempts = 1`)
			return n == all, fmt.Sprintf("%d of %d", n, all)
		})
		// A newcomer's webhook is delivered anyway.
		job := e.enqueueFrom("key_newcomer", "192.0.2.0/24", ok.URL)
		if l := e.final("key_newcomer", job); l.State != "delivered" {
			t.Fatalf("a newcomer's webhook with the outbox full of parked ones: %s", describe(l))
		}
		// Light newcomers use up the reserve; then even they wait.
		for i := range reserve {
			e.enqueueFrom(fmt.Sprint("key_light", i), fmt.Sprint("100.64.", i, ".0/24"), park.URL)
		}
		notSent("key_late", e.enqueueFrom("key_late", "100.64.99.0/24", ok.URL), "as many as it holds")
		if n := pending(t, db); n != all+reserve {
			t.Errorf("%d webhooks pending, want at most %d + %d", n, all, reserve)
		}
	})
}

// tarpit is a receiver that accepts requests and never answers them (until
// the test ends): each attempt holds a delivery worker for its timeout.
type tarpit struct {
	*receiver
	now, peak *atomic.Int64
}

func newTarpit(t *testing.T, peak *atomic.Int64, now *atomic.Int64) tarpit {
	done := make(chan struct{})
	var once sync.Once
	r := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	// Closing the server waits for its handlers: release them first.
	t.Cleanup(func() { once.Do(func() { close(done) }) })
	return tarpit{receiver: r, now: now, peak: peak}
}

// TestHangingEndpointsHoldFewWorkers: one network's keys send webhooks to
// receivers that hang until the attempt times out. On a queue of 8
// delivery workers they hold at most the network's share (3), and a
// newcomer's webhook to a receiver that answers is delivered at once.
func TestHangingEndpointsHoldFewWorkers(t *testing.T) {
	t.Parallel()
	dbtest.EachDB(t, func(t *testing.T, db sqldb.DB) {
		var now, peak atomic.Int64
		var pits []tarpit
		for range 4 {
			pits = append(pits, newTarpit(t, &peak, &now))
		}
		ok := newReceiver(t, status(http.StatusNoContent))
		const perEndpoint, perNetwork = 2, 3
		e := newEnv(t, db, func(c *Config) {
			c.AttemptTimeout, c.MinAttemptTimeout = 3*time.Second, 3*time.Second
			c.MaxInFlightPerEndpoint, c.MaxInFlightPerNetwork, c.BusyWait = perEndpoint, perNetwork, 20*time.Millisecond
		})
		for i := range 20 {
			e.enqueueFrom(fmt.Sprint("key_flood", i%4), "203.0.113.0/24", pits[i%len(pits)].URL)
		}
		dbtest.WaitFor(t, "the hanging receivers to hold their share of workers", func() (bool, string) {
			return now.Load() == perNetwork, fmt.Sprintf("%d requests hanging", now.Load())
		})
		start := time.Now()
		job := e.enqueueFrom("key_newcomer", "198.51.100.0/24", ok.URL)
		l := e.final("key_newcomer", job)
		took := time.Since(start)
		if l.State != "delivered" {
			t.Fatalf("a newcomer's webhook: %s", describe(l))
		}
		t.Logf("%s: 20 webhooks to 4 hanging receivers held %d of 8 workers; a newcomer's webhook was delivered in %v", db.Dialect(), peak.Load(), took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("a newcomer's webhook took %v behind hanging receivers, budget 2s (an attempt times out after 3s)", took)
		}
		if p := peak.Load(); p > perNetwork {
			t.Errorf("%d attempts hung at once, the network's share is %d", p, perNetwork)
		}
		for _, p := range pits {
			if n := e.o.InFlight(p.URL); n > perEndpoint {
				t.Errorf("%d attempts under way to one endpoint, its share is %d", n, perEndpoint)
			}
		}
	})
}

// dbOnly is a database New does not touch.
type dbOnly struct{ sqldb.DB }

func noSecrets(context.Context, string) ([]string, error) { return nil, nil }

// TestRepeatedFailuresShortenTheTimeout: after three failed attempts a
// message's next ones get a quarter of the timeout (not below the floor).
func TestRepeatedFailuresShortenTheTimeout(t *testing.T) {
	o, err := New(Config{DB: dbOnly{}, Client: http.DefaultClient, Secrets: noSecrets, AttemptTimeout: 8 * time.Second, MinAttemptTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]time.Duration{1: 8 * time.Second, 3: 8 * time.Second, 4: 2 * time.Second, 8: 2 * time.Second} {
		if got := o.timeoutFor(n); got != want {
			t.Errorf("timeout of attempt %d: %v, want %v", n, got, want)
		}
	}
	o, _ = New(Config{DB: dbOnly{}, Client: http.DefaultClient, Secrets: noSecrets, AttemptTimeout: 2 * time.Second, MinAttemptTimeout: time.Second})
	if got := o.timeoutFor(5); got != time.Second {
		t.Errorf("a shortened timeout under the floor: %v, want the floor of 1s", got)
	}
}
