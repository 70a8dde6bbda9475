package simulate_test

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
)

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

func TestPlan(t *testing.T) {
	fail := func(code string, after float64) simulate.Scenario {
		return simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeFail, FailCode: code, FailAfter: after}
	}
	tests := []struct {
		name    string
		sc      simulate.Scenario
		scale   float64
		want    jobs.Plan
		wantErr string
	}{
		{"succeed", simulate.Scenario{Duration: 10 * time.Second}, 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: -1}, ""},
		{"scaled", simulate.Scenario{Duration: 10 * time.Second}, 0.01, jobs.Plan{Steps: 4, Interval: 25 * time.Millisecond, FailAt: -1}, ""},
		{"instant", simulate.Scenario{}, 1, jobs.Plan{Steps: 4, FailAt: -1}, ""},
		{"fail_half_way", fail("upstream_unavailable", 0.5), 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: 2,
			Failure: &jobs.Failure{Code: "upstream_unavailable", Detail: "The simulated job failed after 2 of 4 steps, as its scenario asked."}}, ""},
		{"fail_at_once", fail("result_too_large", 0), 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: 0,
			Failure: &jobs.Failure{Code: "result_too_large", Detail: "The simulated job failed after 0 of 4 steps, as its scenario asked."}}, ""},
		{"fail_at_the_end", fail("source_data_invalid", 1), 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: 4,
			Failure: &jobs.Failure{Code: "source_data_invalid", Detail: "The simulated job failed after 4 of 4 steps, as its scenario asked."}}, ""},
		{"fail_rounds_up", fail("upstream_unavailable", 0.3), 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: 2,
			Failure: &jobs.Failure{Code: "upstream_unavailable", Detail: "The simulated job failed after 2 of 4 steps, as its scenario asked."}}, ""},
		{"crash", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeCrash, FailAfter: 0.75}, 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: 3}, ""},
		{"stall", simulate.Scenario{Duration: 10 * time.Second, Outcome: simulate.OutcomeStall}, 1, jobs.Plan{Steps: 4, Interval: 2500 * time.Millisecond, FailAt: -1, Silent: true}, ""},
		{"bad_scale", simulate.Scenario{}, math.NaN(), jobs.Plan{}, "bad time scale"},
		{"negative_scale", simulate.Scenario{}, -1, jobs.Plan{}, "bad time scale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := simulate.Plan(tt.sc, 4, tt.scale)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Plan: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan = %+v (failure %+v), want %+v (failure %+v)", got, got.Failure, tt.want, tt.want.Failure)
			}
			if got.Expected() != time.Duration(float64(tt.sc.Duration)*tt.scale) {
				t.Errorf("Expected() = %s, want the scaled duration %s", got.Expected(), time.Duration(float64(tt.sc.Duration)*tt.scale))
			}
		})
	}
	t.Run("at_least_one_step", func(t *testing.T) {
		if p, _ := simulate.Plan(simulate.Scenario{Duration: time.Second}, 0, 1); p.Steps != 1 || p.Interval != time.Second {
			t.Errorf("Plan with 0 steps = %+v, want one step of 1s", p)
		}
	})
}
