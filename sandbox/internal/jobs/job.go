// Package jobs is the engine behind every asynchronous flow of the sandbox:
// it accepts work only when it can finish it, runs it on a bounded pool on a
// long-lived context (never a request's), moves each job forward through one
// closed set of statuses, fails jobs whose worker went silent (a dead-man's
// switch), and forgets finished jobs after a retention window. It knows
// nothing about HTTP: the API layer maps its sentinel errors to problems.
package jobs

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"slices"
	"strings"
	"time"
)

// Status is the one vocabulary every flow uses (conformance R7).
type Status string

// The statuses, in lifecycle order.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusCanceled   Status = "canceled"
)

// Statuses returns all statuses in lifecycle order; the OpenAPI enum is
// built from it so the spec and the engine cannot disagree.
func Statuses() []Status {
	return []Status{StatusQueued, StatusProcessing, StatusSucceeded, StatusFailed, StatusCanceled}
}

// Terminal reports whether s is final: a terminal job never changes again.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusProcessing, StatusSucceeded, StatusFailed, StatusCanceled:
		return true
	}
	return false
}

// CanMoveTo reports whether the lifecycle allows s -> next. Transitions only
// move forward; staying put is not a transition.
func (s Status) CanMoveTo(next Status) bool {
	switch s {
	case StatusQueued:
		return next == StatusProcessing || next == StatusFailed || next == StatusCanceled
	case StatusProcessing:
		return next == StatusSucceeded || next == StatusFailed || next == StatusCanceled
	}
	return false
}

// Kind names a flow ("report", "export", …). Callers define kinds; the
// engine only uses them to pick a Work.
type Kind string

// Error-catalog codes the engine itself assigns. Work chooses its own codes
// through Fail.
const (
	CodeCanceled    = "job_canceled"    // the owner canceled the job
	CodeStalled     = "job_stalled"     // the dead-man's switch fired
	CodeInternal    = "internal_error"  // Work returned a plain error or panicked
	CodeInterrupted = "job_interrupted" // the server shut down before the job finished
)

// Failure says why a job did not succeed, as an error-catalog code plus a
// human detail safe to show the job's owner.
type Failure struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (f *Failure) Error() string {
	if f.Detail == "" {
		return f.Code
	}
	return f.Code + ": " + f.Detail
}

// Fail returns the error a Work func returns to end its job as failed with a
// catalog code (as opposed to a plain error, which becomes internal_error
// and whose text is logged, never shown).
func Fail(code, detail string) error { return &Failure{Code: code, Detail: detail} }

// Sentinel errors. The API layer turns them into problems in one place.
var (
	ErrNotFound    = errors.New("job not found")
	ErrGone        = errors.New("job expired")
	ErrFinished    = errors.New("job already finished")
	ErrQueueFull   = errors.New("job queue full")
	ErrUnknownKind = errors.New("unknown job kind")
	ErrClosed      = errors.New("job engine closed")
	ErrOwnerBusy   = errors.New("owner has too many unfinished jobs")
	ErrExists      = errors.New("job already exists")
)

// Plan is how a job runs: its steps, the time between them, and how it
// ends. The caller decides it (the sandbox's scenarios) and the engine
// plays it, one step at a time.
type Plan struct {
	Steps    int           `json:"steps"`
	Interval time.Duration `json:"interval"` // real time between steps
	// FailAt is the number of steps done when the job fails (with
	// Failure) or its worker crashes (Failure nil); -1 when it does
	// neither.
	FailAt  int      `json:"fail_at"`
	Failure *Failure `json:"failure,omitempty"`
	// Silent: after its first step the worker stops reporting, as a hung
	// worker would, and only the dead-man's switch ends the job.
	Silent bool `json:"silent,omitempty"`
}

// Expected is how long the plan takes.
func (p Plan) Expected() time.Duration { return time.Duration(max(p.Steps, 1)) * p.Interval }

// Job is a snapshot of one job. It is a value: changing a copy changes
// nothing in the engine.
type Job struct {
	ID         string // "job_" + 26 base32 chars of 128 random bits
	Kind       Kind
	Owner      string // API key id that created it; nobody else may see it
	Network    string // the owner's network, whose share the job counts in
	ResourceID string // id of what the job produces, may be empty
	Status     Status
	Percent    int    // 0..100, never decreases; 100 only on success
	Message    string // short note on progress

	CreatedAt, UpdatedAt  time.Time
	StartedAt, FinishedAt time.Time     // zero until then
	Expected              time.Duration // expected run time, real (already scaled)
	Input                 []byte        // caller's input, opaque
	Output                []byte        // set on success, opaque
	Failure               *Failure      // set when failed or canceled
	ExpiresAt             time.Time     // zero until terminal; FinishedAt + retention
	Version               int64         // rises with every change
	LastBeat              time.Time     // last sign of life from the worker

	Plan   Plan      // how it runs
	Step   int       // steps done
	NextAt time.Time // when the next step is due, while processing

	// Trace is the W3C traceparent of the request that started the job
	// ("" when it had none), so an operator can find that trace from the
	// job and a client can quote it.
	Trace string
}

// Remaining estimates the time left: the full Expected while queued,
// Expected minus the time spent so far while processing, never negative,
// and 0 once terminal.
func (j Job) Remaining(now time.Time) time.Duration {
	switch {
	case j.Status.Terminal():
		return 0
	case j.Status == StatusProcessing && !j.StartedAt.IsZero():
		return max(j.Expected-now.Sub(j.StartedAt), 0)
	default:
		return max(j.Expected, 0)
	}
}

// Clone returns a deep copy, so stores and watchers can hand out jobs that
// share no memory with their own.
func (j Job) Clone() Job {
	j.Input = cloneBytes(j.Input)
	j.Output = cloneBytes(j.Output)
	if j.Failure != nil {
		f := *j.Failure
		j.Failure = &f
	}
	return j
}

// shared returns a copy that shares Input and Output with j, clipped so
// that an append to them allocates: the engine never writes into those
// bytes once a job holds them, and neither may its callers.
func (j Job) shared() Job {
	j.Input = slices.Clip(j.Input)
	j.Output = slices.Clip(j.Output)
	if j.Failure != nil {
		f := *j.Failure
		j.Failure = &f
	}
	return j
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// NewID returns a fresh job id: 128 bits from crypto/rand, so ids cannot be
// guessed or enumerated (conformance R14).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24; it crashes the program instead
	return "job_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// ValidID reports whether id has the shape NewID produces, so callers can
// answer 404 without a store lookup for junk.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, "job_")
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
