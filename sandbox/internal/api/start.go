package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
	"github.com/accepted-dev/accepted/sandbox/internal/sqldb"
	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
)

// MaxSimulatedSeconds bounds a scenario's duration.
const MaxSimulatedSeconds = 600

// Simulate picks how a sandbox job will go, so that every outcome (and every
// deferred error of the catalog) can be made to happen on demand.
type Simulate struct {
	DurationSeconds *float64 `json:"duration_seconds,omitempty" minimum:"0" maximum:"600" doc:"How long the job runs, in simulated seconds (the server's time scale may compress them). Default depends on the flow." example:"10"`
	Outcome         string   `json:"outcome,omitempty" enum:"succeed,fail,stall,crash" default:"succeed" doc:"succeed: the job finishes. fail: it fails with fail_code. stall: the worker stops reporting, so the server's dead-man's switch fails the job with job_stalled after twice the expected duration. crash: the worker crashes (internal_error)." example:"succeed"`
	FailCode        string   `json:"fail_code,omitempty" enum:"upstream_unavailable,source_data_invalid,result_too_large" doc:"With outcome fail: the error-catalog code the job fails with." example:"upstream_unavailable"`
	FailAtPercent   int      `json:"fail_at_percent,omitempty" minimum:"0" maximum:"100" default:"50" doc:"With outcome fail: how far the job gets before failing." example:"50"`
}

// resolve checks the scenario's cross-field rules and builds it.
func (s *Simulate) resolve(defaultSeconds float64, prefix string) (simulate.Scenario, []error) {
	sc := simulate.Scenario{Duration: seconds64(defaultSeconds), Outcome: simulate.Outcome("succeed")}
	if s == nil {
		return sc, nil
	}
	var errs []error
	if s.DurationSeconds != nil {
		sc.Duration = seconds64(*s.DurationSeconds)
	}
	if s.Outcome != "" {
		sc.Outcome = simulate.Outcome(s.Outcome)
	}
	sc.FailCode = s.FailCode
	sc.FailAfter = float64(s.FailAtPercent) / 100
	switch {
	case s.Outcome == "fail" && s.FailCode == "":
		errs = append(errs, &huma.ErrorDetail{Location: prefix + ".fail_code", Message: "outcome fail needs a fail_code: one of upstream_unavailable, source_data_invalid, result_too_large"})
	case s.Outcome != "fail" && s.FailCode != "":
		errs = append(errs, &huma.ErrorDetail{Location: prefix + ".fail_code", Message: "fail_code applies only with outcome fail", Value: s.FailCode})
	}
	// The bounds of each field (duration, outcome, fail_code, percent) are
	// the schema's, which Huma checks and reports with the field's location;
	// checking them again here reported each fault twice.
	return sc, errs
}

func seconds64(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// dateRange checks a from/to pair: to not before from, at most maxDays
// days. Both fields are format:"date" in the schema, so Huma has already
// reported a value that is not a date; such a pair is returned as
// unchecked, with no second message about the same value.
func dateRange(from, to string, maxDays int) (time.Time, time.Time, []error) {
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil {
		return f, t, nil
	}
	var errs []error
	switch {
	case t.Before(f):
		errs = append(errs, &huma.ErrorDetail{Location: "body.to", Message: "must not be before from", Value: to})
	case int(t.Sub(f).Hours()/24)+1 > maxDays:
		errs = append(errs, &huma.ErrorDetail{Location: "body.to", Message: fmt.Sprintf("the range may cover at most %d days", maxDays), Value: to})
	}
	return f, t, errs
}

// AcceptedOutput is the 202 Accepted every flow answers with.
type AcceptedOutput struct {
	Location     string `header:"Location" doc:"The status monitor: GET it to follow the job. The same URL as status_url."`
	RetryAfter   string `header:"Retry-After" doc:"Seconds to wait before the first poll."`
	CacheControl string `header:"Cache-Control" maxLength:"64" doc:"no-store."`
	Body         Job
}

var jobType = reflect.TypeFor[Job]()

// startOperation fills in what every job-starting operation shares.
func (h *handlers) startOperation(api huma.API, op *huma.Operation) {
	op.Method = http.MethodPost
	op.DefaultStatus = http.StatusAccepted
	op.Security = []map[string][]string{{bearerScheme: {}}}
	op.MaxBodyBytes = 64 << 10
	op.Metadata = map[string]any{policyKey: PolicyStart, idempotentKey: true, replayKey: replayer(func(h *handlers, j jobs.Job) (*AcceptedOutput, any) {
		acc := h.accepted(j)
		return acc, acc.Body
	})}
	op.Parameters = append(op.Parameters, idempotencyParam(fmt.Sprintf("%g hours", h.IdempotencyTTL.Hours())))
	op.Description += "\n\nAnswers **202 Accepted** at once, even when the work could finish immediately, with the job in the body, " +
		"its status monitor in `Location`, and `Retry-After`. A request that fails validation is refused with a problem and no job is created. " +
		"When the work queue is full the answer is 503 with `Retry-After`, and nothing is created. Bodies are limited to 64 KiB."
	h.documentProblems(api, op, problems.MalformedRequest, problems.Unauthorized, problems.RequestTooLarge,
		problems.UnsupportedMediaType, problems.ValidationFailed, problems.RateLimited, problems.TooManyJobs, problems.QueueFull, problems.ShuttingDown,
		problems.IdempotencyKeyInvalid, problems.IdempotencyKeyInUse, problems.IdempotencyKeyReused)
}

// accept submits a job and answers the 202. When the request carries an
// Idempotency-Key, the key's record names the job in the job's own
// transaction.
func (h *handlers) accept(ctx context.Context, kind jobs.Kind, input any, plan jobs.Plan, planErr error) (*AcceptedOutput, error) {
	instance := "/v1/" + string(kind) + "s"
	if planErr != nil {
		return nil, h.problemFor(ctx, fmt.Errorf("planning a %s job: %w", kind, planErr), instance)
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return nil, h.problemFor(ctx, fmt.Errorf("encoding %s input: %w", kind, err), instance)
	}
	spec := jobs.Spec{Kind: kind, Owner: owner(ctx), Network: network(ctx), Input: raw, Plan: plan, Trace: telemetry.TraceParent(ctx)}
	if c, ok := ctx.Value(claimKey{}).(claim); ok && h.Idempotency != nil {
		spec.Then = func(ctx context.Context, tx sqldb.Tx, j jobs.Job) error {
			if err := h.fault("idempotency-link"); err != nil {
				return err
			}
			return h.Idempotency.Link(ctx, tx, c.owner, c.key, j.ID)
		}
	}
	j, err := h.Engine.Submit(ctx, spec)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	h.Logger.InfoContext(ctx, "job accepted", "job", j.ID, "kind", kind, "owner", j.Owner)
	return h.accepted(j), nil
}

// accepted is the 202 of a job: what accept answers, and what a replay
// answers when the first answer was not stored.
func (h *handlers) accepted(j jobs.Job) *AcceptedOutput {
	v := h.view(j)
	return &AcceptedOutput{Location: v.StatusURL, RetryAfter: pollAfter(j, h.Clock.Now()), CacheControl: "no-store", Body: v}
}

// registered returns the operation as stored in the spec, after Huma filled it in.
func registered(api huma.API, method, path string) *huma.Operation {
	item := api.OpenAPI().Paths[path]
	if item == nil {
		return nil
	}
	switch strings.ToUpper(method) {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodDelete:
		return item.Delete
	}
	return nil
}
