package simulate

import (
	"math"
	"testing"
	"time"
)

// FuzzScenario feeds scenario objects as a client sends them: Validate
// accepts only what the sandbox can play, and a scenario it accepts makes a
// plan the job engine takes (at least one step, no negative interval, a
// failure point within the steps) that ends the way it asked.
func FuzzScenario(f *testing.F) {
	f.Add(int64(10*time.Second), "succeed", "", 0.5, 5)
	f.Add(int64(30*time.Second), "fail", "upstream_unavailable", 0.5, 12)
	f.Add(int64(0), "fail", "Bad Code", 1.0, 1)
	f.Add(int64(-1), "stall", "", 0.0, 3)
	f.Add(int64(601*time.Second), "crash", "", 0.3, 4)
	f.Add(int64(5*time.Second), "explode", "", math.NaN(), 2)
	f.Add(int64(5*time.Second), "", "x", 2.0, 0)
	f.Fuzz(func(t *testing.T, duration int64, outcome, failCode string, failAfter float64, steps int) {
		sc := Scenario{Duration: time.Duration(duration), Outcome: Outcome(outcome), FailCode: failCode, FailAfter: failAfter}
		if err := sc.Validate(600 * time.Second); err != nil {
			return
		}
		if sc.Duration < 0 || sc.Duration > 600*time.Second || math.IsNaN(sc.FailAfter) || sc.FailAfter < 0 || sc.FailAfter > 1 {
			t.Fatalf("Validate accepted %+v", sc)
		}
		steps = steps % 2000
		p, err := Plan(sc, steps, 0.01)
		if err != nil {
			t.Fatalf("Plan(%+v): %v", sc, err)
		}
		if p.Steps < 1 || p.Interval < 0 || p.FailAt > p.Steps {
			t.Fatalf("Plan(%+v, %d) = %+v: the engine refuses it", sc, steps, p)
		}
		switch sc.Outcome {
		case "", OutcomeSucceed:
			if p.FailAt != -1 || p.Silent {
				t.Fatalf("%+v planned %+v, want a success", sc, p)
			}
		case OutcomeFail:
			if p.FailAt < 0 || p.Failure == nil || p.Failure.Code != sc.FailCode {
				t.Fatalf("%+v planned %+v, want a failure with %s", sc, p, sc.FailCode)
			}
		case OutcomeCrash:
			if p.FailAt < 0 || p.Failure != nil {
				t.Fatalf("%+v planned %+v, want a crash", sc, p)
			}
		case OutcomeStall:
			if !p.Silent {
				t.Fatalf("%+v planned %+v, want a stall", sc, p)
			}
		}
	})
}
