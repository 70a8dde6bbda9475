package simulate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/memstore"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestValidate(t *testing.T) {
	const maxDur = 10 * time.Minute
	tests := []struct {
		name    string
		sc      simulate.Scenario
		wantErr string // substring; "" means valid
	}{
		{"zero_value_succeeds", simulate.Scenario{}, ""},
		{"succeed", simulate.Scenario{Duration: time.Minute, Outcome: simulate.OutcomeSucceed}, ""},
		{"succeed_ignores_default_fail_after", simulate.Scenario{Outcome: simulate.OutcomeSucceed, FailAfter: 0.5}, ""},
		{"fail", simulate.Scenario{Outcome: simulate.OutcomeFail, FailCode: "upstream_unavailable", FailAfter: 0.5}, ""},
		{"stall", simulate.Scenario{Outcome: simulate.OutcomeStall}, ""},
		{"crash", simulate.Scenario{Outcome: simulate.OutcomeCrash, FailAfter: 1}, ""},
		{"max_duration", simulate.Scenario{Duration: maxDur}, ""},
		{"too_long", simulate.Scenario{Duration: maxDur + 1}, "at most 10m0s"},
		{"negative", simulate.Scenario{Duration: -1}, "must not be negative"},
		{"unknown_outcome", simulate.Scenario{Outcome: "explode"}, `outcome must be one of`},
		{"fail_without_code", simulate.Scenario{Outcome: simulate.OutcomeFail}, "needs a fail_code"},
		{"fail_bad_code", simulate.Scenario{Outcome: simulate.OutcomeFail, FailCode: "Bad Code"}, "needs a fail_code"},
		{"code_without_fail", simulate.Scenario{FailCode: "x"}, "only allowed with outcome"},
		{"fail_after_above_1", simulate.Scenario{Outcome: simulate.OutcomeFail, FailCode: "x", FailAfter: 1.5}, "between 0 and 1"},
		{"fail_after_nan", simulate.Scenario{Outcome: simulate.OutcomeFail, FailCode: "x", FailAfter: math.NaN()}, "between 0 and 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sc.Validate(maxDur)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// recorder is a jobs.Progress that remembers every call.
type recorder struct {
	mu    sync.Mutex
	calls []string
	err   error // answered from the nth call on
	errAt int
}

func (r *recorder) progress(p int, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("%d:%s", p, msg))
	if r.err != nil && len(r.calls) >= r.errAt {
		return r.err
	}
	return nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, " ")
}

func newRun(t *testing.T, ctx context.Context, clk clock.Clock, scale float64, sc simulate.Scenario, steps int, rec *recorder) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- simulate.Run(ctx, clk, scale, sc, steps, rec.progress, func(i int) (string, error) {
			return fmt.Sprintf("s%d", i+1), nil
		})
	}()
	return done
}

func mustFinish(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	return nil
}

func TestRunOnFakeClock(t *testing.T) {
	tests := []struct {
		name      string
		sc        simulate.Scenario
		advances  int    // steps of 2.5s to advance (4 steps over 10s)
		wantCalls string // progress calls
		wantErr   string // substring of the error, "" for nil
		wantCode  string // *jobs.Failure code
	}{
		{"succeed", simulate.Scenario{Duration: 10 * time.Second}, 4, "25:s1 50:s2 75:s3 100:s4", "", ""},
		{"fail_half_way", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeFail, FailCode: "upstream_unavailable", FailAfter: 0.5}, 2, "25:s1 50:s2", "upstream_unavailable", "upstream_unavailable"},
		{"fail_at_once", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeFail, FailCode: "result_too_large"}, 0, "", "result_too_large", "result_too_large"},
		{"crash_panics", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeCrash, FailAfter: 0.75}, 3, "25:s1 50:s2 75:s3", "panic: simulate: scenario crash after 3 of 4 steps", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(epoch)
			rec := &recorder{}
			done := newRun(t, context.Background(), clk, 1, tt.sc, 4, rec)
			for range tt.advances {
				clk.BlockUntil(1)
				select {
				case err := <-done:
					t.Fatalf("returned early: %v", err)
				default:
				}
				clk.Advance(2500 * time.Millisecond)
			}
			err := mustFinish(t, done)
			if got := rec.String(); got != tt.wantCalls {
				t.Errorf("progress calls %q, want %q", got, tt.wantCalls)
			}
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run: %v, want %q", err, tt.wantErr)
			}
			var f *jobs.Failure
			if tt.wantCode != "" && (!errors.As(err, &f) || f.Code != tt.wantCode) {
				t.Fatalf("Run: %v, want *jobs.Failure %s", err, tt.wantCode)
			}
		})
	}
}

func TestRunStopsOnCtxAndProgressErrors(t *testing.T) {
	stopped := fmt.Errorf("job is canceled: %w", context.Canceled)
	t.Run("stall_reports_once_then_waits_for_ctx", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		rec := &recorder{}
		ctx, cancel := context.WithCancelCause(context.Background())
		done := newRun(t, ctx, clk, 1, simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeStall}, 4, rec)
		clk.BlockUntil(1)
		clk.Advance(time.Hour)
		time.Sleep(10 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("stall returned before ctx ended: %v", err)
		default:
		}
		cancel(stopped)
		if err := mustFinish(t, done); !errors.Is(err, stopped) {
			t.Fatalf("Run: %v, want the ctx cause", err)
		}
		if got := rec.String(); got != "25:s1" {
			t.Fatalf("progress calls %q, want one", got)
		}
	})
	t.Run("ctx_ends_while_waiting", func(t *testing.T) {
		clk := clock.NewFake(epoch)
		ctx, cancel := context.WithCancel(context.Background())
		done := newRun(t, ctx, clk, 1, simulate.Scenario{Duration: time.Hour}, 4, &recorder{})
		clk.BlockUntil(1)
		cancel()
		if err := mustFinish(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v, want context.Canceled", err)
		}
	})
	t.Run("progress_error_stops_the_run", func(t *testing.T) {
		rec := &recorder{err: stopped, errAt: 2}
		err := mustFinish(t, newRun(t, context.Background(), clock.Real(), 0, simulate.Scenario{Duration: time.Hour}, 4, rec))
		if !errors.Is(err, context.Canceled) || rec.String() != "25:s1 50:s2" {
			t.Fatalf("Run: %v after %q, want to stop at the refused report", err, rec.String())
		}
	})
	t.Run("bad_scale", func(t *testing.T) {
		if err := simulate.Run(context.Background(), clock.Real(), -1, simulate.Scenario{}, 1, (&recorder{}).progress, nil); err == nil {
			t.Fatal("negative scale accepted")
		}
	})
	t.Run("real_clock_scaled", func(t *testing.T) {
		start := time.Now()
		rec := &recorder{}
		err := simulate.Run(context.Background(), clock.Real(), 0.001, simulate.Scenario{Duration: 10 * time.Second}, 5, rec.progress, nil)
		if err != nil || rec.String() != "20:step 1 of 5 40:step 2 of 5 60:step 3 of 5 80:step 4 of 5 100:step 5 of 5" {
			t.Fatalf("Run: %v, calls %q", err, rec.String())
		}
		if took := time.Since(start); took < 10*time.Millisecond || took > 2*time.Second {
			t.Errorf("10s at scale 0.001 took %s, want about 10ms", took)
		}
	})
}

// TestScenariosThroughTheEngine plays each outcome as real Work, so the
// engine's reading of simulate's errors (R10, R13) is checked end to end.
func TestScenariosThroughTheEngine(t *testing.T) {
	tests := []struct {
		name       string
		sc         simulate.Scenario
		waits      int // steps the scenario waits on the clock (of 2)
		wantStatus jobs.Status
		wantCode   string
	}{
		{"succeed", simulate.Scenario{Duration: 10 * time.Second}, 2, jobs.StatusSucceeded, ""},
		{"fail", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeFail, FailCode: "source_data_invalid", FailAfter: 0.5}, 1, jobs.StatusFailed, "source_data_invalid"},
		{"crash", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeCrash, FailAfter: 0.5}, 1, jobs.StatusFailed, jobs.CodeInternal},
		{"stall_trips_dead_mans_switch", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeStall}, 1, jobs.StatusFailed, jobs.CodeStalled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewFake(epoch)
			const steps = 2
			e, err := jobs.New(jobs.Config{
				Clock: clk, Store: memstore.New(), Logger: slog.New(slog.DiscardHandler), Workers: 1,
				Work: map[jobs.Kind]jobs.Work{"sim": func(ctx context.Context, _ jobs.Job, p jobs.Progress) ([]byte, error) {
					return []byte("ok"), simulate.Run(ctx, clk, 1, tt.sc, steps, p, nil)
				}},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			e.Start(ctx)
			t.Cleanup(func() { _ = e.Close(ctx) })
			j, err := e.Submit(ctx, jobs.Spec{Kind: "sim", Owner: "key_a", Expected: tt.sc.Duration})
			if err != nil {
				t.Fatal(err)
			}
			for range tt.waits {
				clk.BlockUntil(2) // the sweeper's ticker and the step's After
				clk.Advance(tt.sc.Duration / steps)
			}
			if tt.sc.Outcome == simulate.OutcomeStall {
				for { // the single report has landed; then go silent past 2× expected
					cur, _ := e.Get(ctx, "key_a", j.ID)
					if cur.Percent == 50 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				clk.Advance(2*tt.sc.Duration + time.Second)
				e.Sweep(ctx)
			}
			_, updates, stop, err := e.Watch(ctx, "key_a", j.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			final, err := e.Get(ctx, "key_a", j.ID)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.After(5 * time.Second)
			for !final.Status.Terminal() {
				select {
				case u, ok := <-updates:
					if !ok {
						t.Fatalf("updates ended while the job was %s", final.Status)
					}
					final = u
				case <-deadline:
					t.Fatalf("job still %s after 5 s, want it %s", final.Status, tt.wantStatus)
				}
			}
			if final.Status != tt.wantStatus || (tt.wantCode != "" && (final.Failure == nil || final.Failure.Code != tt.wantCode)) {
				t.Fatalf("ended %s %+v, want %s %s", final.Status, final.Failure, tt.wantStatus, tt.wantCode)
			}
		})
	}
}
