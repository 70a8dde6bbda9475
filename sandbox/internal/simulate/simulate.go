// Package simulate is the pretend work behind every sandbox flow. A
// Scenario chosen by the caller says how long the job takes and how it
// ends, so visitors and tests can watch success, failure, a stalled worker
// and a crash without any real workload; Plan turns it into the steps the
// job engine plays, and a time scale makes a 30-second scenario take
// milliseconds in tests.
package simulate

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// Outcome is how a scenario ends.
type Outcome string

// The outcomes. The zero Outcome means OutcomeSucceed.
const (
	OutcomeSucceed Outcome = "succeed"
	OutcomeFail    Outcome = "fail"  // ends with jobs.Fail(FailCode, …) at FailAfter
	OutcomeStall   Outcome = "stall" // reports once, then goes silent until canceled (the dead-man's switch ends it)
	OutcomeCrash   Outcome = "crash" // panics at FailAfter, as a bug would; the engine recovers it as internal_error
)

// Outcomes lists the outcomes, for enums in the spec.
func Outcomes() []Outcome {
	return []Outcome{OutcomeSucceed, OutcomeFail, OutcomeStall, OutcomeCrash}
}

// Scenario describes one simulated job.
type Scenario struct {
	Duration  time.Duration // virtual run time; Run scales it to real time
	Outcome   Outcome
	FailCode  string  // catalog code for OutcomeFail
	FailAfter float64 // 0..1: fraction of the run after which fail or crash happens; ignored by other outcomes (APIs send a default)
}

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate checks s against the sandbox's bounds, with messages meant for
// the person who sent the scenario.
func (s Scenario) Validate(maxDuration time.Duration) error {
	var errs []error
	if s.Duration < 0 {
		errs = append(errs, errors.New("duration must not be negative"))
	}
	if s.Duration > maxDuration {
		errs = append(errs, fmt.Errorf("duration must be at most %s, got %s", maxDuration, s.Duration))
	}
	switch s.Outcome {
	case "", OutcomeSucceed, OutcomeStall:
		if s.FailCode != "" {
			errs = append(errs, fmt.Errorf("fail_code is only allowed with outcome %q", OutcomeFail))
		}
	case OutcomeFail:
		if !codeRE.MatchString(s.FailCode) {
			errs = append(errs, fmt.Errorf("outcome %q needs a fail_code of lowercase letters, digits and underscores, got %q", OutcomeFail, s.FailCode))
		}
	case OutcomeCrash:
		if s.FailCode != "" {
			errs = append(errs, fmt.Errorf("fail_code is only allowed with outcome %q", OutcomeFail))
		}
	default:
		errs = append(errs, fmt.Errorf("outcome must be one of %q, got %q", Outcomes(), s.Outcome))
	}
	if math.IsNaN(s.FailAfter) || s.FailAfter < 0 || s.FailAfter > 1 {
		errs = append(errs, fmt.Errorf("fail_after must be between 0 and 1, got %v", s.FailAfter))
	}
	return errors.Join(errs...)
}

// Plan turns sc into how its job runs: steps steps spaced evenly over
// sc.Duration×scale of real time; a fail or a crash once FailAfter of the
// steps are done; a stall after the first step.
func Plan(sc Scenario, steps int, scale float64) (jobs.Plan, error) {
	if scale < 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
		return jobs.Plan{}, fmt.Errorf("simulate: bad time scale %v", scale)
	}
	steps = max(steps, 1)
	p := jobs.Plan{Steps: steps, Interval: time.Duration(float64(sc.Duration) * scale / float64(steps)), FailAt: -1}
	switch sc.Outcome {
	case OutcomeFail, OutcomeCrash:
		p.FailAt = int(math.Ceil(sc.FailAfter * float64(steps)))
		if sc.Outcome == OutcomeFail {
			p.Failure = &jobs.Failure{Code: sc.FailCode, Detail: fmt.Sprintf("The simulated job failed after %d of %d steps, as its scenario asked.", p.FailAt, steps)}
		}
	case OutcomeStall:
		p.Silent = true
	}
	return p, nil
}
