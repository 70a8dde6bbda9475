package api

import (
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// Examples in the spec use one job throughout, so a reader can follow it
// from the 202 to its end.
const (
	exampleJobID    = "job_3u2k4v7qzbx6dcm5ey8f1hwra9"
	exampleReportID = "rpt_3u2k4v7qzbx6dcm5ey8f1hwra9"
)

var exampleStart = time.Date(2026, 1, 31, 9, 30, 0, 0, time.UTC)

func exampleJob(status string, percent, remaining int, message string, seconds int) Job {
	t := func(s int) *time.Time { v := exampleStart.Add(time.Duration(s) * time.Second); return &v }
	j := Job{
		ID: exampleJobID, Kind: "report", Status: status, StatusURL: statusURL(exampleJobID),
		PercentComplete: percent, EstimatedSecondsRemaining: remaining, Message: message,
		CreatedAt: exampleStart, UpdatedAt: *t(seconds),
		Links: Links{Self: statusURL(exampleJobID), Resource: "/v1/reports/" + exampleReportID},
	}
	if status != "queued" {
		j.StartedAt = t(1)
	}
	switch status {
	case "queued", "processing":
		j.Links.Cancel = statusURL(exampleJobID)
	default:
		j.FinishedAt = t(seconds)
		j.ExpiresAt = t(seconds + 24*3600)
	}
	if status == "succeeded" {
		j.ResultURL = "/v1/reports/" + exampleReportID
		j.Links.Result = j.ResultURL
	}
	return j
}

// addJobExamples documents the job body at each point of its life on the
// operations that return it.
func (h *handlers) addJobExamples(api huma.API) {
	failed := exampleJob("failed", 60, 0, "aggregating by day (3 of 5)", 5)
	failed.Error = h.exampleFailure("The orders database did not answer within 30 s.")
	set := func(op *huma.Operation, status string, examples map[string]*huma.Example) {
		if op == nil || op.Responses[status] == nil {
			return
		}
		mt := op.Responses[status].Content["application/json"]
		if mt != nil {
			mt.Examples = examples
		}
	}
	for _, path := range []string{"/v1/reports", "/v1/exports"} {
		set(registered(api, http.MethodPost, path), "202", map[string]*huma.Example{
			"queued": {Summary: "Accepted and queued", Value: exampleJob("queued", 0, 8, "", 0)},
		})
	}
	get := registered(api, http.MethodGet, "/v1/jobs/{id}")
	set(get, "200", map[string]*huma.Example{
		"processing": {Summary: "Still running: wait Retry-After, then poll again", Value: exampleJob("processing", 40, 5, "aggregating by day (3 of 5)", 3)},
		"failed":     {Summary: "Failed, with a problem from the error catalog", Value: failed},
		"canceled":   {Summary: "Cancelled with DELETE", Value: exampleJob("canceled", 20, 0, "loading refunds (2 of 5)", 2)},
	})
	set(get, "303", map[string]*huma.Example{
		"succeeded": {Summary: "Done: follow Location to the result", Value: exampleJob("succeeded", 100, 0, "rendering (5 of 5)", 8)},
	})
	set(registered(api, http.MethodDelete, "/v1/jobs/{id}"), "200", map[string]*huma.Example{
		"canceled": {Summary: "The cancelled job", Value: exampleJob("canceled", 20, 0, "loading refunds (2 of 5)", 2)},
	})
}

// addRequestExamples documents, on a job-starting operation, a plain
// request and one per scenario, so every outcome is one click away in a
// try-it console.
func (h *handlers) addRequestExamples(op *huma.Operation, base map[string]any) {
	if op == nil || op.RequestBody == nil {
		return
	}
	mt := op.RequestBody.Content["application/json"]
	if mt == nil {
		return
	}
	with := func(sim map[string]any) map[string]any {
		b := map[string]any{}
		for k, v := range base {
			b[k] = v
		}
		if sim != nil {
			b["simulate"] = sim
		}
		return b
	}
	mt.Examples = map[string]*huma.Example{
		"default": {Summary: "A normal run that succeeds", Value: with(nil)},
		"slow":    {Summary: "A slow run (60 simulated seconds)", Value: with(map[string]any{"duration_seconds": 60})},
	}
	for _, code := range h.Catalog.Deferred() {
		e, _ := h.Catalog.Entry(code)
		if e.Scenario == nil {
			continue // no request makes it happen (job_interrupted comes from a shutdown)
		}
		mt.Examples[code] = &huma.Example{Summary: "Fails later with " + code + ": " + e.Title, Value: with(e.Scenario)}
	}
}

// exampleFailure is the `error` of the example job when it failed: the
// spec's examples are built from the catalog like real answers.
func (h *handlers) exampleFailure(detail string) *problems.Problem {
	return h.Catalog.New(problems.UpstreamUnavailable, detail).WithJob(exampleJobID).WithInstance(statusURL(exampleJobID))
}
