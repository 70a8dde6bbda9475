package idempotency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/dbtest"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// newFakeClock is the sandbox's fake clock at a fixed start.
func newFakeClock() *clock.Fake { return clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// fakeAPI is what the HTTP layer does around a job-starting POST: Begin,
// then either replay, or create a job (its record linked in the job's
// transaction) and Complete.
type fakeAPI struct {
	store *Store
	db    sqldb.DB
	jobs  atomic.Int64
}

// newStore is a Store on a fresh database of backend b.
func newStore(t *testing.T, b dbtest.Backend, cfg Config) (*Store, sqldb.DB) {
	t.Helper()
	db := b.Open(t, nil)
	return New(db, cfg), db
}

func newFakeAPI(t *testing.T, b dbtest.Backend, cfg Config) *fakeAPI {
	t.Helper()
	s, db := newStore(t, b, cfg)
	return &fakeAPI{store: s, db: db}
}

func (a *fakeAPI) post(t *testing.T, owner, key, body string) (Response, error) {
	t.Helper()
	ctx := context.Background()
	out, err := a.store.Begin(ctx, owner, key, Fingerprint("POST", "/v1/reports", []byte(body)))
	if err != nil {
		return Response{}, err
	}
	if out.Replayed {
		if out.Response.Status == 0 {
			t.Fatalf("replay of %s without a stored answer (job %s)", key, out.JobID)
		}
		out.Response.Header.Set(ReplayedHeader, "true")
		return out.Response, nil
	}
	id := a.jobs.Add(1)
	if err := a.db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
		return a.store.Link(ctx, tx, owner, key, fmt.Sprintf("job_%d", id))
	}); err != nil {
		t.Fatalf("Link: %v", err)
	}
	resp := Response{
		Status: http.StatusAccepted,
		Header: http.Header{"Location": {fmt.Sprintf("/v1/jobs/job_%d", id)}, "Content-Type": {"application/json"}},
		Body:   fmt.Appendf(nil, `{"id":"job_%d","status":"queued"}`, id),
	}
	if err := a.store.Complete(ctx, owner, key, resp); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	return resp, nil
}

func TestConformance(t *testing.T) { dbtest.Each(t, testConformance) }

func testConformance(t *testing.T, b dbtest.Backend) {
	t.Run("R17_same_key_same_body_replays_one_job", func(t *testing.T) {
		api := newFakeAPI(t, b, Config{})
		first, err := api.post(t, "owner", "k1", `{"rows": 3, "format": "csv"}`)
		if err != nil {
			t.Fatal(err)
		}
		// Same request, re-serialized by the client: keys reordered, spacing changed.
		second, err := api.post(t, "owner", "k1", "{\n  \"format\":\"csv\",\"rows\":3}")
		if err != nil {
			t.Fatal(err)
		}
		if api.jobs.Load() != 1 {
			t.Fatalf("%d jobs created, want 1", api.jobs.Load())
		}
		if first.Status != second.Status || !bytes.Equal(first.Body, second.Body) ||
			first.Header.Get("Location") != second.Header.Get("Location") {
			t.Fatalf("replay differs:\nfirst  %d %v %s\nsecond %d %v %s", first.Status, first.Header, first.Body, second.Status, second.Header, second.Body)
		}
		if second.Header.Get(ReplayedHeader) != "true" || first.Header.Get(ReplayedHeader) != "" {
			t.Fatalf("Idempotent-Replayed: first %q, second %q", first.Header.Get(ReplayedHeader), second.Header.Get(ReplayedHeader))
		}
		// The replay is a copy: changing it does not change what is stored.
		second.Body[0] = 'X'
		third, _ := api.post(t, "owner", "k1", `{"rows":3,"format":"csv"}`)
		if !bytes.Equal(third.Body, first.Body) {
			t.Fatalf("stored body was mutated through a replay: %s", third.Body)
		}
	})

	t.Run("R18_same_key_different_body_is_mismatch", func(t *testing.T) {
		api := newFakeAPI(t, b, Config{})
		if _, err := api.post(t, "owner", "k1", `{"rows":3}`); err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{`{"rows":4}`, `{"rows":3.0}`, `{"rows":3,"x":1}`, ``} {
			if _, err := api.post(t, "owner", "k1", body); !errors.Is(err, ErrMismatch) {
				t.Errorf("body %q: err = %v, want ErrMismatch", body, err)
			}
		}
		// Same body, other path or method: also a mismatch.
		s := api.store
		for _, fp := range [][32]byte{Fingerprint("POST", "/v1/exports", []byte(`{"rows":3}`)), Fingerprint("PUT", "/v1/reports", []byte(`{"rows":3}`))} {
			if _, err := s.Begin(context.Background(), "owner", "k1", fp); !errors.Is(err, ErrMismatch) {
				t.Errorf("err = %v, want ErrMismatch", err)
			}
		}
		if errors.Is(ErrMismatch, ErrKeyInvalid) || errors.Is(ErrMismatch, ErrInFlight) {
			t.Error("sentinels overlap")
		}
		if api.jobs.Load() != 1 {
			t.Fatalf("%d jobs, want 1", api.jobs.Load())
		}
	})

	t.Run("R19_concurrent_same_key_one_runs_others_in_flight", func(t *testing.T) {
		s, _ := newStore(t, b, Config{})
		fp := Fingerprint("POST", "/v1/reports", []byte(`{}`))
		const n = 32
		var (
			start           = make(chan struct{})
			wg              sync.WaitGroup
			fresh, inFlight atomic.Int64
			other           = make(chan error, n)
		)
		for range n {
			wg.Go(func() {
				<-start
				out, err := s.Begin(context.Background(), "owner", "k1", fp)
				switch {
				case err == nil && !out.Replayed:
					fresh.Add(1)
				case errors.Is(err, ErrInFlight):
					inFlight.Add(1)
				default:
					other <- fmt.Errorf("out %+v err %v", out, err)
				}
			})
		}
		close(start)
		wg.Wait()
		close(other)
		for err := range other {
			t.Error(err)
		}
		if fresh.Load() != 1 || inFlight.Load() != n-1 {
			t.Fatalf("new %d, in flight %d; want 1 and %d", fresh.Load(), inFlight.Load(), n-1)
		}
	})

	t.Run("R20_scoped_per_owner_255_chars_kept_24h", func(t *testing.T) {
		clk := newFakeClock()
		api := newFakeAPI(t, b, Config{Clock: clk})
		store := api.store
		a, _ := api.post(t, "owner-a", "shared-key", `{}`)
		b, _ := api.post(t, "owner-b", "shared-key", `{}`)
		if api.jobs.Load() != 2 || bytes.Equal(a.Body, b.Body) {
			t.Fatalf("two owners with one key: %d jobs, bodies %s %s", api.jobs.Load(), a.Body, b.Body)
		}

		if _, err := api.post(t, "owner-a", strings.Repeat("k", 256), `{}`); !errors.Is(err, ErrKeyInvalid) {
			t.Fatalf("256-char key: err = %v, want ErrKeyInvalid", err)
		}
		if _, err := api.post(t, "owner-a", strings.Repeat("k", 255), `{}`); err != nil {
			t.Fatalf("255-char key refused: %v", err)
		}

		clk.Advance(24*time.Hour - time.Second)
		if r, _ := api.post(t, "owner-a", "shared-key", `{}`); r.Header.Get(ReplayedHeader) != "true" {
			t.Fatal("entry gone before 24 h")
		}
		clk.Advance(time.Second)
		before := api.jobs.Load()
		if r, _ := api.post(t, "owner-a", "shared-key", `{}`); r.Header.Get(ReplayedHeader) != "" || api.jobs.Load() != before+1 {
			t.Fatal("entry still replayed after 24 h")
		}
		if err := store.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, err := store.Len(context.Background()); err != nil || n != 1 {
			t.Fatalf("%d records after the sweep (%v), want 1: the others expired with it, the new one stays", n, err)
		}
	})
}

func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		ok   bool
		hint string
	}{
		{"8e03978e-40d5-43e8-bc93-6894a57f9324", true, ""},
		{"a", true, ""},
		{"with space", true, ""},
		{"", false, "empty"},
		{strings.Repeat("x", 256), false, "256 bytes long; the limit is 255"},
		{"tab\there", false, "byte 4 is 0x09"},
		{"café", false, "byte 4 is 0xc3"},
	} {
		err := ValidateKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
			continue
		}
		if err != nil && (!errors.Is(err, ErrKeyInvalid) || !strings.Contains(err.Error(), tc.hint)) {
			t.Errorf("ValidateKey(%q) = %q, want ErrKeyInvalid mentioning %q", tc.key, err, tc.hint)
		}
	}
}

func TestParseKeyHeader(t *testing.T) {
	for in, want := range map[string]string{
		`"8e03978e-40d5"`: "8e03978e-40d5",
		`8e03978e-40d5`:   "8e03978e-40d5",
		`"a\"b"`:          `a"b`,
	} {
		if got, err := ParseKeyHeader(in); err != nil || got != want {
			t.Errorf("ParseKeyHeader(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`"unterminated`, ``, `""`} {
		if _, err := ParseKeyHeader(in); !errors.Is(err, ErrKeyInvalid) {
			t.Errorf("ParseKeyHeader(%s): err = %v, want ErrKeyInvalid", in, err)
		}
	}
}

func TestAbandonLetsRetryThrough(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) { testAbandonLetsRetryThrough(t, b) })
}

func testAbandonLetsRetryThrough(t *testing.T, b dbtest.Backend) {
	s, _ := newStore(t, b, Config{})
	ctx := context.Background()
	fp := Fingerprint("POST", "/v1/imports", []byte(`{"rows":[]}`))
	if out, err := s.Begin(ctx, "o", "k", fp); err != nil || out.Replayed {
		t.Fatalf("first Begin: %+v %v", out, err)
	}
	if _, err := s.Begin(ctx, "o", "k", fp); !errors.Is(err, ErrInFlight) {
		t.Fatalf("second Begin while in flight: %v", err)
	}
	if err := s.Abandon(ctx, "o", "k"); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Begin(ctx, "o", "k", fp); err != nil || out.Replayed {
		t.Fatalf("retry after Abandon: %+v %v", out, err)
	}
	if err := s.Abandon(ctx, "o", "missing"); !errors.Is(err, ErrNotInFlight) {
		t.Fatalf("Abandon unknown: %v", err)
	}
	if err := s.Complete(ctx, "o", "k", Response{Status: 202}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "o", "k", Response{Status: 202}); !errors.Is(err, ErrNotInFlight) {
		t.Fatalf("second Complete: %v", err)
	}
}

func TestStuckInFlightIsTakenOver(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) { testStuckInFlightIsTakenOver(t, b) })
}

func testStuckInFlightIsTakenOver(t *testing.T, b dbtest.Backend) {
	clk := newFakeClock()
	s, _ := newStore(t, b, Config{Clock: clk, InFlightTimeout: time.Minute})
	ctx := context.Background()
	fp := Fingerprint("POST", "/v1/reports", nil)
	if _, err := s.Begin(ctx, "o", "k", fp); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if _, err := s.Begin(ctx, "o", "k", fp); !errors.Is(err, ErrInFlight) {
		t.Fatalf("before timeout: %v", err)
	}
	clk.Advance(time.Second)
	if out, err := s.Begin(ctx, "o", "k", fp); err != nil || out.Replayed {
		t.Fatalf("after timeout: %+v %v", out, err)
	}
}

func TestBounds(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		clk := newFakeClock()
		s, _ := newStore(t, b, Config{Clock: clk, MaxKeysPerOwner: 3, MaxResponseBytes: 100})
		ctx := context.Background()
		fp := Fingerprint("POST", "/", nil)
		for i := range 3 {
			if _, err := s.Begin(ctx, "a", fmt.Sprint(i), fp); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Begin(ctx, "a", "3", fp); !errors.Is(err, ErrOwnerFull) {
			t.Fatalf("4th key of one owner: %v", err)
		}
		if _, err := s.Begin(ctx, "b", "0", fp); err != nil {
			t.Fatalf("another owner's first key: %v", err)
		}
		if err := s.Complete(ctx, "a", "1", Response{Body: make([]byte, 101)}); !errors.Is(err, ErrResponseTooLarge) {
			t.Fatalf("large response: %v", err)
		}
		if n, err := s.Len(ctx); err != nil || n != 4 {
			t.Fatalf("Len = %d (%v), want 4", n, err)
		}
		clk.Advance(24 * time.Hour)
		if err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Len(ctx); err != nil || n != 0 {
			t.Fatalf("Len = %d (%v) after TTL, want 0", n, err)
		}
		if _, err := s.Begin(ctx, "a", "3", fp); err != nil {
			t.Fatalf("after the sweep: %v", err)
		}
	})
}

// TestLink is R39 at the store: a record names its job in the job's
// transaction, so a replay finds the job even when its answer was never
// stored, a rolled-back job leaves the record free, and a claim taken over
// by a retry cannot link a second job.
func TestLink(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		clk := newFakeClock()
		s, db := newStore(t, b, Config{Clock: clk, InFlightTimeout: time.Minute})
		ctx := context.Background()
		fp := Fingerprint("POST", "/v1/reports", []byte(`{}`))
		link := func(key, job string, fail error) error {
			return db.Tx(ctx, func(ctx context.Context, tx sqldb.Tx) error {
				if err := s.Link(ctx, tx, "o", key, job); err != nil {
					return err
				}
				return fail
			})
		}
		// Linked, answer never stored: the replay names the job.
		if _, err := s.Begin(ctx, "o", "k1", fp); err != nil {
			t.Fatal(err)
		}
		if err := link("k1", "job_1", nil); err != nil {
			t.Fatal(err)
		}
		if out, err := s.Begin(ctx, "o", "k1", fp); err != nil || !out.Replayed || out.JobID != "job_1" || out.Response.Status != 0 {
			t.Fatalf("replay of a linked record without an answer: %+v %v", out, err)
		}
		// A linked record is never taken over, however old.
		clk.Advance(time.Hour)
		if out, err := s.Begin(ctx, "o", "k1", fp); err != nil || out.JobID != "job_1" {
			t.Fatalf("an old linked record: %+v %v", out, err)
		}
		if err := s.Abandon(ctx, "o", "k1"); !errors.Is(err, ErrNotInFlight) {
			t.Fatalf("Abandon of a linked record: %v, want ErrNotInFlight", err)
		}
		// The job's transaction rolls back: no link, the claim stays in flight.
		if _, err := s.Begin(ctx, "o", "k2", fp); err != nil {
			t.Fatal(err)
		}
		if err := link("k2", "job_2", errors.New("the job's insert failed")); err == nil {
			t.Fatal("the failing transaction committed")
		}
		if _, err := s.Begin(ctx, "o", "k2", fp); !errors.Is(err, ErrInFlight) {
			t.Fatalf("after a rolled-back link: %v, want ErrInFlight", err)
		}
		// Taken over after the timeout: the first claimant's link wins or
		// loses as a whole; the second link fails.
		clk.Advance(time.Minute)
		if out, err := s.Begin(ctx, "o", "k2", fp); err != nil || out.Replayed {
			t.Fatalf("take-over: %+v %v", out, err)
		}
		if err := link("k2", "job_3", nil); err != nil {
			t.Fatalf("the retry's link: %v", err)
		}
		if err := link("k2", "job_4", nil); !errors.Is(err, ErrNotInFlight) {
			t.Fatalf("a second link of one key: %v, want ErrNotInFlight", err)
		}
		if out, _ := s.Begin(ctx, "o", "k2", fp); out.JobID != "job_3" {
			t.Fatalf("k2 names %q, want job_3", out.JobID)
		}
	})
}

func TestFingerprintCanonicalBody(t *testing.T) {
	same := [][]byte{
		[]byte(`{"a":1,"b":[1,2,{"c":"é"}]}`),
		[]byte(" {\"b\" : [1, 2, {\"c\":\"\\u00e9\"}], \"a\":1}\n"),
	}
	if Fingerprint("post", "/p", same[0]) != Fingerprint("POST", "/p", same[1]) {
		t.Error("equivalent JSON bodies fingerprint differently")
	}
	if Fingerprint("POST", "/p", []byte("not json")) == Fingerprint("POST", "/p", []byte("not  json")) {
		t.Error("raw bodies were normalized")
	}
	if Fingerprint("POST", "/ab", nil) == Fingerprint("POST", "/a", []byte("b")) {
		t.Error("path and body boundary is ambiguous")
	}
}
