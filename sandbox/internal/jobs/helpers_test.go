package jobs_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/memstore"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	kindTest jobs.Kind = "test"
	ownerA             = "key_a"
	ownerB             = "key_b"
	waitMax            = 10 * time.Second
)

// testEngine bundles an engine with what tests poke at.
type testEngine struct {
	*jobs.Engine
	store *memstore.Store
	clk   *clock.Fake
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEngine builds a started engine on a fake clock and memstore, running
// work for kindTest, closed when the test ends.
func newEngine(t testing.TB, work jobs.Work, opts ...func(*jobs.Config)) *testEngine {
	t.Helper()
	te := newUnstartedEngine(t, work, opts...)
	te.Start(context.Background())
	return te
}

func newUnstartedEngine(t testing.TB, work jobs.Work, opts ...func(*jobs.Config)) *testEngine {
	t.Helper()
	te := &testEngine{store: memstore.New(), clk: clock.NewFake(epoch), logs: &syncBuffer{}}
	cfg := jobs.Config{
		Clock:     te.clk,
		Store:     te.store,
		Logger:    slog.New(slog.NewTextHandler(te.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Workers:   8,
		QueueSize: 1000,
		Work:      map[jobs.Kind]jobs.Work{kindTest: work},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := jobs.New(cfg)
	if err != nil {
		t.Fatalf("jobs.New: %v", err)
	}
	te.Engine = e
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitMax)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return te
}

func mustSubmit(t testing.TB, e *testEngine, owner string, expected time.Duration) jobs.Job {
	t.Helper()
	j, err := e.Submit(context.Background(), jobs.Spec{Kind: kindTest, Owner: owner, Expected: expected, Input: []byte(`{}`)})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return j
}

// mustWatchToEnd follows a job until its terminal state and returns every
// state seen, the snapshot first.
func mustWatchToEnd(t testing.TB, e *testEngine, owner, id string) []jobs.Job {
	t.Helper()
	cur, updates, stop, err := e.Watch(context.Background(), owner, id)
	if err != nil {
		t.Fatalf("Watch %s: %v", id, err)
	}
	defer stop()
	seen := []jobs.Job{cur}
	timeout := time.After(waitMax)
	for {
		select {
		case j, ok := <-updates:
			if !ok {
				if last := seen[len(seen)-1]; !last.Status.Terminal() {
					t.Fatalf("updates closed at status %s, want terminal", last.Status)
				}
				return seen
			}
			seen = append(seen, j)
		case <-timeout:
			t.Fatalf("job %s not terminal after %s; seen %d states, last %s", id, waitMax, len(seen), seen[len(seen)-1].Status)
		}
	}
}

func mustTerminal(t testing.TB, e *testEngine, owner, id string) jobs.Job {
	t.Helper()
	seen := mustWatchToEnd(t, e, owner, id)
	return seen[len(seen)-1]
}

// mustStatus polls until the job has status want (for states a watcher
// cannot wait for, such as processing).
func mustStatus(t testing.TB, e *testEngine, owner, id string, want jobs.Status) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		j, err := e.Get(context.Background(), owner, id)
		if err != nil {
			t.Fatalf("Get %s: %v", id, err)
		}
		if j.Status == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, j.Status, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockUntilDone is Work that never reports and, once stopped, claims a
// late success that must be ignored.
func blockUntilDone(ctx context.Context, _ jobs.Job, _ jobs.Progress) ([]byte, error) {
	<-ctx.Done()
	return []byte(`"late"`), nil
}

func succeedAtOnce(context.Context, jobs.Job, jobs.Progress) ([]byte, error) {
	return []byte(`{"ok":true}`), nil
}
