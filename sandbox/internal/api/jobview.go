package api

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/exports"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/reports"
)

// Job is the one body every async flow shares: in the 202, on every poll of
// the status monitor, and after cancellation.
type Job struct {
	ID                        string            `json:"id" maxLength:"64" pattern:"^job_[a-z0-9]+$" doc:"The job id: 128 random bits, unguessable. Quote it when you contact support." example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Kind                      string            `json:"kind" enum:"report,export,import" doc:"Which flow started the job." example:"report"`
	Status                    string            `json:"status" enum:"queued,processing,succeeded,failed,canceled" doc:"Where the job is in its lifecycle. queued and processing move forward; succeeded, failed and canceled are terminal and never change." example:"queued"`
	StatusURL                 string            `json:"status_url" maxLength:"128" format:"uri-reference" doc:"The status monitor; the same URL as the Location header of the 202." example:"/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	PercentComplete           int               `json:"percent_complete" minimum:"0" maximum:"100" doc:"Progress from 0 to 100; never decreases." example:"0"`
	EstimatedSecondsRemaining int               `json:"estimated_seconds_remaining" maximum:"60000" minimum:"0" doc:"Estimate of the seconds left until a terminal state; 0 once terminal. An estimate, not a promise: poll by Retry-After." example:"6"`
	Message                   string            `json:"message,omitempty" maxLength:"200" doc:"What the job is doing now, for people." example:"aggregating by day (3 of 5)"`
	CreatedAt                 time.Time         `json:"created_at" maxLength:"35" doc:"When the job was accepted (RFC 3339)."`
	UpdatedAt                 time.Time         `json:"updated_at" maxLength:"35" doc:"When the job last changed (RFC 3339)."`
	StartedAt                 *time.Time        `json:"started_at,omitempty" maxLength:"35" doc:"When a worker picked the job up."`
	FinishedAt                *time.Time        `json:"finished_at,omitempty" maxLength:"35" doc:"When the job reached its terminal state."`
	ExpiresAt                 *time.Time        `json:"expires_at,omitempty" maxLength:"35" doc:"After this moment the job and its result are deleted and the status monitor answers 410 Gone. Set once the job is terminal."`
	ResultURL                 string            `json:"result_url,omitempty" maxLength:"128" format:"uri-reference" doc:"Where the result is, once status is succeeded: the same URL as the Location of the monitor's 303." example:"/v1/reports/rpt_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Error                     *problems.Problem `json:"error,omitempty" doc:"Why the job failed, once status is failed: an RFC 9457 problem whose type is an entry of the error catalog."`
	Links                     Links             `json:"links" doc:"Where to go from here."`
	TraceID                   string            `json:"trace_id,omitempty" minLength:"32" maxLength:"32" pattern:"^[0-9a-f]{32}$" doc:"The trace that started the job: the Trace-Id of the request that accepted it. Its worker's runs and its webhook belong to the same trace. Quote it, with the job id, when you contact support." example:"4bf92f3577b34da6a3ce929d0e0e4736"`
}

// Links are the related URLs of a job.
type Links struct {
	Self     string `json:"self" maxLength:"128" format:"uri-reference" doc:"The status monitor." example:"/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Cancel   string `json:"cancel,omitempty" maxLength:"128" format:"uri-reference" doc:"DELETE this URL to cancel; present while the job can still be cancelled." example:"/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Resource string `json:"resource,omitempty" maxLength:"128" format:"uri-reference" doc:"The resource the job produces; readable once the job succeeded." example:"/v1/reports/rpt_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Result   string `json:"result,omitempty" maxLength:"128" format:"uri-reference" doc:"The result itself, once the job succeeded." example:"/v1/reports/rpt_3u2k4v7qzbx6dcm5ey8f1hwra9"`
}

func statusURL(id string) string { return "/v1/jobs/" + id }

// resourceURL is where the job's resource lives, and resultURL where the
// monitor's 303 points once it succeeded (for exports: the file itself).
func resourceURL(j jobs.Job) string {
	switch j.Kind {
	case reports.Kind:
		return "/v1/reports/" + resourceIDFor(j.ID, reportPrefix)
	case exports.Kind:
		return "/v1/exports/" + resourceIDFor(j.ID, exportPrefix)
	case imports.Kind:
		return "/v1/imports/" + resourceIDFor(j.ID, importPrefix)
	}
	return ""
}

func resultURL(j jobs.Job) string {
	if j.Kind == exports.Kind {
		return resourceURL(j) + "/file"
	}
	return resourceURL(j)
}

func (h *handlers) view(j jobs.Job) Job {
	now := h.Clock.Now()
	v := Job{
		ID: j.ID, Kind: string(j.Kind), Status: string(j.Status), StatusURL: statusURL(j.ID),
		PercentComplete: j.Percent, Message: j.Message,
		CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(),
		EstimatedSecondsRemaining: int(math.Ceil(j.Remaining(now).Seconds())),
		Links:                     Links{Self: statusURL(j.ID), Resource: resourceURL(j)},
		TraceID:                   traceID(j.Trace),
	}
	if !j.StartedAt.IsZero() {
		t := j.StartedAt.UTC()
		v.StartedAt = &t
	}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt.UTC()
		v.FinishedAt = &t
	}
	if !j.ExpiresAt.IsZero() {
		t := j.ExpiresAt.UTC()
		v.ExpiresAt = &t
	}
	if !j.Status.Terminal() {
		v.Links.Cancel = statusURL(j.ID)
	}
	switch j.Status {
	case jobs.StatusSucceeded:
		v.ResultURL = resultURL(j)
		v.Links.Result = v.ResultURL
	case jobs.StatusFailed:
		v.Error = jobProblem(h.Catalog, j, "The job failed.")
	}
	return v
}

// pollAfter is the Retry-After a running job's monitor sends: about a fifth
// of the time left, between 1 and 30 seconds, so a client polls a handful of
// times per job whatever its length.
func pollAfter(j jobs.Job, now time.Time) string {
	left := j.Remaining(now)
	if left <= 0 {
		left = j.Expected
	}
	s := int(math.Ceil(left.Seconds() / 5))
	return strconv.Itoa(min(max(s, 1), 30))
}

// resultJSON decodes a job's output.
func resultJSON[T any](j jobs.Job) (T, error) {
	var v T
	err := json.Unmarshal(j.Output, &v)
	return v, err
}

// jobIDFor maps a resource id (rpt_…, exp_…) back to its job id: the two
// share their random part, so no lookup table is needed.
func jobIDFor(resourceID, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(resourceID, prefix)
	if !ok || rest == "" {
		return "", false
	}
	return "job_" + rest, true
}

// Prefixes of resource ids, so an id says what it names.
const (
	reportPrefix = "rpt_"
	exportPrefix = "exp_"
)

func resourceIDFor(jobID, prefix string) string {
	return prefix + strings.TrimPrefix(jobID, "job_")
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// scaled turns a simulated duration into real time at the server's scale.
func (h *handlers) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * h.Scale)
}
