package simulate

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// FuzzScenario feeds scenario objects as a client sends them: Validate
// accepts only what the sandbox can play, and a scenario it accepts plays
// to the end it asked for (at a time scale of zero, so at once).
func FuzzScenario(f *testing.F) {
	f.Add(int64(10*time.Second), "succeed", "", 0.5)
	f.Add(int64(30*time.Second), "fail", "upstream_unavailable", 0.5)
	f.Add(int64(0), "fail", "Bad Code", 1.0)
	f.Add(int64(-1), "stall", "", 0.0)
	f.Add(int64(601*time.Second), "crash", "", 0.3)
	f.Add(int64(5*time.Second), "explode", "", math.NaN())
	f.Add(int64(5*time.Second), "", "x", 2.0)
	f.Fuzz(func(t *testing.T, duration int64, outcome, failCode string, failAfter float64) {
		sc := Scenario{Duration: time.Duration(duration), Outcome: Outcome(outcome), FailCode: failCode, FailAfter: failAfter}
		if err := sc.Validate(600 * time.Second); err != nil {
			return
		}
		if sc.Duration < 0 || sc.Duration > 600*time.Second || math.IsNaN(sc.FailAfter) || sc.FailAfter < 0 || sc.FailAfter > 1 {
			t.Fatalf("Validate accepted %+v", sc)
		}
		if sc.Outcome == OutcomeStall {
			return // waits for its context by design
		}
		progress := func(int, string) error { return nil }
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					if sc.Outcome != OutcomeCrash {
						t.Fatalf("%+v panicked: %v", sc, r)
					}
					err = errors.New("crashed")
				}
			}()
			err = Run(context.Background(), clock.Real(), 0, sc, 4, progress, nil)
		}()
		var fail *jobs.Failure
		switch sc.Outcome {
		case "", OutcomeSucceed:
			if err != nil {
				t.Fatalf("%+v: %v", sc, err)
			}
		case OutcomeFail:
			if !errors.As(err, &fail) || fail.Code != sc.FailCode {
				t.Fatalf("%+v ended with %v", sc, err)
			}
		case OutcomeCrash:
			if err == nil {
				t.Fatalf("%+v did not crash", sc)
			}
		}
	})
}
