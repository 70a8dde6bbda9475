package memstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/memstore"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newJob(t *testing.T, mut func(*jobs.Job)) jobs.Job {
	t.Helper()
	j := jobs.Job{ID: jobs.NewID(), Kind: "report", Owner: "key_a", Status: jobs.StatusQueued,
		CreatedAt: epoch, UpdatedAt: epoch, Expected: 10 * time.Second, Input: []byte(`{"a":1}`), Version: 1}
	if mut != nil {
		mut(&j)
	}
	return j
}

func mustCreate(t *testing.T, s *memstore.Store, j jobs.Job) {
	t.Helper()
	if err := s.Create(context.Background(), j); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func TestCopiesInAndOut(t *testing.T) {
	s := memstore.New()
	ctx := context.Background()
	j := newJob(t, func(j *jobs.Job) { j.Failure = &jobs.Failure{Code: "x"} })
	mustCreate(t, s, j)
	j.Input[0] = 'X'
	j.Failure.Code = "mutated"
	got, err := s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Input) != `{"a":1}` || got.Failure.Code != "x" {
		t.Fatalf("caller's later writes reached the store: %q %q", got.Input, got.Failure.Code)
	}
	got.Input[0] = 'Y'
	got.Failure.Code = "mutated"
	again, _ := s.Get(ctx, j.ID)
	if string(again.Input) != `{"a":1}` || again.Failure.Code != "x" {
		t.Fatalf("writes to a returned job reached the store: %q %q", again.Input, again.Failure.Code)
	}
	upd, err := s.Update(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	upd.Input[0] = 'Z'
	if final, _ := s.Get(ctx, j.ID); string(final.Input) != `{"a":1}` {
		t.Fatalf("writes to Update's answer reached the store: %q", final.Input)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	live := newJob(t, nil)
	mustCreate(t, s, live)
	dead := newJob(t, func(j *jobs.Job) { j.Status, j.ExpiresAt = jobs.StatusSucceeded, epoch })
	mustCreate(t, s, dead)
	if err := s.Expire(ctx, dead.ID); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"create_duplicate", func() error { return s.Create(ctx, live) }, jobs.ErrExists},
		{"create_over_tombstone", func() error { return s.Create(ctx, dead) }, jobs.ErrExists},
		{"get_missing", func() error { _, err := s.Get(ctx, "job_nope"); return err }, jobs.ErrNotFound},
		{"get_tombstone", func() error { _, err := s.Get(ctx, dead.ID); return err }, jobs.ErrGone},
		{"update_stale", func() error {
			_, err := s.Update(ctx, newJob(t, func(j *jobs.Job) { j.ID, j.Version = live.ID, 0 }))
			return err
		}, jobs.ErrVersionConflict},
		{"update_missing", func() error { _, err := s.Update(ctx, newJob(t, nil)); return err }, jobs.ErrNotFound},
		{"update_tombstone", func() error { _, err := s.Update(ctx, dead); return err }, jobs.ErrGone},
		{"expire_missing", func() error { return s.Expire(ctx, "job_nope") }, jobs.ErrNotFound},
		{"expire_tombstone_is_noop", func() error { return s.Expire(ctx, dead.ID) }, nil},
		{"canceled_ctx", func() error { _, err := s.Get(canceled, live.ID); return err }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if tomb, err := s.Get(ctx, dead.ID); tomb.Owner != dead.Owner || tomb.ID != dead.ID || tomb.Input != nil {
		t.Errorf("tombstone = %+v (%v), want only id and owner", tomb, err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1 (tombstones excluded)", n)
	}
}

func TestCompareAndSwapUnderContention(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	j := newJob(t, nil)
	mustCreate(t, s, j)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				for { // read-modify-write, retried on conflict, as the engine does
					cur, err := s.Get(ctx, j.ID)
					if err != nil {
						t.Error(err)
						return
					}
					cur.Percent++
					if _, err := s.Update(ctx, cur); err == nil {
						break
					} else if !errors.Is(err, jobs.ErrVersionConflict) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got, _ := s.Get(ctx, j.ID)
	if got.Percent != writers*each || got.Version != 1+writers*each {
		t.Fatalf("Percent %d, Version %d; want %d and %d: an update was lost", got.Percent, got.Version, writers*each, 1+writers*each)
	}
}

func TestListStalledAndExpired(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	beat := func(ago time.Duration) func(*jobs.Job) {
		return func(j *jobs.Job) { j.Status, j.LastBeat = jobs.StatusProcessing, epoch.Add(-ago) }
	}
	fresh := newJob(t, beat(5*time.Second)) // window 20s: fine
	old := newJob(t, beat(21*time.Second))  // stalled
	older := newJob(t, beat(time.Hour))     // stalled, listed first
	queued := newJob(t, nil)                // not processing: never stalled
	finished := newJob(t, func(j *jobs.Job) { j.Status, j.ExpiresAt = jobs.StatusFailed, epoch.Add(-time.Minute) })
	later := newJob(t, func(j *jobs.Job) { j.Status, j.ExpiresAt = jobs.StatusSucceeded, epoch.Add(time.Minute) })
	for _, j := range []jobs.Job{fresh, old, older, queued, finished, later} {
		mustCreate(t, s, j)
	}
	q := jobs.StallQuery{Now: epoch, Factor: 2, Floor: time.Second}
	tests := []struct {
		name  string
		list  func(limit int) ([]jobs.Job, error)
		limit int
		want  []string
	}{
		{"stalled", func(n int) ([]jobs.Job, error) { return s.ListStalled(ctx, q, n) }, 10, []string{older.ID, old.ID}},
		{"stalled_limited", func(n int) ([]jobs.Job, error) { return s.ListStalled(ctx, q, n) }, 1, []string{older.ID}},
		{"expired", func(n int) ([]jobs.Job, error) { return s.ListExpired(ctx, epoch, n) }, 10, []string{finished.ID}},
		{"zero_limit", func(n int) ([]jobs.Job, error) { return s.ListExpired(ctx, epoch, n) }, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.list(tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, j := range got {
				ids = append(ids, j.ID)
			}
			if len(ids) != len(tt.want) || (len(ids) > 0 && ids[0] != tt.want[0]) || (len(ids) > 1 && ids[1] != tt.want[1]) {
				t.Fatalf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestTombstonesDroppedAfterTTL(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	j := newJob(t, func(j *jobs.Job) { j.Status, j.ExpiresAt = jobs.StatusSucceeded, epoch })
	mustCreate(t, s, j)
	if err := s.Expire(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want error
	}{
		{epoch.Add(memstore.TombstoneTTL - time.Second), jobs.ErrGone},
		{epoch.Add(memstore.TombstoneTTL), jobs.ErrNotFound},
	} {
		if _, err := s.ListExpired(ctx, tt.at, 10); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, j.ID); !errors.Is(err, tt.want) {
			t.Fatalf("Get after housekeeping at %s: %v, want %v", tt.at, err, tt.want)
		}
	}
}
