package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/reports"
)

// Reports may cover at most a year and a day, so the longest one stays small.
const maxReportDays = 366

// Default simulated duration of a report job.
const reportSeconds = 8

// CreateReportInput starts a report.
type CreateReportInput struct {
	Body  ReportRequest
	input reports.Input
}

// ReportRequest is the body of createReport.
type ReportRequest struct {
	Title    string    `json:"title,omitempty" maxLength:"120" default:"Sales report" doc:"A title for the report." example:"January sales"`
	From     string    `json:"from" maxLength:"10" format:"date" doc:"First day of the report (inclusive), YYYY-MM-DD." example:"2026-01-01"`
	To       string    `json:"to" maxLength:"10" format:"date" doc:"Last day of the report (inclusive), YYYY-MM-DD; at most 366 days after from." example:"2026-01-31"`
	Simulate *Simulate `json:"simulate,omitempty" doc:"Sandbox only: how this job should go. Leave it out for a normal run."`
}

// Resolve runs the checks a schema cannot express, so a bad request is
// refused before any job exists.
func (in *CreateReportInput) Resolve(huma.Context) []error {
	from, to, errs := dateRange(in.Body.From, in.Body.To, maxReportDays)
	sc, serrs := in.Body.Simulate.resolve(reportSeconds, "body.simulate")
	in.input = reports.Input{Params: reports.Params{Title: in.Body.Title, From: from, To: to}, Scenario: sc}
	return append(errs, serrs...)
}

// ReportIDParam names a report.
type ReportIDParam struct {
	ID string `path:"id" maxLength:"64" pattern:"^rpt_[a-z0-9]+$" doc:"The report id (from the job's result_url)." example:"rpt_3u2k4v7qzbx6dcm5ey8f1hwra9"`
}

// ReportOutput is a finished report.
type ReportOutput struct {
	Body Report
}

// Report is a finished report.
type Report struct {
	ID    string `json:"id" maxLength:"64" pattern:"^rpt_[a-z0-9]+$" example:"rpt_3u2k4v7qzbx6dcm5ey8f1hwra9" doc:"The report id."`
	JobID string `json:"job_id" maxLength:"64" pattern:"^job_[a-z0-9]+$" example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9" doc:"The job that produced it."`
	reports.Report
}

func (h *handlers) registerReports(api huma.API) {
	op := huma.Operation{
		OperationID: "createReport",
		Path:        "/v1/reports",
		Tags:        []string{"Reports"},
		Summary:     "Start a sales report",
		Description: "Starts building a report of daily sales between two dates. The report takes a while, so the answer is a job, not the report: " +
			"poll the `Location` until it answers 303 See Other, then GET the report there.",
	}
	h.startOperation(api, &op)
	huma.Register(api, op, func(ctx context.Context, in *CreateReportInput) (*AcceptedOutput, error) {
		plan, err := reports.Plan(in.input, h.Scale)
		return h.accept(ctx, reports.Kind, in.input, plan, err)
	})

	get := huma.Operation{
		OperationID: "getReport",
		Method:      http.MethodGet,
		Path:        "/v1/reports/{id}",
		Tags:        []string{"Reports"},
		Summary:     "Get a finished report",
		Description: "The result of a report job: where the status monitor's 303 points. Before the job succeeded this answers 409 `result_not_ready`.",
		Security:    []map[string][]string{{bearerScheme: {}}},
	}
	h.documentProblems(api, &get, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.ResultNotReady, problems.ValidationFailed)
	huma.Register(api, get, h.getReport)
}

func (h *handlers) getReport(ctx context.Context, in *ReportIDParam) (*ReportOutput, error) {
	instance := "/v1/reports/" + in.ID
	j, err := h.resultJob(ctx, in.ID, reportPrefix, reports.Kind, instance)
	if err != nil {
		return nil, err
	}
	r, err := resultJSON[reports.Report](j)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	out := &ReportOutput{}
	out.Body.ID, out.Body.JobID, out.Body.Report = in.ID, j.ID, r
	return out, nil
}

// resultJob finds the succeeded job behind a resource id.
func (h *handlers) resultJob(ctx context.Context, resourceID, prefix string, kind jobs.Kind, instance string) (jobs.Job, error) {
	id, ok := jobIDFor(resourceID, prefix)
	if !ok {
		return jobs.Job{}, h.problemFor(ctx, jobs.ErrNotFound, instance)
	}
	j, err := h.Engine.Get(ctx, owner(ctx), id)
	if err == nil && j.Kind != kind {
		err = jobs.ErrNotFound
	}
	if err != nil {
		return jobs.Job{}, h.problemFor(ctx, err, instance)
	}
	if j.Status != jobs.StatusSucceeded {
		return j, h.problemFor(ctx, notReadyError{j}, instance)
	}
	return j, nil
}
